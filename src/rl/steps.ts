/**
 * The training steps on the engine: token batches from trajectories, per-token log-probs from the
 * training forward (fp32, log_softmax(logits / temperature); TRL `_get_per_token_logps`), the SFT
 * cross-entropy step, and the GRPO update over one generation batch (micro-batches, gradient
 * accumulation, num_iterations with stored old log-probs, reference KL, grad-norm clipping, AdamW;
 * TRL GRPOTrainer `_compute_loss` / `training_step`). Non-finite losses or gradients skip the step.
 */
import * as E from '../engine/index.js';
import type { CausalModel, TokenBatch } from '../models/llama.js';
import { imagePixels } from './conversation.js';
import { grpoLoss, readMetrics, type GRPOLossMetricName, type LossType } from './grpo.js';

/**
 * A sequence to train on: tokens, images in `<image>` order, and TRL's two masks per token, kept apart
 * until the loss, which trains on tokens where both are 1.
 */
export interface TrainSequence {
  tokens: readonly number[];
  /** TRL `completion_mask`: 1 on the tokens the loss may train (a rollout's completion; SFT's assistant tokens). */
  completion_mask: readonly number[];
  /** TRL `tool_mask`: 0 on tokens a tool inserted, 1 elsewhere; omitted = all 1. */
  tool_mask?: readonly number[];
  images: readonly Uint8Array[];
}

/** Right-padded batch of sequences with next-token targets and the mask of trained positions. */
export interface PackedBatch {
  batch: TokenBatch;
  /** [B·T] next token at each position (pad at the end). */
  targets: Int32Array;
  /** [B·T] completion_mask of token t+1 at position t (position t predicts token t+1). */
  completionMask: Float32Array;
  /** [B·T] tool_mask of token t+1 at position t; 1 on padding, as TRL pads it; omitted = all 1. */
  toolMask?: Float32Array;
  /** [N, 3, S, S] pixel values of the batch's images in row-major token order, or undefined. */
  pixels?: Float32Array;
  numImages: number;
}

/**
 * Packs sequences right-padded to the longest. Position t predicts token t+1, so the masks at t are
 * those of token t+1 (TRL's completion_mask and tool_mask aligned with shifted logits).
 * @throws when a sequence's masks and tokens differ in length
 */
export function packBatch(seqs: readonly TrainSequence[], padId: number, imageSize: number): PackedBatch {
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.tokens.length));
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Int32Array(B * T);
  const targets = new Int32Array(B * T).fill(padId);
  const completionMask = new Float32Array(B * T);
  const toolMask = new Float32Array(B * T).fill(1);
  const images: Float32Array[] = [];
  seqs.forEach((s, b) => {
    if (s.tokens.length !== s.completion_mask.length) throw new Error(`sequence ${b}: ${s.tokens.length} tokens but ${s.completion_mask.length} completion_mask entries`);
    if (s.tool_mask && s.tokens.length !== s.tool_mask.length) throw new Error(`sequence ${b}: ${s.tokens.length} tokens but ${s.tool_mask.length} tool_mask entries`);
    for (let t = 0; t < s.tokens.length; t++) {
      ids[b * T + t] = s.tokens[t];
      mask[b * T + t] = 1;
      if (t + 1 < s.tokens.length) {
        targets[b * T + t] = s.tokens[t + 1];
        completionMask[b * T + t] = s.completion_mask[t + 1];
        if (s.tool_mask) toolMask[b * T + t] = s.tool_mask[t + 1];
      }
    }
    for (const img of s.images) images.push(imagePixels(img, imageSize));
  });
  let pixels: Float32Array | undefined;
  if (images.length) {
    pixels = new Float32Array(images.length * images[0].length);
    images.forEach((p, i) => pixels!.set(p, i * p.length));
  }
  return { batch: { ids, batch: B, length: T, mask }, targets, completionMask, toolMask, pixels, numImages: images.length };
}

/** completion_mask · tool_mask of a packed batch: 1 where the loss trains (both masks are 0/1, so the product is exact). */
export function lossMask(p: PackedBatch): Float32Array {
  const tool = p.toolMask;
  return tool ? p.completionMask.map((c, i) => c * tool[i]) : p.completionMask;
}

/** The decoder's last hidden states [B·T, D] (f32) of a packed batch, images through the vision tower. */
function hiddenStates(model: CausalModel, p: PackedBatch, imageSize: number): E.Tensor {
  const images = p.pixels ? E.fromArray(model.backend, p.pixels, [p.numImages, 3, imageSize, imageSize]) : undefined;
  return model.forward(p.batch, undefined, images).reshape([p.batch.batch * p.batch.length, model.text.hidden_size]);
}

/**
 * Per-token log-probs [B, T] of the targets and entropies [B, T] from a training forward.
 * Differentiable when grad is enabled.
 */
export function sequenceLogprobs(model: CausalModel, p: PackedBatch, temperature: number, imageSize: number): { logprobs: E.Tensor; entropy: E.Tensor } {
  const { batch: B, length: T } = p.batch;
  const r = E.tokenLogprobs(hiddenStates(model, p, imageSize), model.lmHeadWeight(), E.fromArray(model.backend, p.targets, [B * T], 'i32'), { temperature });
  return { logprobs: r.logprobs.reshape([B, T]), entropy: r.entropy.reshape([B, T]) };
}

/**
 * Log-probs and entropies [N] (f32, nats, of log_softmax(logits / temperature)) of the targets at the N
 * positions where lossMask(p) is 1, in row-major order (`rows`, i32 indices into the packed [B·T]); the
 * LM head and its log-softmax run on those positions only (an SFT batch trains about a quarter of its
 * positions, a GRPO batch under half, the rest being prompts, tool results and padding). Equal to
 * sequenceLogprobs at those positions; differentiable when grad is enabled (the gather's backward
 * scatter-adds into the hidden states). The loss these feed is TRL's: SFT's masked NLL, GRPO's
 * per-token loss over completion_mask · tool_mask.
 * @throws Error when no position of the batch is loss-masked (N would be 0)
 */
export function maskedLogprobs(model: CausalModel, p: PackedBatch, temperature: number, imageSize: number): { logprobs: E.Tensor; entropy: E.Tensor; rows: Int32Array } {
  const be = model.backend;
  const picked: number[] = [];
  lossMask(p).forEach((v, i) => v !== 0 && picked.push(i));
  if (picked.length === 0) throw new Error('maskedLogprobs: the batch has no loss-masked position');
  const rows = Int32Array.from(picked);
  const trained = E.embedding(hiddenStates(model, p, imageSize), E.fromArray(be, rows, [rows.length], 'i32'));
  const targets = E.fromArray(be, Int32Array.from(rows, (i) => p.targets[i]), [rows.length], 'i32');
  return { ...E.tokenLogprobs(trained, model.lmHeadWeight(), targets, { temperature }), rows };
}

/**
 * sequenceLogprobs' [B, T] log-probs and entropies (f32) with the LM head on the loss-masked positions
 * only (maskedLogprobs, spread back to [B, T] through a gather whose backward scatter-adds): equal to
 * sequenceLogprobs' where lossMask(p) is 1, 0 elsewhere. For losses that read the log-probs through
 * completion_mask · tool_mask only, as GRPO's does (TRL GRPOTrainer._compute_loss). A batch with no
 * loss-masked position takes sequenceLogprobs whole (its loss is then 0 anyway). Throws nothing of its own.
 */
export function lossMaskedSequenceLogprobs(model: CausalModel, p: PackedBatch, temperature: number, imageSize: number): { logprobs: E.Tensor; entropy: E.Tensor } {
  const mask = lossMask(p);
  if (!mask.some((v) => v !== 0)) return sequenceLogprobs(model, p, temperature, imageSize);
  const { batch: B, length: T } = p.batch;
  const be = model.backend;
  const { logprobs, entropy, rows } = maskedLogprobs(model, p, temperature, imageSize);
  // Position rows[j] takes value j; the others take value 0, which the mask then zeroes.
  const at = new Int32Array(B * T);
  rows.forEach((r, j) => (at[r] = j));
  const index = E.fromArray(be, at, [B * T], 'i32');
  const zeroed = E.fromArray(be, mask, [B, T]);
  const spread = (v: E.Tensor) => E.mul(E.embedding(v.reshape([rows.length, 1]), index).reshape([B, T]), zeroed);
  return { logprobs: spread(logprobs), entropy: spread(entropy) };
}

/** Splits `items` into consecutive chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface OptimizerStep {
  optimizer: E.AdamW;
  params: E.Tensor[];
  /** 0 disables clipping (the norm is still measured). */
  maxGradNorm: number;
  lr: number;
}

/**
 * Clips and applies the accumulated gradients, unless the gradient norm is not finite (then the
 * gradients are dropped and the step is skipped). Returns the pre-clip norm and whether it stepped.
 */
export async function applyGradients(o: OptimizerStep): Promise<{ gradNorm: number; stepped: boolean }> {
  const clip = E.clipGradNorm(o.params, o.maxGradNorm > 0 ? o.maxGradNorm : Number.MAX_VALUE);
  const gradNorm = (await clip.data())[0];
  const stepped = Number.isFinite(gradNorm);
  if (stepped) o.optimizer.step(clip, o.lr);
  clip.dispose();
  E.zeroGrad(o.params);
  return { gradNorm, stepped };
}

/** Loss-masked (trained) tokens of a sequence: completion_mask x tool_mask over positions 1.. (position 0 is never predicted). */
export function trainedTokens(s: Pick<TrainSequence, 'completion_mask' | 'tool_mask'>): number {
  return s.completion_mask.reduce((a, c, t) => a + (t ? c * (s.tool_mask?.[t] ?? 1) : 0), 0);
}

/**
 * One SFT optimizer step: next-token cross-entropy summed over the loss-masked tokens of all sequences
 * (micro-batches of `microBatch` sequences accumulate), divided by `normalizer` when given (sft.loss_agg_mode
 * 'token-sum-norm': a constant, so every token weighs the same in every step) or else by the batch's own
 * trained tokens ('token-mean', transformers' Trainer). With `groups` (sequence counts, in order, summing to the
 * batch) the loss is the sum of each group's own token-mean: every group gets the gradient it would get alone,
 * whatever the others' lengths (the caption stage's captions and name copies). Returns the loss in nats per
 * trained token (with groups: the sum of the groups' means).
 * @throws Error when the batch or a group has no trained token, `normalizer` is not > 0, `groups` does not
 *   sum to the batch, or both are given.
 */
export async function sftStep(model: CausalModel, seqs: readonly TrainSequence[], o: OptimizerStep & { microBatch: number; padId: number; imageSize: number; normalizer?: number; groups?: readonly number[] }): Promise<{ loss: number; tokens: number; gradNorm: number; stepped: boolean }> {
  if (o.normalizer !== undefined && !(o.normalizer > 0)) throw new Error(`sftStep: normalizer must be > 0, got ${o.normalizer}`);
  if (o.groups && o.normalizer !== undefined) throw new Error('sftStep: give normalizer or groups, not both');
  const groups = o.groups ?? [seqs.length];
  if (groups.reduce((a, n) => a + n, 0) !== seqs.length) throw new Error(`sftStep: groups [${groups.join(', ')}] do not sum to the batch's ${seqs.length} sequences`);
  let loss = 0, tokens = 0, start = 0;
  for (const [g, n] of groups.entries()) {
    const part = seqs.slice(start, (start += n));
    const total = part.reduce((a, s) => a + trainedTokens(s), 0);
    if (total === 0) throw new Error(groups.length > 1 ? `sftStep: no loss-masked tokens in group ${g}` : 'sftStep: no loss-masked tokens in the batch');
    const norm = o.normalizer ?? total;
    for (const mb of chunks(part, o.microBatch)) {
      const p = packBatch(mb, o.padId, o.imageSize);
      if (!lossMask(p).some((v) => v !== 0)) continue; // a micro-batch with nothing to train adds no gradient
      const l = await E.scope(async () => {
        const nll = E.mulScalar(E.sum(maskedLogprobs(model, p, 1, o.imageSize).logprobs), -1 / norm);
        nll.backward();
        return nll.item();
      });
      loss += (l * norm) / total;
    }
    tokens += total;
  }
  if (!Number.isFinite(loss)) {
    E.zeroGrad(o.params);
    return { loss, tokens, gradNorm: NaN, stepped: false };
  }
  return { loss, tokens, ...(await applyGradients(o)) };
}

export interface GRPOUpdateOptions {
  loss_type: LossType;
  beta: number;
  epsilon: number;
  epsilon_high: number | null;
  temperature: number;
  max_completion_length: number;
  num_iterations: number;
  /** Rollouts per micro-batch (per_device_train_batch_size). */
  microBatch: number;
  gradient_accumulation_steps: number;
  padId: number;
  imageSize: number;
  /** Reference model (frozen copy, or the same model with adapters disabled via `withReference`). */
  withReference?: <T>(fn: () => Promise<T>) => Promise<T>;
  ref?: CausalModel;
}

export type GRPOStepMetrics = Partial<Record<GRPOLossMetricName | 'loss' | 'grad_norm', number>> & { skipped_steps: number; optimizer_steps: number };

/**
 * The GRPO update over one generation batch: `steps_per_generation` micro-batches of `microBatch`
 * rollouts, an optimizer step every gradient_accumulation_steps micro-batches, repeated
 * num_iterations times. Old log-probs are stored (no grad) before the first update when the policy
 * moves within the batch (num_iterations > 1 or several optimizer steps per batch), else the ratio
 * is 1 (TRL). dapo normalises by the generation batch's loss-masked tokens (`num_items_in_batch`).
 */
export async function grpoUpdate(model: CausalModel, seqs: readonly TrainSequence[], advantages: ArrayLike<number>, o: GRPOUpdateOptions & OptimizerStep): Promise<GRPOStepMetrics> {
  // Micro-batches of similar lengths (less padding); each keeps its rollouts' indices for the advantages.
  const byLength = seqs.map((s, i) => ({ s, i })).sort((a, b) => a.s.tokens.length - b.s.tokens.length);
  const micro = chunks(byLength, o.microBatch);
  const packed = micro.map((mb) => packBatch(mb.map((x) => x.s), o.padId, o.imageSize));
  const numItems = packed.reduce((n, p) => n + lossMask(p).reduce((a, b) => a + b, 0), 0);
  const offPolicy = o.num_iterations > 1 || micro.length > o.gradient_accumulation_steps;
  const be = model.backend;
  const logpsOf = async (m: CausalModel, p: PackedBatch) => {
    const t = E.noGrad(() => E.scope(() => lossMaskedSequenceLogprobs(m, p, o.temperature, o.imageSize).logprobs.keep()));
    const d = (await t.data()) as Float32Array;
    t.dispose();
    return d;
  };
  const old = offPolicy ? await Promise.all(packed.map((p) => logpsOf(model, p))) : undefined;
  let refLogps: Float32Array[] | undefined;
  if (o.beta !== 0) {
    if (o.ref) refLogps = await Promise.all(packed.map((p) => logpsOf(o.ref!, p)));
    else if (o.withReference) refLogps = await o.withReference(() => Promise.all(packed.map((p) => logpsOf(model, p))));
    else throw new Error('grpoUpdate: beta ≠ 0 needs a reference model');
  }
  const sums: Record<string, number> = {};
  let count = 0, skipped = 0, steps = 0;
  for (let it = 0; it < o.num_iterations; it++) {
    for (let k = 0; k < packed.length; k++) {
      const p = packed[k];
      const shape = [p.batch.batch, p.batch.length];
      const m = await E.scope(async () => {
        const { logprobs, entropy } = lossMaskedSequenceLogprobs(model, p, o.temperature, o.imageSize);
        const out = grpoLoss(
          {
            per_token_logps: logprobs,
            old_per_token_logps: old && E.fromArray(be, old[k], shape),
            ref_per_token_logps: refLogps && E.fromArray(be, refLogps[k], shape),
            advantages: micro[k].map((x) => advantages[x.i]),
            completion_mask: E.fromArray(be, p.completionMask, shape),
            tool_mask: p.toolMask && E.fromArray(be, p.toolMask, shape),
            entropies: entropy,
          },
          { loss_type: o.loss_type, beta: o.beta, epsilon: o.epsilon, epsilon_high: o.epsilon_high, max_completion_length: o.max_completion_length, num_items_in_batch: numItems, gradient_accumulation_steps: o.gradient_accumulation_steps },
        );
        out.loss.backward();
        return { loss: await out.policy_loss.item(), ...(await readMetrics(out.metrics)) };
      });
      for (const [key, v] of Object.entries(m)) sums[key] = (sums[key] ?? 0) + (v as number);
      count++;
      if ((k + 1) % o.gradient_accumulation_steps === 0 || k === packed.length - 1) {
        const r = await applyGradients(o);
        sums.grad_norm = (sums.grad_norm ?? 0) + r.gradNorm;
        steps++;
        if (!r.stepped) skipped++;
      }
    }
  }
  const out: GRPOStepMetrics = { skipped_steps: skipped, optimizer_steps: steps };
  for (const [key, v] of Object.entries(sums)) (out as Record<string, number>)[key] = v / (key === 'grad_norm' ? steps : count);
  return out;
}

/**
 * The policy's log-probability of every token of each sequence given the tokens before it (fp32,
 * log_softmax(logits / temperature), as the loss computes them), no grad, in micro-batches of `microBatch`.
 * The step inspector scores a GRPO batch with it before and after the update.
 * @returns per sequence, entry t = log π(tokens[t] | tokens[<t]) (entry 0, which nothing predicts, is 0)
 */
export async function scoreTokens(model: CausalModel, seqs: readonly TrainSequence[], o: { microBatch: number; padId: number; imageSize: number; temperature: number }): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const mb of chunks(seqs, o.microBatch)) {
    const p = packBatch(mb, o.padId, o.imageSize);
    const t = E.noGrad(() => E.scope(() => sequenceLogprobs(model, p, o.temperature, o.imageSize).logprobs.keep()));
    const d = (await t.data()) as Float32Array;
    t.dispose();
    const T = p.batch.length;
    mb.forEach((s, b) => {
      const lp = new Float32Array(s.tokens.length);
      // Position t predicts token t + 1.
      lp.set(d.subarray(b * T, b * T + s.tokens.length - 1), 1);
      out.push(lp);
    });
  }
  return out;
}
