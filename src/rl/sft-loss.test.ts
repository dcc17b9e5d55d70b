/**
 * sft.loss_agg_mode: token-mean divides a step's summed token losses by the step's own trained tokens,
 * token-sum-norm by a constant per epoch (meanTrainedTokensPerStep), so that with group_by_length a token
 * of a batch of short trajectories weighs what a token of a batch of long ones does.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { createModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { sftStep, trainedTokens } from './steps.js';
import { meanTrainedTokensPerStep } from './trainer.js';

const tinyRaw = JSON.parse(readFileSync(new URL('../../models/tiny-vlm/config.json', import.meta.url), 'utf8'));
const microRaw = {
  ...tinyRaw,
  vision_config: { ...tinyRaw.vision_config, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2 },
  text_config: { ...tinyRaw.text_config, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 },
};

test('trainedTokens counts completion_mask x tool_mask after position 0; meanTrainedTokensPerStep is their sum over the steps', () => {
  expect(trainedTokens({ completion_mask: [1, 1, 0, 1, 1], tool_mask: [1, 1, 1, 0, 1] })).toBe(2);
  expect(trainedTokens({ completion_mask: [0, 1, 1] })).toBe(2);
  // 5 trajectories in batches of 2: 3 steps, 20 tokens.
  expect(meanTrainedTokensPerStep([3, 5, 0, 4, 8], 2)).toBeCloseTo(20 / 3, 12);
  expect(meanTrainedTokensPerStep([7], 8)).toBe(7);
  expect(() => meanTrainedTokensPerStep([0, 0], 2)).toThrow(/no trained token/);
});

test("sftStep with a normalizer: the same loss per token, gradients scaled by the batch's tokens over the normalizer", async () => {
  const be = new E.CpuBackend();
  const model = createModel(parseConfig(microRaw, 'micro'), be, 3);
  const params = model.parameters();
  const rng = new E.Rng(11);
  const seq = (n: number) => {
    const tokens = Array.from({ length: n }, () => 5 + rng.int(900));
    return { tokens, completion_mask: tokens.map((_, t) => (t > n / 2 ? 1 : 0)), images: [] };
  };
  const seqs = [seq(12), seq(20), seq(7)];
  const total = seqs.reduce((n, s) => n + trainedTokens(s), 0);
  // lr 0: the parameters stay put, so both calls see the same model; gradNorm is measured before clipping.
  const optimizer = new E.AdamW(params, { lr: 0, weightDecay: 0 });
  const step = (normalizer?: number) => sftStep(model, seqs, { optimizer, params, maxGradNorm: 0, lr: 0, microBatch: 2, padId: 2, imageSize: 64, normalizer });
  const mean = await step();
  const norm = await step(40);
  expect(norm.loss).toBeCloseTo(mean.loss, 5);
  expect(norm.tokens).toBe(total);
  expect(norm.gradNorm / mean.gradNorm).toBeCloseTo(total / 40, 5);
  await expect(step(0)).rejects.toThrow(/normalizer must be > 0/);
});
