/** SFT batching (trainer.ts epochBatches): a partition of the epoch, and length grouping that cuts padding. */
import { expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { epochBatches } from './trainer.js';

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
