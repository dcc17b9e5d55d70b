/** metrics.jsonl -> CSV, read back with an independent RFC 4180 parser and compared with the JSONL values. */
import { describe, expect, test } from 'vitest';
import { parseJsonl } from '../io/jsonl.js';
import { metricsToCsv } from './metrics.js';

/** RFC 4180: fields separated by commas, quoted fields may hold commas, quotes ("") and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"', i++);
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') (row.push(field), (field = ''));
    else if (c === '\n') (row.push(field), rows.push(row), (row = []), (field = ''));
    else field += c;
  }
  if (field || row.length) (row.push(field), rows.push(row));
  return rows;
}

const jsonl = [
  { phase: 'sft', step: 0, loss: 6.931471805599453, grad_norm: 12.5, learning_rate: 1e-7 },
  { phase: 'grpo', step: 0, reward: 0.1 + 0.2, 'rewards/accuracy/mean': 0.375, search_ratio: 1 / 3, kl: null },
  { phase: 'grpo', step: 1, reward: 0.91, note: 'a "quoted", multi\nline value' },
].map((r) => JSON.stringify(r)).join('\n') + '\n\n';

describe('metrics CSV', () => {
  test('columns are the union of keys in first-seen order; values parse back to the JSONL values', () => {
    const records = parseJsonl(jsonl);
    const rows = parseCsv(metricsToCsv(records));
    expect(rows[0]).toEqual(['phase', 'step', 'loss', 'grad_norm', 'learning_rate', 'reward', 'rewards/accuracy/mean', 'search_ratio', 'kl', 'note']);
    expect(rows.length).toBe(4);
    rows.slice(1).forEach((row, i) => {
      const rec = records[i];
      rows[0].forEach((col, j) => {
        const v = rec[col];
        if (v === undefined || v === null) expect(row[j], col).toBe('');
        else if (typeof v === 'number') expect(Number(row[j]), col).toBe(v);
        else expect(row[j], col).toBe(v);
      });
    });
  });

  test('a bad line is named', () => {
    expect(() => parseJsonl('{"a":1}\nnot json\n', 'm.jsonl')).toThrow(/m.jsonl line 2/);
    expect(() => parseJsonl('[1,2]\n')).toThrow(/line 1: not a JSON object/);
  });
});
