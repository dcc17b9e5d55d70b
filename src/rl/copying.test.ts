/** Name-copy sequences: they train exactly the warm start's reply to an image search, on fresh names, and are scored by hand-checked rules; the batched greedy read-back they share with captions. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { FACT_ATTRIBUTES } from '../data/questions.js';
import { loadTokenizer } from '../models/tokenizer.js';
import { TurnEncoder } from './conversation.js';
import { renderLookPng } from '../data/render.js';
import { randomLook } from '../data/world.js';
import { createModel } from '../models/checkpoint.js';
import { parseConfig, type VLMConfig } from '../models/config.js';
import type { Idefics3ForConditionalGeneration } from '../models/idefics3.js';
import { greedyImageReplies } from './captioning.js';
import { copyBatch, copyEvalItems, copyItems, copyReply, copyScore, copyToolTurn, type CopyItem } from './copying.js';
import { microModelFiles } from './testing.js';

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

test('copyBatch trains the reply only, after a text-only tool turn titled with the name, the same for a (seed, step) and new at the next step', () => {
  const batch = copyBatch(enc, 7, 3, 4);
  const items = copyItems(E.Rng.stream(7, 'copy-train:3'), 4);
  expect(batch).toHaveLength(4);
  batch.forEach((s, k) => {
    expect(s.images).toHaveLength(0);
    expect(s.tokens).not.toContain(tok.specialIds.image);
    expect(tok.decode(s.tokens.filter((_, i) => s.completion_mask[i] === 1))).toBe(` ${copyReply(items[k])}`);
    const context = tok.decode(s.tokens.filter((_, i) => s.completion_mask[i] === 0));
    expect(context).toContain(`1. title: ${items[k].name}</information>`);
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

test('greedyImageReplies: a ragged batch replies as each prompt does alone (left padding changes nothing)', async () => {
  const config = parseConfig(JSON.parse(new TextDecoder().decode(await microModelFiles(32)('models/micro/config.json')))) as VLMConfig;
  const model = createModel(config, new E.CpuBackend(), 2) as Idefics3ForConditionalGeneration;
  const micro = new TurnEncoder(tok, model.imageSeqLen, true);
  const items = copyEvalItems(5, 2);
  const prompts = items.map((i) => micro.prompt(copyToolTurn(i)));
  expect(prompts[0].length).not.toBe(prompts[1].length);
  const rng = E.Rng.stream(5, 'test-looks');
  const pngs = items.map(() => renderLookPng(randomLook(rng), { seed: 5, stream: 'test' }));
  const size = config.vision.image_size;
  const never = () => false;
  const both = await greedyImageReplies(model, tok, prompts, pngs, size, 6, never);
  const alone = [await greedyImageReplies(model, tok, [prompts[0]], [pngs[0]], size, 6, never), await greedyImageReplies(model, tok, [prompts[1]], [pngs[1]], size, 6, never)];
  expect(both).toEqual(alone.flat());
  expect(both.every((r) => r.length > 0)).toBe(true);
}, 120_000);
