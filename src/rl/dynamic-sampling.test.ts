/**
 * DAPO dynamic sampling (veRL algorithm.filter_groups) on hand-written rewards: zero-variance groups are
 * dropped, further generation batches are drawn until the batch is full, and the limit on generation
 * batches stops with an error as veRL does.
 */
import { describe, expect, test } from 'vitest';
import { collectTrainBatch, zeroVarianceGroups, type GenerationBatch } from './dynamic-sampling.js';

/** Generation batches from fixed rewards; each item names its batch and group, e.g. "b1g0". */
function batches(rewards: number[][], G: number) {
  const drawn: number[] = [];
  const generate = async (i: number): Promise<GenerationBatch<string>> => {
    drawn.push(i);
    const r = rewards[i];
    if (!r) throw new Error(`generation batch ${i} was not expected`);
    return { rewards: r, items: r.map((_, j) => `b${i}g${Math.floor(j / G)}`) };
  };
  return { generate, drawn };
}

describe('zeroVarianceGroups', () => {
  test('groups whose rewards all agree', () => {
    expect(zeroVarianceGroups([1, 1, 0, 1, 0.1, 0.1, 0.91, 0.1], 2)).toEqual([true, false, true, false]);
    // Equal rewards whose floating-point mean is not exactly the reward still count as equal.
    expect(zeroVarianceGroups([0.1, 0.1, 0.1], 3)).toEqual([true]);
    expect(() => zeroVarianceGroups([1, 2, 3], 2)).toThrow(/not a positive multiple/);
  });
});

describe('collectTrainBatch', () => {
  const G = 2;
  test('without filtering the first generation batch is the train batch, zero-variance groups included', async () => {
    const { generate, drawn } = batches([[1, 1, 0, 1]], G);
    const b = await collectTrainBatch(generate, { groups: 2, num_generations: G, filter_groups: { enable: false, max_num_gen_batches: 0 } });
    expect(drawn).toEqual([0]);
    expect(b).toEqual({ items: ['b0g0', 'b0g0', 'b0g1', 'b0g1'], rewards: [1, 1, 0, 1], genBatches: 1, keptGroups: 1, filteredGroups: 1 });
  });

  test('with filtering, zero-variance groups are dropped and more prompts are sampled until 3 groups are kept', async () => {
    // Batch 0: groups 0 and 2 agree (dropped), group 1 kept. Batch 1: all agree. Batch 2: groups 0, 1, 2 differ;
    // two are needed, so group 2 of batch 2 is surplus and cut off.
    const { generate, drawn } = batches([
      [1, 1, 0, 1, 0.1, 0.1],
      [0, 0, 1, 1, 0.91, 0.91],
      [0, 0.1, 1, 0.91, 0.1, 1],
    ], G);
    const b = await collectTrainBatch(generate, { groups: 3, num_generations: G, filter_groups: { enable: true, max_num_gen_batches: 0 } });
    expect(drawn).toEqual([0, 1, 2]);
    expect(b.items).toEqual(['b0g1', 'b0g1', 'b2g0', 'b2g0', 'b2g1', 'b2g1']);
    expect(b.rewards).toEqual([0, 1, 0, 0.1, 1, 0.91]);
    expect(b.genBatches).toBe(3);
    expect(b.keptGroups).toBe(4); // 1 + 0 + 3 groups with variance were seen
    expect(b.filteredGroups).toBe(5); // 2 + 3 + 0 dropped
  });

  test('a batch that is full after the first generation batch draws no more', async () => {
    const { generate, drawn } = batches([[0, 1, 1, 0]], G);
    const b = await collectTrainBatch(generate, { groups: 2, num_generations: G, filter_groups: { enable: true, max_num_gen_batches: 1 } });
    expect(drawn).toEqual([0]);
    expect(b).toMatchObject({ genBatches: 1, keptGroups: 2, filteredGroups: 0, rewards: [0, 1, 1, 0] });
  });

  test('max_num_gen_batches reached with the batch not full is an error naming the field (veRL raises)', async () => {
    const { generate, drawn } = batches([
      [1, 1, 0, 1],
      [0, 0, 0, 0],
      [0, 1, 0, 1],
    ], G);
    await expect(collectTrainBatch(generate, { groups: 2, num_generations: G, filter_groups: { enable: true, max_num_gen_batches: 2 } })).rejects.toThrow(
      /grpo\.filter_groups\.max_num_gen_batches 2: after 2 generation batches only 1 of the 2 groups .*\(3 groups had identical rewards/,
    );
    expect(drawn).toEqual([0, 1]);
  });

  test('a generation batch of the wrong size is an error', async () => {
    await expect(collectTrainBatch(async () => ({ items: ['a'], rewards: [1] }), { groups: 2, num_generations: G, filter_groups: { enable: true, max_num_gen_batches: 0 } })).rejects.toThrow(/expected 2 groups of 2/);
  });
});
