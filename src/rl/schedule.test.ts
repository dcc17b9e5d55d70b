/** The GRPO learning-rate schedules at hand-computed points, MMSearch-R1's sigmoid decay among them. */
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { parseGRPOConfig } from './config.js';
import { parseRecipe } from './recipe.js';
import { constantSchedule, cosineSchedule, grpoSchedule, sftSchedule, sigmoidDecaySchedule, warmupSteps } from './schedule.js';

const at = (over: Record<string, unknown>, total: number, steps: number[]) => steps.map(grpoSchedule(parseGRPOConfig(over), total));

test("sigmoid_decay: MMSearch-R1's schedule with the paper run's settings (decay 0.95, center 45, k = 1/4.5)", () => {
  const lr = 2e-6;
  const [s0, s45, s90] = at({ learning_rate: lr, lr_scheduler_type: 'sigmoid_decay' }, 50, [0, 45, 90]);
  // step 0: 0.95 / (1 + e^-10) + 0.05 = 0.95 / 1.0000453999 + 0.05 = 0.9999568716
  expect(s0 / lr).toBeCloseTo(0.9999568716, 9);
  // step 45 (the center): 0.95 / 2 + 0.05 = 0.525
  expect(s45 / lr).toBeCloseTo(0.525, 12);
  // step 90: 0.95 / (1 + e^10) + 0.05 = 0.95 / 22027.4657948 + 0.05 = 0.0500431284
  expect(s90 / lr).toBeCloseTo(0.0500431284, 9);
  // decay_ratio 0.5, center 10 (k = 1): step 10 -> 0.75; step 11 -> 0.5 / (1 + e) + 0.5 = 0.5 · 0.2689414214 + 0.5 = 0.6344707107
  const [c10, c11] = at({ learning_rate: 1, lr_scheduler_type: 'sigmoid_decay', lr_scheduler_kwargs: { decay_ratio: 0.5, center_steps: 10 } }, 50, [10, 11]);
  expect(c10).toBeCloseTo(0.75, 12);
  expect(c11).toBeCloseTo(0.6344707107, 9);
  // decay_ratio 0 is MMSearch-R1's default: a constant rate.
  expect(at({ learning_rate: 1, lr_scheduler_type: 'sigmoid_decay', lr_scheduler_kwargs: { decay_ratio: 0 } }, 50, [0, 45, 200])).toEqual([1, 1, 1]);
});

test('linear, cosine and constant schedules (transformers semantics) at hand-computed points', () => {
  // linear, 10 steps, warmup 2: 0.5, 1, then 1·(10 - s)/8.
  expect(at({ learning_rate: 1, warmup_steps: 2 }, 10, [0, 1, 2, 6, 9, 10])).toEqual([0.5, 1, 1, 0.5, 0.125, 0]);
  // cosine, 10 steps, warmup_ratio 0.2 -> 2 warmup steps: step 6 is halfway -> 0.5.
  const cos = at({ learning_rate: 1, lr_scheduler_type: 'cosine', warmup_ratio: 0.2 }, 10, [0, 2, 6, 10]);
  expect(cos[0]).toBe(0.5);
  expect(cos[1]).toBe(1);
  expect(cos[2]).toBeCloseTo(0.5, 12);
  expect(cos[3]).toBeCloseTo(0, 12);
  expect(at({ learning_rate: 0.5, lr_scheduler_type: 'constant', warmup_steps: 4 }, 10, [0, 9])).toEqual([0.5, 0.5]);
  expect(at({ learning_rate: 0.5, lr_scheduler_type: 'constant_with_warmup', warmup_steps: 4 }, 10, [0, 3, 9])).toEqual([0.125, 0.5, 0.5]);
  expect(warmupSteps({ warmup_steps: 0, warmup_ratio: 0.25 }, 10)).toBe(3);
});

test('schedules: warmup, cosine and MMSearch-R1 sigmoid decay at hand-checked points', () => {
  const c = cosineSchedule(1, 10, 110, 0.1);
  expect(c(0)).toBeCloseTo(0.1); // (0+1)/10
  expect(c(9)).toBeCloseTo(1);
  expect(c(10)).toBeCloseTo(1); // start of decay
  expect(c(60)).toBeCloseTo(0.1 + 0.9 * 0.5); // halfway: cos(π/2) = 0
  expect(c(110)).toBeCloseTo(0.1);
  expect(c(500)).toBeCloseTo(0.1);
  // MMSearch-R1's sigmoid decay with decay ratio 0.5 around step 60: k = 1/6.
  const s = sigmoidDecaySchedule(2, 0.5, 60);
  expect(s(60)).toBeCloseTo(2 * (0.5 / 2 + 0.5)); // halfway: 1.5
  expect(s(0)).toBeCloseTo(2 * (0.5 / (1 + Math.exp(-10)) + 0.5), 6); // ≈ 2
  expect(s(120)).toBeCloseTo(2 * (0.5 / (1 + Math.exp(10)) + 0.5), 6); // ≈ 1
  expect(sigmoidDecaySchedule(2, 0, 60)(37)).toBe(2); // ratio 0: constant (their default)
  expect(() => sigmoidDecaySchedule(1, 0.5, 0)).toThrow(/centerSteps must be > 0/);
  const k = constantSchedule(0.5, 4);
  expect([k(0), k(3), k(4), k(1000)]).toEqual([0.125, 0.5, 0.5, 0.5]);
});

test("the warm start's schedule: cosine_with_min_lr (floor 0.1 unless set) or cosine to 0, at hand-computed points", () => {
  const base = JSON.parse(readFileSync(new URL('../../recipes/fvqa-mini.json', import.meta.url), 'utf8'));
  const sft = (extra: Record<string, unknown>) => parseRecipe({ ...base, sft: { ...base.sft, lr_scheduler_type: undefined, learning_rate: 0.5, warmup_ratio: 0.1, ...extra } }).sft!;
  // 100 steps, warmup round(0.1 x 100) = 10; step 55 is halfway through the decay (cos(π/2) = 0), step 100 its end.
  const points = (extra: Record<string, unknown>) => [4, 55, 100].map((t) => sftSchedule(sft(extra), 100)(t));
  expect(points({})).toEqual([0.25, 0.5 * (0.1 + 0.9 * 0.5), 0.5 * 0.1].map((v) => expect.closeTo(v, 12)));
  expect(points({ lr_scheduler_kwargs: { min_lr_rate: 0.25 } })).toEqual([0.25, 0.5 * (0.25 + 0.75 * 0.5), 0.5 * 0.25].map((v) => expect.closeTo(v, 12)));
  expect(points({ lr_scheduler_type: 'cosine' })).toEqual([0.25, 0.25, 0].map((v) => expect.closeTo(v, 12)));
  expect(() => sft({ lr_scheduler_type: 'cosine', lr_scheduler_kwargs: { min_lr_rate: 0.1 } })).toThrow(/sft\.lr_scheduler_kwargs\.min_lr_rate.*applies to lr_scheduler_type cosine_with_min_lr/);
  expect(() => sft({ lr_scheduler_type: 'linear' })).toThrow(/sft\.lr_scheduler_type/);
});
