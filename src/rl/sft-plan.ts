/**
 * The warm start's SFT batches: which rows each epoch visits (drills dealt over the epochs), how each
 * epoch is cut into optimizer steps (transformers' group_by_length, sft.balance_decisions) and the
 * token-sum-norm normaliser. Pure functions of (conversations, recipe, seed, step), so a resumed run
 * takes the same steps; the Trainer (./trainer.ts) runs them.
 */
import * as E from '../engine/index.js';
import type { EncodedConversation } from './conversation.js';
import type { Recipe } from './recipe.js';
import { trainedTokens } from './steps.js';

/** One SFT optimizer step of sftPlan: its rows (warm-start conversation indices), its loss normaliser (token-sum-norm; undefined: the step's own trained tokens), its epoch, its index in the epoch and the epoch's steps. */
export interface SftPlanStep {
  rows: number[];
  normalizer: number | undefined;
  epoch: number;
  index: number;
  steps: number;
}

/**
 * The warm start's optimizer steps, as the Trainer takes them: the epochs of sftEpochPlan, each cut into
 * batches by epochBatches (group_by_length, balance_decisions) with its own random stream, and for
 * loss_agg_mode token-sum-norm each epoch's normaliser (meanTrainedTokensPerStep). A step depends only on
 * (conversations, recipe, seed, step), so a resumed run takes the same steps.
 * @param convs the encoded warm start (Trainer.warmStartConversations).
 * @returns total: optimizer steps; step(i): step i (0-based).
 */
export function sftPlan(convs: readonly WarmStartConversation[], s: NonNullable<Recipe['sft']>, seed: number): { total: number; step(i: number): SftPlanStep } {
  // One optimizer step: gradient_accumulation_steps micro-batches of per_device_train_batch_size trajectories.
  const batchSize = s.per_device_train_batch_size * s.gradient_accumulation_steps;
  const plan = sftEpochPlan(convs.map((c) => c.drill), s.num_train_epochs, batchSize, s.balance_decisions ? convs.map((c) => c.creature) : undefined);
  const normalizers = s.loss_agg_mode !== 'token-sum-norm' ? null
    : plan.members.map((m) => meanTrainedTokensPerStep(m.map((i) => trainedTokens({ completion_mask: convs[i].lossMask })), batchSize));
  let cached: { epoch: number; batches: number[][] } | null = null;
  return {
    total: plan.total,
    step(i) {
      const { epoch, index, steps } = plan.at(i);
      const members = plan.members[epoch];
      if (cached?.epoch !== epoch) {
        const batches = epochBatches(members.map((m) => convs[m].tokens.length), batchSize, s.group_by_length, sftEpochRng(seed, epoch),
          s.balance_decisions ? members.map((m) => convs[m].decision) : undefined);
        cached = { epoch, batches };
      }
      return { rows: cached.batches[index].map((b) => members[b]), normalizer: normalizers?.[epoch], epoch, index, steps };
    },
  };
}

/** What a warm-start trajectory's trained first turn decides (epochBatches' `decisions`): its question kind, and whether it searches. */
export interface SftDecision {
  /** FvqaRow extra_info.question_kind, else its category. */
  kind: string;
  searches: boolean;
}

/**
 * A warm-start trajectory encoded for SFT: `drill` for rows of drill worlds (dealt over the epochs), `creature`
 * the row's entity (extra_info.entity_id; null without one), `decision` null where the first turn is not
 * trained (RAG-workflow rows).
 */
export type WarmStartConversation = EncodedConversation & { drill: boolean; creature: string | null; decision: SftDecision | null };

/**
 * Which warm-start rows each SFT epoch visits, and how many optimizer steps it takes. Every epoch visits
 * every row of the world; the drills (reading and look drills, `drill[i]` true) are dealt out over the
 * epochs, drill k to epoch k mod ceil(numTrainEpochs), so that each drill is seen once: a drill teaches
 * reading (results, or the look) only while its creature is new to the policy. A fractional last epoch runs that fraction of its steps (as
 * transformers' Trainer does for a fractional num_train_epochs).
 * @param drill per warm-start row, whether it is a drill.
 * @param batchSize rows per optimizer step.
 * @param groups per row, a key that keeps drill rows together (sft.balance_decisions: a look drill's answer
 *   and search, keyed by their creature): the drills of one key go to one epoch, dealt as one.
 *   Omitted, or null for a row: each drill row is dealt on its own.
 * @returns members[e]: row indices of epoch e; total: optimizer steps in all; at(step): the epoch of
 *   a step, its index within the epoch, and the epoch's number of steps.
 * @throws Error when numTrainEpochs is not > 0 or batchSize not a whole number >= 1.
 */
export function sftEpochPlan(drill: readonly boolean[], numTrainEpochs: number, batchSize: number, groups?: readonly (string | null)[]): {
  members: number[][];
  total: number;
  at(step: number): { epoch: number; index: number; steps: number };
} {
  if (!(numTrainEpochs > 0)) throw new Error(`sft.num_train_epochs must be > 0, got ${numTrainEpochs}`);
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`SFT batch size must be a whole number >= 1, got ${batchSize}`);
  const epochs = Math.ceil(numTrainEpochs);
  const members: number[][] = Array.from({ length: epochs }, () => []);
  let k = 0;
  const dealt = new Map<string, number>();
  drill.forEach((d, i) => {
    if (!d) for (const m of members) m.push(i);
    else if (!groups?.[i]) members[k++ % epochs].push(i);
    else {
      if (!dealt.has(groups[i]!)) dealt.set(groups[i]!, k++ % epochs);
      members[dealt.get(groups[i]!)!].push(i);
    }
  });
  const steps = members.map((m) => Math.ceil(m.length / batchSize));
  const whole = Math.floor(numTrainEpochs);
  const lastSteps = whole < epochs ? Math.ceil((numTrainEpochs - whole) * steps[whole]) : 0;
  const total = steps.slice(0, whole).reduce((a, b) => a + b, 0) + lastSteps;
  return {
    members,
    total,
    at(step) {
      let e = 0;
      while (e < epochs - 1 && step >= steps[e]) step -= steps[e++];
      return { epoch: e, index: step, steps: steps[e] };
    },
  };
}

/**
 * sft.loss_agg_mode 'token-sum-norm''s constant: the trained tokens of an epoch's trajectories (`trained`,
 * one count each) over its optimizer steps of `batchSize` trajectories (the last may be short).
 * @throws Error when there is no trajectory or no trained token.
 */
export function meanTrainedTokensPerStep(trained: readonly number[], batchSize: number): number {
  const sum = trained.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new Error(`sft.loss_agg_mode token-sum-norm: the epoch's ${trained.length} trajectories have no trained token`);
  return sum / Math.ceil(trained.length / batchSize);
}

/**
 * The random stream that shuffles SFT epoch `epoch` (0-based) of a run with recipe seed `seed`. The
 * batches depend only on (seed, epoch), so a run resumed mid-epoch sees the same ones.
 */
export function sftEpochRng(seed: number, epoch: number): E.Rng {
  return new E.Rng(seed * 7919 + epoch);
}

/**
 * The batches of one SFT epoch: indices 0..lengths.length-1 in a random order, cut into batches of
 * `batchSize` (the last may be shorter). With `groupByLength`, the shuffled indices are sorted by
 * length before cutting, so each batch holds sequences of similar length and pads little, and the
 * batches are then visited in random order (the idea of transformers' `group_by_length` /
 * LengthGroupedSampler, without its megabatches: our datasets are small).
 *
 * With `decisions` (sft.balance_decisions; one entry per index, null where the first turn is not
 * trained) and `groupByLength`, the trajectories of each question kind whose first turn answers and those
 * whose first turn searches are first taken in pairs of blocks, floor(batchSize / 2) answers with the
 * rest of a batch of searches, each block in length order; what does not fill such a batch is grouped
 * by length with the others. The batches are the same in number (ceil(n / batchSize)) and all full but
 * the last, so an epoch has the same steps either way.
 * @throws Error when `decisions` is given without `groupByLength`, for a batch size below 2, or with a
 *   length other than `lengths`'
 */
export function epochBatches(lengths: readonly number[], batchSize: number, groupByLength: boolean, rng: E.Rng, decisions?: readonly (SftDecision | null)[]): number[][] {
  const order = rng.shuffle(indices(lengths.length));
  if (groupByLength) order.sort((a, b) => lengths[a] - lengths[b]);
  const batches: number[][] = [];
  let rest = order;
  if (decisions) {
    if (!groupByLength || batchSize < 2) throw new Error(`sft.balance_decisions needs group_by_length and batches of >= 2 trajectories (got group_by_length ${groupByLength}, batch ${batchSize})`);
    if (decisions.length !== lengths.length) throw new Error(`epochBatches: ${decisions.length} decisions for ${lengths.length} trajectories`);
    const answers = Math.floor(batchSize / 2), searches = batchSize - answers;
    const byKind = new Map<string, { answer: number[]; search: number[] }>();
    for (const i of order) {
      const d = decisions[i];
      if (!d) continue;
      const k = byKind.get(d.kind) ?? { answer: [], search: [] };
      (d.searches ? k.search : k.answer).push(i);
      byKind.set(d.kind, k);
    }
    const paired = new Set<number>();
    for (const { answer, search } of byKind.values()) {
      const n = Math.min(Math.floor(answer.length / answers), Math.floor(search.length / searches));
      for (let b = 0; b < n; b++) {
        const batch = [...answer.slice(b * answers, (b + 1) * answers), ...search.slice(b * searches, (b + 1) * searches)];
        batch.forEach((i) => paired.add(i));
        batches.push(batch);
      }
    }
    rest = order.filter((i) => !paired.has(i));
  }
  for (let i = 0; i < rest.length; i += batchSize) batches.push(rest.slice(i, i + batchSize));
  return groupByLength ? rng.shuffle(batches) : batches;
}

/** 0..n-1, the indices a shuffle permutes. */
function indices(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
