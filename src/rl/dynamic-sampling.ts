/**
 * DAPO dynamic sampling ("filter groups"), as veRL implements it (recipe/dapo `RayDAPOTrainer.fit`,
 * `algorithm.filter_groups`; MMSearch-R1's ray_trainer.py carries the same loop): a group whose G
 * rewards all agree has zero advantage and no learning signal, so it is dropped, and further
 * generation batches of new prompts are sampled until the kept groups fill the train batch; the
 * surplus of the last generation batch is cut off. With a limit on generation batches, reaching it
 * before the batch is full is an error (veRL raises), so a policy for which every prompt is too easy or
 * too hard does not loop forever.
 */

/** One generation batch: `items` and their `rewards`, group-major (the G rollouts of prompt 0, then of prompt 1, …). */
export interface GenerationBatch<T> {
  items: T[];
  rewards: number[];
}

/** The train batch collected by {@link collectTrainBatch}. */
export interface CollectedBatch<T> {
  /** [groups · G] items of the kept groups, group-major, in the order they were generated. */
  items: T[];
  rewards: number[];
  /** Generation batches sampled (veRL `train/num_gen_batches`). */
  genBatches: number;
  /** Groups with reward variance among all sampled (with filtering, including any cut off as surplus). */
  keptGroups: number;
  /** Groups whose rewards all agree (dropped with filtering; counted without it too). */
  filteredGroups: number;
}

export interface FilterGroupsOptions {
  /** Groups (prompts) per train batch; each generation batch samples this many too. */
  groups: number;
  /** G, rollouts per group. */
  num_generations: number;
  /** The recipe's grpo.filter_groups: enable, and the most generation batches per step (0 = no limit). */
  filter_groups: { enable: boolean; max_num_gen_batches: number };
}

/**
 * Per group of `g` consecutive rewards: true when all its rewards are equal (zero variance). veRL
 * keeps a group when np.std of its rewards is > 0; equal rewards are tested directly here, so that a
 * group like [0.1, 0.1, 0.1] (whose floating-point std need not come out exactly 0) is dropped as intended.
 * @param rewards [N] group-major rewards, N a multiple of g
 * @returns [N / g] flags
 * @throws when N is not a positive multiple of g
 */
export function zeroVarianceGroups(rewards: readonly number[], g: number): boolean[] {
  if (!Number.isInteger(g) || g < 1 || rewards.length === 0 || rewards.length % g !== 0) throw new Error(`zeroVarianceGroups: ${rewards.length} rewards is not a positive multiple of the group size ${g}`);
  return Array.from({ length: rewards.length / g }, (_, k) => rewards.slice(k * g, (k + 1) * g).every((r) => r === rewards[k * g]));
}

/**
 * Collects one step's train batch from generation batches. `generate(i)` samples the step's i-th
 * generation batch (0-based; the caller draws fresh prompts for each). Without filtering, the first
 * generation batch is the train batch. With filtering, zero-variance groups are dropped and
 * generation continues until `groups` groups are kept; the train batch is the first `groups` of them.
 * @throws Error naming grpo.filter_groups.max_num_gen_batches when that many generation batches did not fill the batch;
 *   Error when a generation batch does not hold `groups · num_generations` items and rewards
 */
export async function collectTrainBatch<T>(generate: (i: number) => Promise<GenerationBatch<T>>, o: FilterGroupsOptions): Promise<CollectedBatch<T>> {
  const G = o.num_generations;
  const items: T[] = [];
  const rewards: number[] = [];
  let keptGroups = 0, filteredGroups = 0;
  for (let i = 0; ; i++) {
    const b = await generate(i);
    if (b.items.length !== o.groups * G || b.rewards.length !== b.items.length)
      throw new Error(`collectTrainBatch: generation batch ${i} has ${b.items.length} items and ${b.rewards.length} rewards; expected ${o.groups} groups of ${G}`);
    const zero = zeroVarianceGroups(b.rewards, G);
    const nZero = zero.filter(Boolean).length;
    filteredGroups += nZero;
    keptGroups += zero.length - nZero;
    if (!o.filter_groups.enable) return { items: b.items, rewards: b.rewards, genBatches: 1, keptGroups, filteredGroups };
    zero.forEach((z, k) => {
      if (z || rewards.length >= o.groups * G) return;
      items.push(...b.items.slice(k * G, (k + 1) * G));
      rewards.push(...b.rewards.slice(k * G, (k + 1) * G));
    });
    if (keptGroups >= o.groups) return { items, rewards, genBatches: i + 1, keptGroups, filteredGroups };
    const max = o.filter_groups.max_num_gen_batches;
    if (max > 0 && i + 1 >= max)
      throw new Error(
        `grpo.filter_groups.max_num_gen_batches ${max}: after ${i + 1} generation batches only ${keptGroups} of the ${o.groups} groups a step trains on had rewards that differ ` +
          `(${filteredGroups} groups had identical rewards: the prompts are too easy or too hard for the policy); raise max_num_gen_batches (0 = no limit) or disable filter_groups`,
      );
  }
}
