/**
 * SFT epochs (sft-plan.ts): sftEpochPlan deals reading drills out over the epochs; epochBatches cuts an
 * epoch into a partition of batches, length grouping cutting padding.
 */
import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { epochBatches, sftEpochPlan, type SftDecision } from './sft-plan.js';

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

describe('epochBatches with decisions (sft.balance_decisions)', () => {
  // A decision-neutral warm start in miniature: per kind, answers short (20-29 tokens) and searches long
  // (100-139), plus untrained-first-turn rows (null) longer still. Kind a: 9 answers, 9 searches; kind b:
  // 5 answers, 3 searches; 6 null rows: 32 rows.
  const rows: { len: number; d: SftDecision | null }[] = [
    ...Array.from({ length: 9 }, (_, i) => ({ len: 20 + i, d: { kind: 'a', searches: false } })),
    ...Array.from({ length: 9 }, (_, i) => ({ len: 100 + 4 * i, d: { kind: 'a', searches: true } })),
    ...Array.from({ length: 5 }, (_, i) => ({ len: 21 + i, d: { kind: 'b', searches: false } })),
    ...Array.from({ length: 3 }, (_, i) => ({ len: 101 + 4 * i, d: { kind: 'b', searches: true } })),
    ...Array.from({ length: 6 }, (_, i) => ({ len: 200 + i, d: null })),
  ];
  const lens = rows.map((r) => r.len);
  const ds = rows.map((r) => r.d);
  const both = (b: number[]) => b.some((i) => ds[i]?.searches === false) && b.some((i) => ds[i]?.searches === true);
  const sides = (b: number[]) => b.map((i) => (ds[i] ? `${ds[i]!.kind}${ds[i]!.searches ? 'S' : 'A'}` : '-')).sort().join(' ');

  test('without it, length grouping mixes answers and searches only in the batch where their lengths meet', () => {
    expect(epochBatches(lens, 4, true, new E.Rng(1)).filter(both).length).toBe(1);
  });

  test.each([4, 5])('pairs floor(batch/2) answers with the rest of a batch of searches of one kind; the same number of batches (batch %i)', (bs) => {
    const batches = epochBatches(lens, bs, true, new E.Rng(1), ds);
    expect(batches.flat().sort((a, b) => a - b)).toEqual(lens.map((_, i) => i));
    expect(batches.length).toBe(Math.ceil(32 / bs));
    expect(batches.filter((b) => b.length < bs).length).toBeLessThanOrEqual(1);
    const h = Math.floor(bs / 2);
    // By hand: kind a has 9 answers and 9 searches, kind b 5 and 3: batch 4 -> a: min(4, 4) = 4 pairs, b:
    // min(2, 1) = 1; batch 5 (2 answers + 3 searches) -> a: min(4, 3) = 3, b: min(2, 1) = 1.
    const paired = batches.filter(both);
    const want = (k: string) => `${Array(h).fill(`${k}A`).join(' ')} ${Array(bs - h).fill(`${k}S`).join(' ')}`;
    expect(paired.map(sides).sort()).toEqual([...Array(bs === 4 ? 4 : 3).fill(want('a')), want('b')].sort());
    // Within a block, rows are in length order: the first answer block of kind a is its shortest answers.
    const firstA = paired.find((b) => b.some((i) => lens[i] === 20))!;
    expect(firstA.filter((i) => !ds[i]!.searches).map((i) => lens[i]).sort((a, b) => a - b)).toEqual(Array.from({ length: h }, (_, i) => 20 + i));
  });

  test('refuses ungrouped batches, batches of one, and decisions of another length', () => {
    expect(() => epochBatches(lens, 4, false, new E.Rng(1), ds)).toThrow(/balance_decisions needs group_by_length/);
    expect(() => epochBatches(lens, 1, true, new E.Rng(1), ds)).toThrow(/batches of >= 2 trajectories/);
    expect(() => epochBatches(lens, 4, true, new E.Rng(1), ds.slice(1))).toThrow(/31 decisions for 32 trajectories/);
  });
});

test('sftEpochPlan with groups: the drills of one key go to one epoch, dealt as one; rows without a key alone', () => {
  // Rows 0-1 the world's; drills 2-7: a look drill's pair (2, 3: creature x), single drills 4 and 5, pair 6-7 (y).
  const drill = [false, false, true, true, true, true, true, true];
  const groups = [null, null, 'x', 'x', null, null, 'y', 'y'];
  expect(sftEpochPlan(drill, 2, 2, groups).members).toEqual([[0, 1, 2, 3, 5], [0, 1, 4, 6, 7]]);
  // Without groups each drill row is dealt alone: a pair splits over the epochs.
  expect(sftEpochPlan(drill, 2, 2).members).toEqual([[0, 1, 2, 4, 6], [0, 1, 3, 5, 7]]);
});
