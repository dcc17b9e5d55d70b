/** sftStep's `groups`: each group of a batch at its own token-mean, checked against the single-normalizer path and per-group losses (float64 CPU backend). */
import { expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { createModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { sftStep, type TrainSequence } from './steps.js';
import { microModelFiles } from './testing.js';

const config = parseConfig(JSON.parse(new TextDecoder().decode(await microModelFiles(32)('models/micro/config.json'))));
const fresh = () => {
  const model = createModel(config, new E.CpuBackend(), 3);
  const params = model.parameters();
  return { model, params, optimizer: new E.AdamW(params, { lr: 1e-2, weightDecay: 0.01 }) };
};
/** A text-only sequence of `n` tokens whose last `trained` tokens are trained. */
const seq = (rng: E.Rng, n: number, trained: number): TrainSequence => ({
  tokens: Array.from({ length: n }, () => 300 + rng.int(0, 200)),
  completion_mask: Array.from({ length: n }, (_, i) => Number(i >= n - trained)),
  images: [],
});
const weights = async (params: E.Tensor[]) => Promise.all(params.map(async (p) => Array.from(await p.backend.read(p.storage, true))));
const opts = { maxGradNorm: 1, lr: 1e-2, microBatch: 2, padId: 0, imageSize: 64 };

test('two groups of equal trained tokens step exactly as one batch divided by that count', async () => {
  const rng = new E.Rng(1);
  const batch = [seq(rng, 9, 4), seq(rng, 7, 2), seq(rng, 12, 3), seq(rng, 8, 3)]; // 6 trained tokens per pair
  const a = fresh(), b = fresh();
  const grouped = await sftStep(a.model, batch, { ...opts, optimizer: a.optimizer, params: a.params, groups: [2, 2] });
  const single = await sftStep(b.model, batch, { ...opts, optimizer: b.optimizer, params: b.params, normalizer: 6 });
  expect(await weights(a.params)).toEqual(await weights(b.params));
  // The grouped loss is the sum of the two means; the single path reports nats per trained token (12 tokens).
  expect(grouped.loss).toBeCloseTo(2 * single.loss, 12);
  expect(grouped.tokens).toBe(12);
});

test("with unequal groups the loss is the sum of each group's own token-mean", async () => {
  const rng = new E.Rng(2);
  const captions = [seq(rng, 6, 2), seq(rng, 6, 1)];
  const copies = [seq(rng, 14, 9), seq(rng, 15, 11), seq(rng, 13, 8)];
  // lr 0: the optimizer leaves the weights as they are, so each call sees the same model.
  const m = fresh();
  const alone = async (s: TrainSequence[]) => (await sftStep(m.model, s, { ...opts, lr: 0, optimizer: m.optimizer, params: m.params })).loss;
  const [lc, lk] = [await alone(captions), await alone(copies)];
  const both = await sftStep(m.model, [...captions, ...copies], { ...opts, lr: 0, optimizer: m.optimizer, params: m.params, groups: [2, 3] });
  expect(both.loss).toBeCloseTo(lc + lk, 5); // log-probs are float32
  const mixed = await sftStep(m.model, [...captions, ...copies], { ...opts, lr: 0, optimizer: m.optimizer, params: m.params });
  expect(mixed.loss).toBeCloseTo((3 * lc + 28 * lk) / 31, 5);
});

test('groups that do not fit the batch are errors that say so', async () => {
  const rng = new E.Rng(3);
  const m = fresh();
  const o = { ...opts, optimizer: m.optimizer, params: m.params };
  const batch = [seq(rng, 6, 2), seq(rng, 6, 0)];
  await expect(sftStep(m.model, batch, { ...o, groups: [1] })).rejects.toThrow(/groups \[1\] do not sum to the batch's 2 sequences/);
  await expect(sftStep(m.model, batch, { ...o, groups: [1, 1] })).rejects.toThrow(/no loss-masked tokens in group 1/);
  await expect(sftStep(m.model, batch, { ...o, groups: [2], normalizer: 3 })).rejects.toThrow(/normalizer or groups, not both/);
});
