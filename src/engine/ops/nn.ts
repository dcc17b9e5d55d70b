/**
 * Fused neural-network ops for transformer training, each with forward and backward side by side:
 * softmax, RMSNorm, LayerNorm, rotary embedding, embedding lookup, attention, token log-probs.
 */
import type { AttentionParams, Backend } from '../backend.js';
import { fromArray } from './creation.js';
import { numel } from '../dtype.js';
import { isGradEnabled, record, Tensor } from '../tensor.js';
import { broadcastTo, wrap } from './shape.js';

function lastDim(x: Tensor, op: string): { rows: number; n: number } {
  if (x.rank < 1) throw new Error(`${op}: needs at least one axis, got ${x.describe()}`);
  const n = x.shape[x.rank - 1];
  return { rows: x.size / n, n };
}

function expectShape(t: Tensor, shape: readonly number[], op: string, what: string): void {
  if (t.shape.join() !== shape.join()) throw new Error(`${op}: ${what} must be [${shape.join(', ')}], got ${t.describe()}`);
}

/**
 * Softmax over the last axis. `mask` (any dtype, nonzero = keep), broadcastable to x, removes
 * positions; a fully masked row gives zeros.
 */
export function softmax(x: Tensor, mask?: Tensor): Tensor {
  x.assertAlive();
  const { rows, n } = lastDim(x, 'softmax');
  let m = mask;
  if (mask && mask.shape.join() !== x.shape.join()) m = broadcastTo(mask, x.shape);
  const out = wrap(x.backend.softmax(x.storage, rows, n, m?.storage), x.shape);
  record('softmax', [x], [out], ([g]) => [g && wrap(x.backend.softmaxGrad(out.storage, g.storage, rows, n), x.shape)]);
  return out;
}

/** RMSNorm over the last axis (HF LlamaRMSNorm): x / sqrt(mean(x²) + eps) · weight. weight [n]. */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  x.assertAlive();
  const { rows, n } = lastDim(x, 'rmsNorm');
  expectShape(weight, [n], 'rmsNorm', 'weight');
  const { y, rstd } = x.backend.rmsnorm(x.storage, weight.storage, rows, n, eps);
  const out = wrap(y, x.shape);
  const rstdT = wrap(rstd, [rows]);
  record('rmsNorm', [x, weight], [out], ([g]) => {
    if (!g) return [null, null];
    const { dx, dw } = x.backend.rmsnormGrad(x.storage, weight.storage, rstdT.storage, g.storage, rows, n);
    return [wrap(dx, x.shape), wrap(dw, [n])];
  });
  return out;
}

/** LayerNorm over the last axis (torch.nn.LayerNorm, biased variance). weight, bias [n]. */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  x.assertAlive();
  const { rows, n } = lastDim(x, 'layerNorm');
  expectShape(weight, [n], 'layerNorm', 'weight');
  expectShape(bias, [n], 'layerNorm', 'bias');
  const r = x.backend.layernorm(x.storage, weight.storage, bias.storage, rows, n, eps);
  const out = wrap(r.y, x.shape);
  const meanT = wrap(r.mean, [rows]), rstdT = wrap(r.rstd, [rows]);
  record('layerNorm', [x, weight, bias], [out], ([g]) => {
    if (!g) return [null, null, null];
    const { dx, dw, db } = x.backend.layernormGrad(x.storage, weight.storage, meanT.storage, rstdT.storage, g.storage, rows, n);
    return [wrap(dx, x.shape), wrap(dw, [n]), wrap(db, [n])];
  });
  return out;
}

/**
 * The rotary table for `rope`: [maxPositions, headDim/2, 2] holding (cos, sin) of p·theta^(-2i/headDim),
 * computed in float64 on the host (as HF's rotary embedding module caches cos/sin; WGSL sin/cos are
 * inaccurate for large angles). Build it once per model (rope_theta, head_dim, max_position_embeddings).
 */
export function ropeTable(backend: Backend, theta: number, headDim: number, maxPositions: number): Tensor {
  if (headDim % 2) throw new Error(`ropeTable: head_dim ${headDim} must be even`);
  const half = headDim / 2;
  const a = new Float64Array(maxPositions * half * 2);
  for (let p = 0; p < maxPositions; p++)
    for (let i = 0; i < half; i++) {
      const ang = p * theta ** ((-2 * i) / headDim);
      a[(p * half + i) * 2] = Math.cos(ang);
      a[(p * half + i) * 2 + 1] = Math.sin(ang);
    }
  return fromArray(backend, backend.name === 'cpu' ? a : Float32Array.from(a), [maxPositions, half, 2], 'f32', 'rope table');
}

/**
 * Rotary position embedding (Su et al. 2021) in Hugging Face's `rotate_half` layout:
 * x [B, T, H, D] (D even), positions [B, T] i32, table from ropeTable(theta, D, maxPositions).
 * Positions outside the table pass through unrotated. Backward is the inverse rotation.
 */
export function rope(x: Tensor, positions: Tensor, table: Tensor): Tensor {
  x.assertAlive();
  if (x.rank !== 4 || x.shape[3] % 2) throw new Error(`rope: x must be [B, T, H, D] with even D, got ${x.describe()}`);
  const [b, t, h, d] = x.shape;
  expectShape(positions, [b, t], 'rope', 'positions');
  if (positions.dtype !== 'i32') throw new Error(`rope: positions must be i32, got ${positions.describe()}`);
  if (table.rank !== 3 || table.shape[1] !== d / 2 || table.shape[2] !== 2) throw new Error(`rope: table must be [maxPositions, ${d / 2}, 2], got ${table.describe()}`);
  const out = wrap(x.backend.rope(x.storage, positions.storage, table.storage, b, t, h, d, false), x.shape);
  record('rope', [x], [out], ([g]) => [g && wrap(x.backend.rope(g.storage, positions.storage, table.storage, b, t, h, d, true), x.shape)]);
  return out;
}

/** Embedding lookup: weight [V, D], ids (i32, any shape) -> [...ids.shape, D]. Backward scatter-adds into weight rows. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  weight.assertAlive();
  ids.assertAlive();
  if (weight.rank !== 2) throw new Error(`embedding: weight must be [V, D], got ${weight.describe()}`);
  if (ids.dtype !== 'i32') throw new Error(`embedding: ids must be i32, got ${ids.describe()}`);
  const [v, d] = weight.shape;
  const out = wrap(weight.backend.gather(weight.storage, ids.storage, 1, v, d), [...ids.shape, d]);
  record('embedding', [weight], [out], ([g]) => [g && wrap(weight.backend.scatterAdd(g.storage, ids.storage, 1, v, d), weight.shape)]);
  return out;
}

export interface AttentionOptions {
  /** [B, S_max] mask of keys to attend (nonzero = attend), e.g. the padding mask. */
  keyMask?: Tensor;
  causal?: boolean;
  /** Defaults to 1/sqrt(D). */
  scale?: number;
  /** Number of valid keys when k/v are a preallocated KV cache [B, S_max, Hkv, D]; defaults to S_max. */
  kvLength?: number;
}

/**
 * Fused scaled-dot-product attention with grouped-query heads (Ainslie et al. 2023):
 * q [B, T, Hq, D], k and v [B, S, Hkv, D] with Hq a multiple of Hkv (query head h uses KV head
 * h / (Hq/Hkv), as HF repeat_kv). Causal: query t sits at key index t + (S - T), so one op serves
 * training (T = S) and KV-cache decoding (T new tokens after S - T cached ones). Output [B, T, Hq, D].
 * Memory is O(B·T·H) beyond inputs/outputs: no [T x S] matrix is stored for backward (the
 * log-sum-exp per row is, FlashAttention-style: Dao et al. 2022).
 * Backward needs kvLength = S (the training case).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  for (const t of [q, k, v]) t.assertAlive();
  if (q.rank !== 4 || k.rank !== 4) throw new Error(`attention: q, k, v must be [B, T, H, D], got ${q.describe()}, ${k.describe()}`);
  const [b, t, hq, d] = q.shape;
  const [kb, sMax, hkv, kd] = k.shape;
  expectShape(v, k.shape, 'attention', 'v');
  if (kb !== b || kd !== d) throw new Error(`attention: k ${k.describe()} does not match q ${q.describe()}`);
  if (hq % hkv) throw new Error(`attention: ${hq} query heads are not a multiple of ${hkv} KV heads`);
  if (d > 256) throw new Error(`attention: head_dim ${d} is above the supported 256`);
  const s = opts.kvLength ?? sMax;
  if (s < t || s > sMax) throw new Error(`attention: kvLength ${s} must be in [T=${t}, S_max=${sMax}]`);
  if (opts.keyMask) {
    expectShape(opts.keyMask, [b, sMax], 'attention', 'keyMask');
  }
  const p: AttentionParams = { batch: b, t, s, sMax, hq, hkv, d, scale: opts.scale ?? 1 / Math.sqrt(d), causal: !!opts.causal, qOffset: s - t };
  const mask = opts.keyMask?.storage;
  const { o, lse } = q.backend.attention(q.storage, k.storage, v.storage, mask, p);
  const out = wrap(o, q.shape);
  const lseT = wrap(lse, [b, t, hq]);
  record('attention', [q, k, v], [out], ([g]) => {
    if (!g) return [null, null, null];
    if (s !== sMax) throw new Error('attention backward: kvLength < S_max (a KV-cache step) is inference-only');
    const r = q.backend.attentionGrad(q.storage, k.storage, v.storage, out.storage, lseT.storage, g.storage, mask, p);
    return [wrap(r.dq, q.shape), wrap(r.dk, k.shape), wrap(r.dv, v.shape)];
  });
  return out;
}

export interface TokenLogprobOptions {
  /** Logits are divided by it before log_softmax (TRL / veRL use the sampling temperature). Default 1. */
  temperature?: number;
  /** Vocabulary ids per chunk; bounds the transient logits to [N, chunkSize]. Default 8192. */
  chunkSize?: number;
  /** Keep the forward's logits for the backward instead of recomputing them. Default: when N·V ≤ KEPT_LOGITS_MAX. */
  keepLogits?: boolean;
}

/** Largest [N, V] logits (floats, 64 MB) that tokenLogprobs keeps for its backward instead of recomputing. */
export const KEPT_LOGITS_MAX = 16 << 20;

/**
 * Fused LM-head + log_softmax + gather + entropy, chunked over the vocabulary:
 * z = (hidden · weightᵀ) / temperature, logprobs[i] = z[i, targets[i]] - logsumexp(z[i]),
 * entropy[i] = -Σ_j p_ij log p_ij. hidden [N, D] f32, weight [V, D] (lm_head / tied embedding),
 * targets [N] i32. Returns logprobs [N] and entropy [N], both differentiable (entropy for an entropy
 * bonus; TRL logs it). Forward keeps per-row running statistics (online softmax, Milakov &
 * Gimelshein 2018). Backward recomputes each chunk's logits, unless they are kept (`keepLogits`,
 * by default when all of them fit in KEPT_LOGITS_MAX floats): then the forward's chunks stay
 * (scope-owned, like other saved activations) and the recompute, a third of the head's work, is skipped.
 * @throws on shape or dtype mismatch, or a target outside [0, V) (CPU backend).
 */
export function tokenLogprobs(hidden: Tensor, weight: Tensor, targets: Tensor, opts: TokenLogprobOptions = {}): { logprobs: Tensor; entropy: Tensor } {
  for (const t of [hidden, weight, targets]) t.assertAlive();
  if (hidden.rank !== 2 || weight.rank !== 2 || hidden.shape[1] !== weight.shape[1])
    throw new Error(`tokenLogprobs: hidden [N, D] and weight [V, D] expected, got ${hidden.describe()} and ${weight.describe()}`);
  const [n, dm] = hidden.shape;
  const vocab = weight.shape[0];
  expectShape(targets, [n], 'tokenLogprobs', 'targets');
  if (targets.dtype !== 'i32') throw new Error(`tokenLogprobs: targets must be i32, got ${targets.describe()}`);
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0)) throw new Error(`tokenLogprobs: temperature must be > 0, got ${temperature}`);
  const chunk = Math.min(opts.chunkSize ?? 8192, vocab);
  const be = hidden.backend;
  const chunkLogits = (v0: number, vc: number) =>
    be.matmul(hidden.storage, weight.storage, { batch: 1, m: n, n: vc, k: dm, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0, bOffset: v0 * dm });

  // Per row: running max (starts at a finite -1e30: GPU compilers may assume no infinities), Σexp, Σexp·z, target z.
  const stats = wrap(be.fill(n * 4, 0, 'f32'), [n, 4]);
  const lowest = be.fill(1, -1e30, 'f32');
  be.copy(lowest, { shape: [n], srcStrides: [0], srcOffset: 0, dstStrides: [4], dstOffset: 0 }, stats.storage);
  be.free(lowest);
  const keep = isGradEnabled() && (hidden.requiresGrad || weight.requiresGrad) && (opts.keepLogits ?? n * vocab <= KEPT_LOGITS_MAX);
  const kept: Tensor[] = [];
  for (let v0 = 0; v0 < vocab; v0 += chunk) {
    const vc = Math.min(chunk, vocab - v0);
    const logits = chunkLogits(v0, vc);
    be.logprobChunk(logits, targets.storage, stats.storage, n, vc, v0, temperature);
    if (keep) kept.push(wrap(logits, [n, vc]));
    else be.free(logits);
  }
  const both = wrap(be.logprobFinish(stats.storage, n), [n, 2]);
  const logprobs = wrap(be.copy(both.storage, { shape: [n], srcStrides: [2], srcOffset: 0, dstStrides: [1], dstOffset: 0 }), [n]);
  const entropy = wrap(be.copy(both.storage, { shape: [n], srcStrides: [2], srcOffset: 1, dstStrides: [1], dstOffset: 0 }), [n]);

  record('tokenLogprobs', [hidden, weight], [logprobs, entropy], ([gl, ge]) => {
    const zeroN = () => be.fill(n, 0, 'f32');
    const dl = gl?.storage ?? zeroN(), de = ge?.storage ?? zeroN();
    const dh = hidden.requiresGrad ? wrap(be.fill(n * dm, 0, 'f32'), hidden.shape) : null;
    const dw = weight.requiresGrad ? wrap(be.alloc(numel(weight.shape), 'f32'), weight.shape) : null;
    for (let v0 = 0, c = 0; v0 < vocab; v0 += chunk, c++) {
      const vc = Math.min(chunk, vocab - v0);
      const logits = keep ? kept[c].storage : chunkLogits(v0, vc);
      const dz = be.logprobChunkGrad(logits, targets.storage, both.storage, stats.storage, dl, de, n, vc, v0, temperature);
      if (!keep) be.free(logits);
      // dhidden += dz · W[v0:v0+vc];  dW[v0:v0+vc] = dzᵀ · hidden
      if (dh) be.matmul(dz, weight.storage, { batch: 1, m: n, n: dm, k: vc, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0, bOffset: v0 * dm, accumulate: true }, dh.storage);
      if (dw) be.matmul(dz, hidden.storage, { batch: 1, m: vc, n: dm, k: n, transA: true, transB: false, aBatchStride: 0, bBatchStride: 0, cOffset: v0 * dm }, dw.storage);
      be.free(dz);
    }
    if (!gl) be.free(dl);
    if (!ge) be.free(de);
    return [dh, dw];
  });
  return { logprobs, entropy };
}
