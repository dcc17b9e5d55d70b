/**
 * GRPO, model-independent parts: group-relative advantages and the clipped per-token policy loss
 * with the k3 KL penalty and TRL's four aggregations. Follows TRL's GRPOTrainer
 * (huggingface/trl `trl/trainer/grpo_trainer.py` at f2cd577: `_generate_and_score_completions` for
 * the advantages, `_compute_loss` for the loss and metrics) and the notes' summary of veRL
 * (`core_algos.py`: GRPO outcome advantage, "low_var_kl").
 *
 * The loss is built from engine ops only, so gradients flow through the engine's autograd on either
 * backend; nothing is read back to the host.
 */
import {
  add,
  affine,
  div,
  exp,
  fromArray,
  full,
  greater,
  maximum,
  mean,
  mul,
  mulScalar,
  neg,
  noGrad,
  sub,
  sum,
  Tensor,
} from '../engine/index.js';

/** TRL `scale_rewards`: divide by the group std ('group', default), the batch std ('batch'), or not ('none' = Dr. GRPO). */
export type ScaleRewards = 'group' | 'batch' | 'none';

/**
 * TRL's eps in A = (R - mean) / (std + eps) (a literal 1e-4 in grpo_trainer.py). veRL's
 * `compute_grpo_outcome_advantage` (as forked in MMSearch-R1's core_algos.py) uses 1e-6, also with
 * the unbiased torch.std.
 */
export const ADVANTAGE_EPS = 1e-4;

/** Output of {@link computeAdvantages}; arrays are per rollout [N] unless said otherwise. */
export interface GroupAdvantages {
  /** A_i, one per rollout, to broadcast over the rollout's loss-masked tokens. */
  advantages: Float64Array;
  /** Mean reward of each rollout's group. */
  meanGroupedRewards: Float64Array;
  /** The std each rollout's deviation is divided by (group or batch std; still computed for 'none'). */
  stdRewards: Float64Array;
  /** Per group [N / G]: the group's rewards have zero std (no learning signal; DAPO resamples these). */
  isStdZero: boolean[];
  /** TRL metric names: `reward` (mean), `reward_std` (unbiased std over the batch), `frac_reward_zero_std`. */
  metrics: { reward: number; reward_std: number; frac_reward_zero_std: number };
}

/** Unbiased (Bessel-corrected) standard deviation, as TRL's `nanstd` (NaN for fewer than 2 values). */
function unbiasedStd(xs: ArrayLike<number>, from: number, to: number): number {
  const n = to - from;
  if (n < 2) return NaN;
  let m = 0;
  for (let i = from; i < to; i++) m += xs[i];
  m /= n;
  let ss = 0;
  for (let i = from; i < to; i++) ss += (xs[i] - m) ** 2;
  return Math.sqrt(ss / (n - 1));
}

/**
 * Group-relative advantages (TRL `_generate_and_score_completions`, multi_objective_aggregation
 * "sum_then_normalize"): A_i = (R_i - mean_group) / (std + eps), std the UNBIASED (Bessel, n - 1)
 * std of the group (`scale_rewards` 'group') or of the whole batch ('batch'); with 'none' (Dr. GRPO)
 * A_i = R_i - mean_group. `frac_reward_zero_std` is the share of rollouts whose std is 0 (TRL's
 * `torch.isclose(std, 0)`, i.e. std ≤ 1e-8).
 *
 * @param rewards [N] scalar rewards, group-major: the G rollouts of prompt 0, then of prompt 1, ...
 *   (TRL's `repeat_interleave` layout)
 * @param num_generations G, rollouts per prompt (≥ 2)
 * @param eps added to the std (default TRL's 1e-4)
 * @throws when G < 2, N is not a multiple of G, or a reward is not finite
 */
export function computeAdvantages(
  rewards: ArrayLike<number>,
  num_generations: number,
  scale_rewards: ScaleRewards = 'group',
  eps = ADVANTAGE_EPS,
): GroupAdvantages {
  const n = rewards.length, g = num_generations;
  if (!Number.isInteger(g) || g < 2) throw new Error(`computeAdvantages: num_generations must be an integer ≥ 2, got ${g}`);
  if (n === 0 || n % g !== 0) throw new Error(`computeAdvantages: ${n} rewards is not a positive multiple of num_generations ${g}`);
  for (let i = 0; i < n; i++) if (!Number.isFinite(rewards[i])) throw new Error(`computeAdvantages: rewards[${i}] is ${rewards[i]}`);

  const meanGrouped = new Float64Array(n), std = new Float64Array(n), advantages = new Float64Array(n);
  const batchStd = unbiasedStd(rewards, 0, n);
  for (let start = 0; start < n; start += g) {
    let m = 0;
    for (let i = start; i < start + g; i++) m += rewards[i];
    m /= g;
    const s = scale_rewards === 'batch' ? batchStd : unbiasedStd(rewards, start, start + g);
    meanGrouped.fill(m, start, start + g);
    std.fill(s, start, start + g);
  }
  for (let i = 0; i < n; i++) {
    const dev = rewards[i] - meanGrouped[i];
    advantages[i] = scale_rewards === 'none' ? dev : dev / (std[i] + eps);
  }
  const zero = Array.from(std, (s) => Math.abs(s) <= 1e-8);
  const isStdZero = Array.from({ length: n / g }, (_, k) => zero[k * g]);
  let total = 0;
  for (let i = 0; i < n; i++) total += rewards[i];
  return {
    advantages,
    meanGroupedRewards: meanGrouped,
    stdRewards: std,
    isStdZero,
    metrics: { reward: total / n, reward_std: n > 1 ? batchStd : 0, frac_reward_zero_std: zero.filter(Boolean).length / n },
  };
}

/** TRL `loss_type` values implemented here (TRL's default is 'dapo'; cispo / sapo / luspo / vespo are not). */
export const LOSS_TYPES = ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const;
export type LossType = (typeof LOSS_TYPES)[number];

/** Loss settings (TRL GRPOConfig names). */
export interface GRPOLossOptions {
  loss_type: LossType;
  /** KL coefficient; 0 skips the KL term (and needs no reference log-probs). */
  beta: number;
  /** Lower clip: the ratio is clipped below at 1 - epsilon. */
  epsilon: number;
  /** Upper clip 1 + epsilon_high; null / undefined = epsilon (TRL). */
  epsilon_high?: number | null;
  /** dr_grpo's constant: the loss is divided by B · max_completion_length. Required for dr_grpo. */
  max_completion_length?: number;
  /**
   * dapo's normaliser: loss-masked tokens of the whole generation batch (TRL `num_items_in_batch`,
   * counted once at generation), so accumulating micro-batches equals one big batch. Required for dapo.
   */
  num_items_in_batch?: number;
  /** grpo / bnpo / dr_grpo divide by it (TRL's `current_gradient_accumulation_steps`); dapo does not. Default 1. */
  gradient_accumulation_steps?: number;
}

/** Per-token inputs of one micro-batch: all [B, T] on one backend, f32. */
export interface GRPOLossInputs {
  /** log π_θ of each sampled token from the training forward (fp32, log_softmax(logits / temperature)), with grad. */
  per_token_logps: Tensor;
  /** log π_old stored before the update; omitted = per_token_logps detached (ratio 1, as TRL when on-policy). */
  old_per_token_logps?: Tensor;
  /** log π_ref; required when beta ≠ 0. */
  ref_per_token_logps?: Tensor;
  /** A_i [B] (host numbers or a tensor), broadcast over each rollout's tokens. */
  advantages: Tensor | ArrayLike<number>;
  /** TRL `completion_mask` [B, T], f32 0/1: 1 on completion tokens (0 on prompt and padding). Masked positions must hold finite values. */
  completion_mask: Tensor;
  /**
   * TRL `tool_mask` [B, T], f32 0/1: 0 on tokens a tool inserted (search results), 1 elsewhere; omitted = all 1.
   * The loss, its normalisers and the metrics use completion_mask · tool_mask, as TRL's `_compute_loss`.
   */
  tool_mask?: Tensor;
  /** Per-token entropy [B, T] for the `entropy` metric (optional). */
  entropies?: Tensor;
}

/** Metric names logged by TRL, as one-element tensors (read them with {@link readMetrics}). */
export type GRPOLossMetricName = 'kl' | 'entropy' | 'clip_ratio/low_mean' | 'clip_ratio/high_mean' | 'clip_ratio/region_mean';

export interface GRPOLossOutput {
  /** Scalar loss to call backward() on (already divided for gradient accumulation where TRL does). */
  loss: Tensor;
  /** The loss before the gradient-accumulation division (TRL's `policy_loss`), no grad. */
  policy_loss: Tensor;
  /** Masked token means over the micro-batch; `kl` only with a reference, `entropy` only with entropies. */
  metrics: Partial<Record<GRPOLossMetricName, Tensor>>;
}

const detach = (t: Tensor): Tensor => noGrad(() => t.reshape(t.shape));

function expectBT(t: Tensor, shape: readonly number[], what: string): void {
  t.assertAlive();
  if (t.shape.join() !== shape.join()) throw new Error(`grpoLoss: ${what} must be [${shape.join(', ')}], got ${t.describe()}`);
  if (t.dtype !== 'f32') throw new Error(`grpoLoss: ${what} must be f32, got ${t.describe()}`);
}

/**
 * The GRPO policy loss of one micro-batch (TRL `_compute_loss`, token-level importance sampling):
 *
 *   r = exp(logp - logp_old),  per_token = -min(r·A, clip(r, 1 - epsilon, 1 + epsilon_high)·A) + beta·k3,
 *   k3 = exp(logp_ref - logp) - (logp_ref - logp) - 1   (Schulman's k3, veRL "low_var_kl"),
 *
 * aggregated over masked tokens M (mask m = completion_mask · tool_mask) by `loss_type`:
 * - grpo: mean over sequences of Σ_t m·l / max(Σ_t m, 1), then / gradient_accumulation_steps;
 * - bnpo: Σ m·l / max(Σ m, 1) over the micro-batch, then / gradient_accumulation_steps;
 * - dr_grpo: Σ m·l / (B · max_completion_length), then / gradient_accumulation_steps;
 * - dapo: Σ m·l / max(num_items_in_batch, 1) (tokens of the whole generation batch; no further division).
 *
 * Metrics as TRL: kl = masked mean of k3; entropy = masked mean; clip_ratio/low_mean = share of
 * masked tokens with r < 1 - epsilon and A < 0, high_mean with r > 1 + epsilon_high and A > 0,
 * region_mean either. min and clip are composed from `maximum` (min(a, b) = -max(-a, -b)); at ties
 * the gradient goes to the unclipped term, which equals the clipped one there.
 *
 * @throws on shape or dtype mismatch, a missing reference with beta ≠ 0, a missing
 *   max_completion_length (dr_grpo) or num_items_in_batch (dapo), or an unknown loss_type
 */
export function grpoLoss(inputs: GRPOLossInputs, opts: GRPOLossOptions): GRPOLossOutput {
  const logp = inputs.per_token_logps;
  logp.assertAlive();
  if (logp.rank !== 2) throw new Error(`grpoLoss: per_token_logps must be [B, T], got ${logp.describe()}`);
  const shape = logp.shape;
  const [b] = shape;
  const be = logp.backend;
  expectBT(logp, shape, 'per_token_logps');
  expectBT(inputs.completion_mask, shape, 'completion_mask');
  if (inputs.old_per_token_logps) expectBT(inputs.old_per_token_logps, shape, 'old_per_token_logps');
  if (inputs.ref_per_token_logps) expectBT(inputs.ref_per_token_logps, shape, 'ref_per_token_logps');
  if (inputs.tool_mask) expectBT(inputs.tool_mask, shape, 'tool_mask');
  if (inputs.entropies) expectBT(inputs.entropies, shape, 'entropies');
  if (!LOSS_TYPES.includes(opts.loss_type)) throw new Error(`grpoLoss: unknown loss_type ${JSON.stringify(opts.loss_type)} (one of ${LOSS_TYPES.join(', ')})`);
  if (opts.beta !== 0 && !inputs.ref_per_token_logps) throw new Error(`grpoLoss: beta = ${opts.beta} needs ref_per_token_logps`);
  const ga = opts.gradient_accumulation_steps ?? 1;
  if (!(Number.isInteger(ga) && ga >= 1)) throw new Error(`grpoLoss: gradient_accumulation_steps must be an integer ≥ 1, got ${ga}`);

  const adv = inputs.advantages instanceof Tensor ? inputs.advantages : fromArray(be, Float64Array.from(inputs.advantages), [inputs.advantages.length]);
  if (adv.shape.join() !== String(b)) throw new Error(`grpoLoss: advantages must be [${b}], got ${adv.describe()}`);
  const a = detach(adv).reshape([b, 1]);
  const mask = inputs.tool_mask ? mul(inputs.completion_mask, inputs.tool_mask) : inputs.completion_mask;
  const lo = 1 - opts.epsilon;
  const hi = 1 + (opts.epsilon_high ?? opts.epsilon);
  const loT = full(be, [1], lo), hiT = full(be, [1], hi);

  const old = inputs.old_per_token_logps ? detach(inputs.old_per_token_logps) : detach(logp);
  const coef1 = exp(sub(logp, old));
  // clip(r, lo, hi) = min(max(r, lo), hi), min(x, h) = -max(-x, -h); r first so ties keep its gradient (torch.clamp is inclusive).
  const coef2 = neg(maximum(neg(maximum(coef1, loT)), neg(hiT)));
  // -min(r·A, clip(r)·A) = max(-r·A, -clip(r)·A)
  let perToken = maximum(neg(mul(coef1, a)), neg(mul(coef2, a)));
  let k3: Tensor | undefined;
  if (inputs.ref_per_token_logps) {
    const d = sub(detach(inputs.ref_per_token_logps), logp);
    k3 = affine(sub(exp(d), d), 1, -1);
    if (opts.beta !== 0) perToken = add(perToken, mulScalar(k3, opts.beta));
  }

  const masked = mul(perToken, mask);
  let policyLoss: Tensor;
  let divide = ga;
  switch (opts.loss_type) {
    case 'grpo': {
      const lengths = maximum(sum(mask, 1), full(be, [1], 1));
      policyLoss = mean(div(sum(masked, 1), lengths));
      break;
    }
    case 'bnpo':
      policyLoss = div(sum(masked), maximum(sum(mask), full(be, [], 1)));
      break;
    case 'dr_grpo': {
      const l = opts.max_completion_length;
      if (!(Number.isInteger(l) && l! >= 1)) throw new Error(`grpoLoss: loss_type dr_grpo needs max_completion_length (an integer ≥ 1), got ${l}`);
      policyLoss = mulScalar(sum(masked), 1 / (b * l!));
      break;
    }
    case 'dapo': {
      const items = opts.num_items_in_batch;
      if (items === undefined || !(items >= 0)) throw new Error(`grpoLoss: loss_type dapo needs num_items_in_batch (loss-masked tokens of the generation batch), got ${items}`);
      policyLoss = mulScalar(sum(masked), 1 / Math.max(items, 1));
      divide = 1;
      break;
    }
  }
  const loss = divide === 1 ? policyLoss : mulScalar(policyLoss, 1 / divide);

  const metrics = noGrad(() => {
    const tokens = maximum(sum(mask), full(be, [], 1));
    const maskedMean = (x: Tensor) => div(sum(mul(x, mask)), tokens);
    const zero = full(be, [1], 0);
    const low = mul(greater(loT, coef1), greater(zero, a));
    const high = mul(greater(coef1, hiT), greater(a, zero));
    const m: Partial<Record<GRPOLossMetricName, Tensor>> = {
      'clip_ratio/low_mean': maskedMean(low),
      'clip_ratio/high_mean': maskedMean(high),
      // A < 0 and A > 0 exclude each other, so low | high = low + high
      'clip_ratio/region_mean': maskedMean(add(low, high)),
    };
    if (k3) m.kl = maskedMean(k3);
    if (inputs.entropies) m.entropy = maskedMean(inputs.entropies);
    return m;
  });
  return { loss, policy_loss: detach(policyLoss), metrics };
}

/**
 * Reads metric tensors as plain numbers (one readback each: call it once per logged step, not per
 * micro-batch). @returns the same keys, e.g. `{ kl: 0.0012, 'clip_ratio/region_mean': 0 }`.
 */
export async function readMetrics<K extends string>(metrics: Partial<Record<K, Tensor>>): Promise<Partial<Record<K, number>>> {
  const out: Partial<Record<K, number>> = {};
  for (const [k, t] of Object.entries(metrics) as [K, Tensor][]) out[k] = await t.item();
  return out;
}
