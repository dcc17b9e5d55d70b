/**
 * The kernel interface every backend implements: the CPU reference (cpu/), WebGPU (webgpu/) and
 * WebAssembly (wasm/). Kernels take and return contiguous row-major buffers ("storages"); shapes
 * travel as plain numbers. Autograd, broadcasting rules, views and error messages live above this
 * layer, in tensor.ts and ops/, so that every backend is checked by the same differentiable ops.
 *
 * Float kernels compute in f32 on WebGPU and WebAssembly and in f64 on the CPU reference (the oracle), read f16 storage
 * where a parameter says so, and write f32 unless a parameter says otherwise.
 */
import type { DType } from './dtype.js';

/** A backend's buffer. `refs` counts tensors sharing it (reshape is a view); freed at zero. */
export interface Storage {
  readonly backend: Backend;
  readonly dtype: DType;
  /** Element count. */
  readonly size: number;
  refs: number;
}

export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'silu' | 'gelu_tanh' | 'relu' | 'abs' | 'square' | 'sigmoid' | 'tanh';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'eq' | 'gt';
export type ReduceOp = 'sum' | 'max';

/** `out = a ⊕ b` over `shape`; strides are in elements (0 on broadcast dims), up to 6 dims. */
export interface BinaryParams {
  shape: number[];
  aStrides: number[];
  bStrides: number[];
}

/** Strided copy over `shape`: `dst[dstOffset + Σ i·dstStrides] = src[srcOffset + Σ i·srcStrides]`. */
export interface CopyParams {
  shape: number[];
  srcStrides: number[];
  srcOffset: number;
  dstStrides: number[];
  dstOffset: number;
}

/**
 * Batched `C[b] = op(A[b]) · op(B[b])` with C [batch, m, n]; op transposes when the flag is set
 * (A stored [k, m] / B stored [n, k]). `aBatchStride`/`bBatchStride` 0 broadcast one matrix over the
 * batch. Offsets (elements) let a kernel address a slice of a buffer (e.g. a vocabulary chunk of
 * lm_head). `accumulate` adds into `c` (C += AB), which must then be given.
 */
export interface MatmulParams {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  aBatchStride: number;
  bBatchStride: number;
  aOffset?: number;
  bOffset?: number;
  cOffset?: number;
  accumulate?: boolean;
}

/** Attention over q [B, T, Hq, D], k/v [B, S_max, Hkv, D] (first `s` keys used), out [B, T, Hq, D]. */
export interface AttentionParams {
  batch: number;
  t: number;
  s: number;
  sMax: number;
  hq: number;
  hkv: number;
  d: number;
  scale: number;
  causal: boolean;
  /** Query t sits at key index t + qOffset (qOffset = s - t for a KV-cache decode step). */
  qOffset: number;
}

export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number, for bias correction. */
  step: number;
}

export interface Backend {
  readonly name: 'cpu' | 'webgpu' | 'wasm';
  /** Human-readable adapter / device description. */
  readonly description: string;

  upload(data: Float32Array | Float64Array | Int32Array | Uint32Array, dtype: DType, name?: string): Storage;
  alloc(size: number, dtype: DType, name?: string): Storage;
  /**
   * Reads a storage back; f16 widens to f32. Resolves after all queued work has finished.
   * `exact` asks for the backend's full precision (Float64Array on the CPU backend, so that CPU
   * checkpoints and optimizer state round-trip bit for bit).
   */
  read(s: Storage, exact?: boolean): Promise<Float32Array | Float64Array | Int32Array | Uint32Array>;
  free(s: Storage): void;
  /** Submits queued work (no-op on CPU). */
  flush(): void;
  /** Submits queued work and resolves when the device has finished it (for timing). */
  sync(): Promise<void>;
  memory(): { liveBytes: number; peakBytes: number; pooledBytes: number };
  resetPeak(): void;

  fill(size: number, value: number, dtype: DType): Storage;
  cast(x: Storage, to: DType): Storage;
  unary(op: UnaryOp, x: Storage): Storage;
  /** dx for `y = op(x)` given dy; `y` may be used instead of recomputing. */
  unaryGrad(op: UnaryOp, x: Storage, y: Storage, dy: Storage): Storage;
  binary(op: BinaryOp, a: Storage, b: Storage, p: BinaryParams): Storage;
  /** `a * x + b` elementwise (scalar ops). */
  affine(x: Storage, a: number, b: number): Storage;
  /** `x^e` elementwise. */
  pow(x: Storage, e: number): Storage;
  /** Reduces the middle axis of x viewed as [outer, n, inner] -> [outer, inner]. */
  reduce(op: ReduceOp, x: Storage, outer: number, n: number, inner: number): Storage;
  /** Strided copy; writes into `dst` when given (in place), else into a new storage of numel(shape). */
  copy(x: Storage, p: CopyParams, dst?: Storage): Storage;
  matmul(a: Storage, b: Storage, p: MatmulParams, c?: Storage): Storage;
  /** Rows of x viewed as [outer, dim, inner] picked by ids [n] -> [outer, n, inner]. @throws on out-of-range ids (CPU). */
  gather(x: Storage, ids: Storage, outer: number, dim: number, inner: number): Storage;
  /** Adjoint of gather: dy [outer, n, inner] summed into [outer, dim, inner] at ids (deterministic order). */
  scatterAdd(dy: Storage, ids: Storage, outer: number, dim: number, inner: number): Storage;
  /** Softmax over the last axis of [rows, n]; mask (same size, nonzero = keep) optional. Fully masked rows give 0. */
  softmax(x: Storage, rows: number, n: number, mask?: Storage): Storage;
  softmaxGrad(y: Storage, dy: Storage, rows: number, n: number): Storage;
  /** RMSNorm (Zhang & Sennrich 2019; HF LlamaRMSNorm): y = x·rsqrt(mean(x²)+eps)·w. */
  rmsnorm(x: Storage, w: Storage, rows: number, n: number, eps: number): { y: Storage; rstd: Storage };
  rmsnormGrad(x: Storage, w: Storage, rstd: Storage, dy: Storage, rows: number, n: number): { dx: Storage; dw: Storage };
  /** LayerNorm (Ba et al. 2016; torch.nn.LayerNorm, biased variance). */
  layernorm(x: Storage, w: Storage, b: Storage, rows: number, n: number, eps: number): { y: Storage; mean: Storage; rstd: Storage };
  layernormGrad(x: Storage, w: Storage, mean: Storage, rstd: Storage, dy: Storage, rows: number, n: number): { dx: Storage; dw: Storage; db: Storage };
  /**
   * Rotary embedding on x [B, T, H, D] with positions [B, T] (i32), HF `rotate_half` convention:
   * pairs (i, i + D/2) rotated by the angle whose (cos, sin) is table[pos, i] (table [maxPos, D/2, 2]).
   * `inverse` rotates by the negative angle (the adjoint). Positions outside the table are not rotated.
   */
  rope(x: Storage, pos: Storage, table: Storage, b: number, t: number, h: number, d: number, inverse: boolean): Storage;
  /** Fused scaled-dot-product attention; keyMask [B, S_max] (nonzero = attend) optional. lse [B, T, Hq] saved for backward. */
  attention(q: Storage, k: Storage, v: Storage, keyMask: Storage | undefined, p: AttentionParams): { o: Storage; lse: Storage };
  attentionGrad(
    q: Storage, k: Storage, v: Storage, o: Storage, lse: Storage, dO: Storage, keyMask: Storage | undefined, p: AttentionParams,
  ): { dq: Storage; dk: Storage; dv: Storage };
  /**
   * One vocabulary chunk of the fused token log-prob: logits chunk [n, vc] for vocabulary ids
   * [v0, v0+vc). Updates `stats` [n, 4] in place: running max m, Σexp(z-m), Σexp(z-m)·z with
   * z = logit/temperature, and the target's z when the target falls in the chunk.
   */
  logprobChunk(logits: Storage, targets: Storage, stats: Storage, n: number, vc: number, v0: number, temperature: number): void;
  /** stats [n, 4] -> out [n, 2]: (log-prob of target, entropy) and saves logZ in stats[:, 0]. */
  logprobFinish(stats: Storage, n: number): Storage;
  /**
   * d loss / d logits for one chunk, from dlogp [n], dent [n] and the finished stats:
   * dz_j = dlogp·(1[j=target] - p_j) - dent·p_j·(log p_j + H), then divided by temperature.
   */
  logprobChunkGrad(
    logits: Storage, targets: Storage, out: Storage, stats: Storage, dlogp: Storage, dent: Storage,
    n: number, vc: number, v0: number, temperature: number,
  ): Storage;
  /** [B, C, H, W] -> [B, (H/p)·(W/p), C·p·p] in (C, py, px) order, the layout of a Conv2d(kernel=p, stride=p) weight. */
  patchify(x: Storage, b: number, c: number, h: number, w: number, p: number, inverse: boolean): Storage;
  /** Adds Σx² of x into partial[slot] (global grad norm, computed on the device). */
  sumSquares(x: Storage, partial: Storage, slot: number): void;
  /** From partial [k] writes out [2] = (total norm, clip coefficient min(1, maxNorm / (norm + 1e-6))). */
  clipCoef(partial: Storage, k: number, maxNorm: number, out: Storage): void;
  /** In-place AdamW (Loshchilov & Hutter 2019, torch.optim.AdamW) on p, m, v; grad scaled by coef[1] when given. */
  adamw(p: Storage, g: Storage, m: Storage, v: Storage, h: AdamWParams, coef?: Storage): void;
  /** In-place SGD with momentum buffer `buf` (torch.optim.SGD semantics, dampening 0). */
  sgd(p: Storage, g: Storage, buf: Storage | undefined, lr: number, momentum: number, weightDecay: number, coef?: Storage): void;
  /** Counters for benchmarks: dispatches and submits since creation. */
  counters(): { dispatches: number; submits: number };
}
