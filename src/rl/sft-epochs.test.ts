/**
 * SFT epochs (trainer.ts): sftEpochPlan deals reading drills out over the epochs; epochBatches cuts an
 * epoch into a partition of batches, length grouping cutting padding.
 */
import { expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { epochBatches, sftEpochPlan } from './trainer.js';

const lengths = Array.from({ length: 53 }, (_, i) => 40 + ((i * 37) % 300));
const padded = (batches: number[][]) => batches.reduce((n, b) => n + b.length * Math.max(...b.map((i) => lengths[i])), 0);

test.each([false, true])('every index appears exactly once, in batches of the requested size (groupByLength %s)', (group) => {
  const batches = epochBatches(lengths, 8, group, new E.Rng(3));
  expect(batches.map((b) => b.length).sort((a, b) => a - b)).toEqual([5, 8, 8, 8, 8, 8, 8]);
  expect(batches.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
});

test('grouped batches hold contiguous length ranges and pad less than random ones', () => {
  const grouped = epochBatches(lengths, 8, true, new E.Rng(3));
  const ranges = grouped.map((b) => [Math.min(...b.map((i) => lengths[i])), Math.max(...b.map((i) => lengths[i]))]).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBeGreaterThanOrEqual(ranges[i - 1][1]);
  const real = lengths.reduce((a, b) => a + b, 0);
  expect(padded(grouped) / real).toBeLessThan(1.15);
  expect(padded(epochBatches(lengths, 8, false, new E.Rng(3))) / real).toBeGreaterThan(1.3);
});

test('the same seed gives the same batches; another seed visits them in another order', () => {
  expect(epochBatches(lengths, 8, true, new E.Rng(5))).toEqual(epochBatches(lengths, 8, true, new E.Rng(5)));
  expect(epochBatches(lengths, 8, true, new E.Rng(6))).not.toEqual(epochBatches(lengths, 8, true, new E.Rng(5)));
});

test('sftEpochPlan: world rows in every epoch, each drill in exactly one (drill k in epoch k mod epochs), steps counted by hand', () => {
  // Rows 0-3 the world's, rows 4-10 seven drills; 3 epochs of batches of 2.
  const drill = [false, false, false, false, true, true, true, true, true, true, true];
  const plan = sftEpochPlan(drill, 3, 2);
  expect(plan.members).toEqual([[0, 1, 2, 3, 4, 7, 10], [0, 1, 2, 3, 5, 8], [0, 1, 2, 3, 6, 9]]);
  expect(plan.total).toBe(4 + 3 + 3);
  expect([0, 3, 4, 6, 7, 9].map((s) => plan.at(s))).toEqual([
    { epoch: 0, index: 0, steps: 4 }, { epoch: 0, index: 3, steps: 4 }, { epoch: 1, index: 0, steps: 3 },
    { epoch: 1, index: 2, steps: 3 }, { epoch: 2, index: 0, steps: 3 }, { epoch: 2, index: 2, steps: 3 },
  ]);
});

test('sftEpochPlan without drills: every epoch is every row, ceil(steps per epoch x epochs) steps, fractional epochs too', () => {
  const plan = sftEpochPlan(Array(53).fill(false), 2.5, 8);
  expect(plan.members).toEqual(Array(3).fill(lengths.map((_, i) => i)));
  expect(plan.total).toBe(Math.ceil(7 * 2.5));
  expect(plan.at(17)).toEqual({ epoch: 2, index: 3, steps: 7 });
  expect(() => sftEpochPlan([false], 0, 8)).toThrow(/num_train_epochs must be > 0, got 0/);
});
