import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { jsonlFileBatches } from './node-io.js';
import { questionFromUserTurn } from '../protocol/prompts.js';
import { renderLookPng } from './render.js';
import { DatasetFormatError, type FvqaRow } from './types.js';

let dir: string;
let png: Uint8Array;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mmsearch-jsonl-'));
  mkdirSync(join(dir, 'img'));
  png = renderLookPng({ shape: 'star', colour: 'teal', pattern: 'spotted', marks: 2, background: 1 }, null);
  writeFileSync(join(dir, 'img', 'a.png'), png);
  writeFileSync(join(dir, 'img', 'broken.png'), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0, 1]));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const line = (o: Record<string, unknown>) => JSON.stringify({
  question: 'Who discovered this creature?', images: ['img/a.png'], data_source: 'mine',
  reward_model: { ground_truth: 'Ada Marsh', candidate_answers: ['Ada Marsh', 'Marsh'] }, ...o,
});

async function load(lines: string[]): Promise<FvqaRow[]> {
  const f = join(dir, `set-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(f, lines.join('\n') + '\n');
  const out: FvqaRow[] = [];
  for await (const b of jsonlFileBatches(f, { batchRows: 2 })) out.push(...b);
  return out;
}

async function failure(lines: string[]): Promise<DatasetFormatError> {
  const e = await load(lines).then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(DatasetFormatError);
  return e as DatasetFormatError;
}

describe('JSONL + image folder import', () => {
  test('reads rows, builds the MMSearch-R1 prompt from `question`, loads image bytes', async () => {
    const rows = await load([line({}), '', line({ category: 'search_free', data_id: 'x7' }), line({ reward_model: { ground_truth: 'Marsh', candidate_answers: '["Marsh"]' } })]);
    expect(rows.map((r) => r.data_id)).toEqual([expect.stringMatching(/_0$/), 'x7', expect.stringMatching(/_2$/)]);
    expect(questionFromUserTurn(rows[0].prompt[0].content)).toBe('Who discovered this creature?');
    expect(rows[0].prompt[0].content).toContain('<reason>');
    expect(rows[0].images[0]).toEqual({ bytes: png, path: 'img/a.png' });
    expect(rows[1].category).toBe('search_free');
    expect(rows[2].reward_model.candidate_answers).toEqual(['Marsh']);
  });

  test('bad lines name the row and field', async () => {
    const cases: [string[], number, string | null, RegExp][] = [
      [[line({}), '{"question": '], 1, null, /invalid JSON/],
      [[line({ images: ['img/missing.png'] })], 0, 'images[0]', /not readable/],
      [[line({}), line({ images: ['img/broken.png'] })], 1, 'images[0].bytes', /undecodable/],
      [[line({ images: ['../outside.png'] })], 0, 'images[0]', /inside the folder/],
      [[line({}), line({}), line({ reward_model: { ground_truth: '' } })], 2, 'reward_model.ground_truth', /empty answer/],
      [[line({ data_source: 5 })], 0, 'data_source', /expected a string/],
      [[line({ question: undefined })], 0, 'prompt', /missing/],
    ];
    for (const [lines, row, field, problem] of cases) {
      const e = await failure(lines);
      expect([e.row, e.field], e.message).toEqual([row, field]);
      expect(e.message).toMatch(problem);
    }
  });
});
