import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { createModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import type { Idefics3ForConditionalGeneration } from '../models/idefics3.js';
import { loadTokenizer } from '../models/tokenizer.js';
import { renderLookPng } from '../data/render.js';
import { TurnEncoder } from './conversation.js';
import { captionSequence, perceptionProbe } from './captioning.js';

const root = new URL('../../', import.meta.url).pathname;
const json = (f: string) => JSON.parse(readFileSync(`${root}models/tiny-vlm/${f}`, 'utf8'));
const tok = loadTokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
const enc = new TurnEncoder(tok, 16, true);

test('a caption trains exactly the assistant turn that describes the look', () => {
  const look = { shape: 'star', colour: 'red', pattern: 'striped', marks: 3, background: 2 } as const;
  const s = captionSequence(enc, look, renderLookPng(look, null));
  const trained = s.tokens.filter((_, i) => s.completion_mask[i] === 1);
  expect(tok.decode(trained)).toBe(' <reason>A striped red star, 3 marks.</reason>');
  expect(tok.decode(s.tokens.filter((_, i) => s.completion_mask[i] === 0))).toContain('What does this creature look like?');
  expect(s.images).toHaveLength(1);
});

test('the probe rejects a step count that is not a positive integer, naming it', async () => {
  const model = createModel(parseConfig(json('config.json')), new E.CpuBackend(), 1) as Idefics3ForConditionalGeneration;
  const o = { learningRate: 1e-3, warmupRatio: 0, steps: 10, batchSize: 8, evalEvery: 0, evalLooks: 8, seed: 1, imageSize: 64 };
  await expect(perceptionProbe(model, tok, enc, o)).rejects.toThrow('evalEvery must be a positive integer, got 0');
});

// What the probe is for: tiny-vlm learns from captions to read unseen creatures. Colour is the first thing it reads
// (docs/fvqa-mini-warm-start.md: about 90% after 250 steps); chance is 10%.
test('tiny-vlm learns to read the colour of creatures it has never seen', async () => {
  const backend = await E.WasmBackend.create({ threads: 2 });
  const model = createModel(parseConfig(json('config.json')), backend, 1) as Idefics3ForConditionalGeneration;
  const rows = await perceptionProbe(model, tok, enc, { learningRate: 1e-3, warmupRatio: 0.05, steps: 200, batchSize: 8, evalEvery: 100, evalLooks: 64, seed: 3, imageSize: 64 });
  expect(rows.map((r) => r.step)).toEqual([100, 200]);
  expect(rows[1].loss).toBeLessThan(rows[0].loss);
  expect(rows[1].parsed).toBeGreaterThanOrEqual(90);
  expect(rows[1].colour).toBeGreaterThanOrEqual(50);
}, 300_000);
