/**
 * Batched decoding with a KV cache (rollouts and chat): B sequences advance together; each call
 * appends one block of tokens to every row (generated tokens, or inserted ones such as tool results,
 * follow-up user turns and image tokens) without recomputing any prefix. Rows of different lengths
 * are left-padded inside a block so that every row's newest real token sits at the block's end;
 * padding is masked out of attention and takes no RoPE position, so a row's logits do not depend on
 * what the other rows hold.
 */
import * as E from '../engine/index.js';
import type { KVCache } from '../nn/layers.js';
import { lastLogits, type CausalModel } from './llama.js';

/** Sampling settings (vLLM/transformers semantics). temperature 0 = greedy. */
export interface SamplingOptions {
  temperature: number;
  /** Keep the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches top_p (1 or undefined = all). */
  topP?: number;
  /** Token ids never sampled (transformers `suppress_tokens`), e.g. `<image>`, which only inserted images may carry. */
  suppressTokens?: readonly number[];
  rng: E.Rng;
}

/**
 * Samples one token from logits [V]. Returns the token and its log-probability under
 * log_softmax(logits / temperature) of the full vocabulary (the quantity the training forward
 * recomputes; greedy uses temperature 1 for it). Top-k and top-p restrict the draw, not the log-prob;
 * suppressed tokens are removed from the distribution (their probability is 0).
 */
export function sampleToken(logits: Float32Array, o: SamplingOptions): { token: number; logprob: number } {
  if (o.suppressTokens?.length) {
    logits = logits.slice();
    for (const id of o.suppressTokens) logits[id] = -Infinity;
  }
  const t = o.temperature > 0 ? o.temperature : 1;
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v / t);
  let z = 0;
  for (const v of logits) z += Math.exp(v / t - max);
  const logZ = max + Math.log(z);
  const logprob = (tok: number) => logits[tok] / t - logZ;
  if (o.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return { token: best, logprob: logprob(best) };
  }
  let order = byLogitDescending(logits);
  if (o.topK && o.topK > 0) order = order.slice(0, o.topK);
  if (o.topP !== undefined && o.topP < 1) {
    let mass = 0;
    const kept: number[] = [];
    for (const i of order) {
      kept.push(i);
      mass += Math.exp(logprob(i));
      if (mass >= o.topP) break;
    }
    order = kept;
  }
  const weights = Float64Array.from(order, (i) => Math.exp(logprob(i)));
  let u = o.rng.next() * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < order.length; j++) {
    u -= weights[j];
    if (u <= 0) return { token: order[j], logprob: logprob(order[j]) };
  }
  return { token: order[order.length - 1], logprob: logprob(order[order.length - 1]) };
}

/**
 * Token ids [V] ordered by logit, highest first, equal logits by ascending id (the order of a stable
 * comparison sort, which sampling's cumulative walk depends on bit for bit). Each id gets one float64
 * key, its logit's bits mapped to an unsigned integer that grows as the logit falls, times V, plus the
 * id; a native typed-array sort of the keys then replaces a comparator called about V·log V times per
 * sampled token (the sort was most of a sampled token's time). -0 counts as +0; NaN logits are not ordered.
 */
export function byLogitDescending(logits: Float32Array): number[] {
  const V = logits.length;
  if (V > 2 ** 21) return Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]); // keys past 2^53
  const f = new Float32Array(V);
  for (let i = 0; i < V; i++) f[i] = logits[i] + 0; // -0 + 0 is +0
  const bits = new Uint32Array(f.buffer);
  const keys = new Float64Array(V);
  for (let i = 0; i < V; i++) {
    const b = bits[i];
    keys[i] = (b >= 0x80000000 ? b : 0x7fffffff - b) * V + i; // negative: larger magnitude, larger key
  }
  keys.sort();
  const order = new Array<number>(V);
  for (let j = 0; j < V; j++) order[j] = keys[j] % V;
  return order;
}

/** Tokens to append to one row; `images` [n, 3, H, W] are the pixels of its `<image>` runs, in order. */
export interface Segment {
  ids: ArrayLike<number>;
  images?: E.Tensor;
}

export interface GenerateOptions {
  maxNewTokens: number;
  sampling: SamplingOptions;
  /** Rows that generate (others only receive padding). Default all. */
  active?: boolean[];
  /** End-of-sequence ids: a row stops after sampling one. */
  eosTokenIds?: number[];
  /** Called after each sampled token with the row's tokens so far in this call; true stops the row (e.g. `</answer>` decoded). */
  stop?: (row: number, tokens: number[]) => boolean;
}

export interface GenerateResult {
  /** Per row, the sampled token ids (empty for inactive rows). */
  tokens: number[][];
  /** Per row, each sampled token's log-probability (see sampleToken). */
  logprobs: number[][];
}

/** A batch of live sequences sharing one KV cache. Dispose it to free the cache. */
export class DecodeSession {
  readonly cache: KVCache;
  /** Host logits [B·V] of each row's newest token (after the last append). */
  private logits: Float32Array | null = null;
  /** Per row, every token appended so far (for inspection and the full-recompute check). */
  readonly history: number[][];

  constructor(readonly model: CausalModel, readonly batch: number, maxLength: number) {
    this.cache = model.makeCache(batch, maxLength);
    this.history = Array.from({ length: batch }, () => []);
  }

  /**
   * Appends one segment per row (null or empty = nothing for that row) as a single left-padded
   * block and runs the model on it. Returns the logits [B·V] of each row's newest token.
   * @throws when the cache would overflow, or when a row that received nothing yet has no logits
   */
  async append(segments: (Segment | null)[]): Promise<Float32Array> {
    if (segments.length !== this.batch) throw new Error(`append: ${segments.length} segments for ${this.batch} rows`);
    const len = Math.max(...segments.map((s) => s?.ids.length ?? 0));
    if (len === 0) throw new Error('append: every segment is empty');
    const ids = new Int32Array(this.batch * len);
    const mask = new Int32Array(this.batch * len);
    const images: E.Tensor[] = [];
    segments.forEach((s, r) => {
      const n = s?.ids.length ?? 0;
      for (let i = 0; i < n; i++) {
        ids[r * len + len - n + i] = s!.ids[i];
        mask[r * len + len - n + i] = 1;
        this.history[r].push(s!.ids[i]);
      }
      if (s?.images) images.push(s.images);
    });
    const v = this.model.text.vocab_size;
    const out = E.noGrad(() =>
      E.scope(() => {
        const pixels = images.length ? (images.length === 1 ? images[0] : E.concat(images, 0)) : undefined;
        const h = this.model.forward({ ids, batch: this.batch, length: len, mask }, this.cache, pixels);
        return lastLogits(this.model, h);
      }),
    );
    const fresh = (await out.data()) as Float32Array;
    out.dispose();
    // Rows that got nothing keep their previous logits.
    if (this.logits) segments.forEach((s, r) => s?.ids.length || fresh.set(this.logits!.subarray(r * v, (r + 1) * v), r * v));
    this.logits = fresh;
    return fresh;
  }

  /** Samples up to maxNewTokens per active row, appending each token to the cache as it goes. */
  async generate(o: GenerateOptions): Promise<GenerateResult> {
    if (!this.logits) throw new Error('generate: append a prompt first');
    const v = this.model.text.vocab_size;
    const running = Array.from({ length: this.batch }, (_, r) => o.active?.[r] ?? true);
    const tokens: number[][] = Array.from({ length: this.batch }, () => []);
    const logprobs: number[][] = Array.from({ length: this.batch }, () => []);
    for (let step = 0; step < o.maxNewTokens && running.some(Boolean); step++) {
      const segs: (Segment | null)[] = running.map((run, r) => {
        if (!run) return null;
        const { token, logprob } = sampleToken(this.logits!.subarray(r * v, (r + 1) * v), o.sampling);
        tokens[r].push(token);
        logprobs[r].push(logprob);
        if (o.eosTokenIds?.includes(token) || o.stop?.(r, tokens[r]) || tokens[r].length >= o.maxNewTokens) running[r] = false;
        return { ids: [token] };
      });
      await this.append(segs);
    }
    return { tokens, logprobs };
  }

  dispose(): void {
    this.cache.dispose();
  }
}
