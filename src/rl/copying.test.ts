/** Name-copy sequences: they train exactly the warm start's reply to an image search, on fresh names, and are scored by hand-checked rules. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { FACT_ATTRIBUTES } from '../data/questions.js';
import { loadTokenizer } from '../models/tokenizer.js';
import { TurnEncoder } from './conversation.js';
import { copyBatch, copyEvalItems, copyItems, copyReply, copyScore, type CopyItem } from './copying.js';

const root = new URL('../../', import.meta.url).pathname;
const read = (f: string) => JSON.parse(readFileSync(join(root, 'models/tiny-vlm-name-pieces', f), 'utf8'));
const tok = loadTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
const enc = new TurnEncoder(tok, 16, true);

test("a copy reply is the warm start's own reply to an image search, for every fact attribute", () => {
  const world = generateFvqaMini({ seed: 4, entities: 12, heldOutEntities: 2, testSize: 8 });
  const names = new Map(world.entities.map((e) => [e.id, e.facts.name]));
  const seen = new Set<string>();
  for (const row of world.splits.sft) {
    const x = row.extra_info!;
    if (!(FACT_ATTRIBUTES as readonly string[]).includes(x.attribute)) continue;
    const reply = row.prompt.filter((m) => m.role === 'assistant').map((m) => m.content).find((t) => t.startsWith('<reason>The top result is'));
    // A name question's RAG chain text-searches the page instead of answering; copies train the answer.
    if (!reply || (x.attribute === 'name' && reply.includes('<text_search>'))) continue;
    const item = { name: names.get(x.entity_id)!, attribute: x.attribute, question: x.question } as CopyItem;
    expect(copyReply(item), row.data_id).toBe(reply);
    seen.add(x.attribute);
  }
  expect([...seen].sort()).toEqual([...FACT_ATTRIBUTES].sort());
});

test('copyBatch trains the reply only, after a tool turn titled with the name, the same for a (seed, step) and new at the next step', () => {
  const batch = copyBatch(enc, 7, 3, 4);
  const items = copyItems(E.Rng.stream(7, 'copy-train:3'), 4);
  expect(batch).toHaveLength(4);
  batch.forEach((s, k) => {
    expect(s.images).toHaveLength(1);
    expect(tok.decode(s.tokens.filter((_, i) => s.completion_mask[i] === 1))).toBe(` ${copyReply(items[k])}`);
    const context = tok.decode(s.tokens.filter((_, i) => s.completion_mask[i] === 0));
    expect(context).toContain(`title: ${items[k].name}</information>`);
    expect(context).toContain(items[k].question);
  });
  expect(copyBatch(enc, 7, 3, 4)).toEqual(batch);
  const next = copyItems(E.Rng.stream(7, 'copy-train:4'), 4);
  expect(next.map((i) => i.name)).not.toEqual(items.map((i) => i.name));
  // Evaluation names come from a stream of their own.
  expect(copyEvalItems(7, 4).map((i) => i.name)).not.toEqual(items.map((i) => i.name));
});

test('copyScore: the exact name, restated and in the action, by hand', () => {
  const item: CopyItem = { name: 'Tikoafar', attribute: 'diet', question: 'What does this creature eat?' };
  expect(copyScore(copyReply(item), item)).toEqual({ reasoning: true, action: true });
  expect(copyScore('<reason>The top result is Tikoafik. I need its diet.</reason><text_search>Tikoafik diet</text_search>', item)).toEqual({ reasoning: false, action: false });
  expect(copyScore('<reason>The top result is Tikoafar. I need its diet.</reason><text_search>Toafik diet</text_search>', item)).toEqual({ reasoning: true, action: false });
  // A longer word is not the name; a name question's answer is its action.
  expect(copyScore('<reason>The top result is Tikoafar.</reason><text_search>Tikoafarx diet</text_search>', item).action).toBe(false);
  const named: CopyItem = { ...item, attribute: 'name' };
  expect(copyScore('<reason>The top result is Tikoafar.</reason><answer>Tikoafar</answer>', named)).toEqual({ reasoning: true, action: true });
  expect(copyScore('<answer>Tikoafar</answer>', named)).toEqual({ reasoning: false, action: true });
});
