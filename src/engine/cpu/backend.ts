/**
 * The CPU reference backend: every kernel of backend.ts written as plainly as possible, in float64.
 * It is the oracle the WebGPU kernels are tested against (and the base of finite-difference gradient
 * checks), and a slow, clearly announced fallback where WebGPU is missing. f16 storage is emulated
 * by rounding to binary16 on write.
 */
import type { AdamWParams, AttentionParams, Backend, BinaryOp, BinaryParams, CopyParams, MatmulParams, ReduceOp, Storage, UnaryOp } from '../backend.js';
import { numel, roundToF16, storageBytes, type DType } from '../dtype.js';

type Arr = Float64Array | Int32Array | Uint32Array;

class CpuStorage implements Storage {
  refs = 1;
  constructor(
    readonly backend: CpuBackend,
    readonly dtype: DType,
    readonly data: Arr,
  ) {}
  get size(): number {
    return this.data.length;
  }
}

const d = (s: Storage): Arr => (s as CpuStorage).data;
const f = (s: Storage): Float64Array => (s as CpuStorage).data as Float64Array;

function newArr(size: number, dtype: DType): Arr {
  if (dtype === 'i32') return new Int32Array(size);
  if (dtype === 'u32') return new Uint32Array(size);
  return new Float64Array(size);
}

const GELU_C = Math.sqrt(2 / Math.PI);

export const unaryFns: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x ** 3))),
  relu: (x) => Math.max(x, 0),
  abs: Math.abs,
  square: (x) => x * x,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: Math.tanh,
};

/** dy/dx of each unary op as a function of x and y = op(x). */
const unaryDerivs: Record<UnaryOp, (x: number, y: number) => number> = {
  neg: () => -1,
  exp: (_x, y) => y,
  log: (x) => 1 / x,
  sqrt: (_x, y) => 0.5 / y,
  rsqrt: (_x, y) => -0.5 * y * y * y,
  silu: (x) => {
    const s = 1 / (1 + Math.exp(-x));
    return s * (1 + x * (1 - s));
  },
  gelu_tanh: (x) => {
    const u = GELU_C * (x + 0.044715 * x ** 3);
    const t = Math.tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
  },
  relu: (x) => (x > 0 ? 1 : 0),
  abs: (x) => Math.sign(x),
  square: (x) => 2 * x,
  sigmoid: (_x, y) => y * (1 - y),
  tanh: (_x, y) => 1 - y * y,
};

const binaryFns: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: Math.max,
  min: Math.min,
  eq: (a, b) => (a === b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
};

/** Calls fn(flatIndex, offsetA, offsetB) over every index of `shape` with two stride sets. */
function forEachIndex(shape: number[], sa: number[], sb: number[], fn: (i: number, a: number, b: number) => void): void {
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let total = 1;
  for (const s of shape) total *= s;
  let oa = 0;
  let ob = 0;
  for (let i = 0; i < total; i++) {
    fn(i, oa, ob);
    for (let dim = rank - 1; dim >= 0; dim--) {
      idx[dim]++;
      oa += sa[dim];
      ob += sb[dim];
      if (idx[dim] < shape[dim]) break;
      oa -= sa[dim] * shape[dim];
      ob -= sb[dim] * shape[dim];
      idx[dim] = 0;
    }
  }
}

/**
 * The float64 reference implementation of every {@link Backend} kernel, in plain TypeScript: the oracle
 * that the WebGPU and WebAssembly kernels are tested against, the backend of the bit-exact tests
 * (a resumed run equals the uninterrupted one; src/rl/invariant.test.ts) and `--runtime cpu`.
 *
 * Storage: f32 tensors are held as Float64Array (so results are float64, not rounded to f32), f16 as
 * Float64Array rounded to binary16 on write (as the GPU's pack2x16float), i32/u32 as Int32Array /
 * Uint32Array. `read(s, true)` returns the float64 values exactly (checkpoints store them as F64);
 * `memory()` counts the bytes the same tensors would take on a GPU.
 * Errors: out-of-range indices (gather, embedding) throw naming the index and the range.
 */
export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly description = 'CPU reference backend (float64, plain TypeScript: slow, for tests and as a fallback)';
  private live = 0;
  private peak = 0;
  private dispatches = 0;

  private make(dtype: DType, data: Arr): CpuStorage {
    if (dtype === 'f16') for (let i = 0; i < data.length; i++) data[i] = roundToF16(data[i]);
    this.live += storageBytes(data.length, dtype);
    this.peak = Math.max(this.peak, this.live);
    this.dispatches++;
    return new CpuStorage(this, dtype, data);
  }
  private out(size: number, dtype: DType = 'f32'): CpuStorage {
    return this.make(dtype, newArr(size, dtype));
  }

  upload(data: Float32Array | Float64Array | Int32Array | Uint32Array, dtype: DType): Storage {
    const arr = newArr(data.length, dtype);
    arr.set(data);
    return this.make(dtype, arr);
  }
  alloc(size: number, dtype: DType): Storage {
    return this.out(size, dtype);
  }
  async read(s: Storage, exact = false): Promise<Float32Array | Float64Array | Int32Array | Uint32Array> {
    const a = d(s);
    if (a instanceof Float64Array) return exact ? a.slice() : Float32Array.from(a);
    return a.slice();
  }
  /** Synchronous float64 read, for finite-difference checks. */
  readF64(s: Storage): Float64Array {
    return Float64Array.from(d(s));
  }
  free(s: Storage): void {
    this.live -= storageBytes(s.size, s.dtype);
  }
  flush(): void {}
  async sync(): Promise<void> {}
  memory() {
    return { liveBytes: this.live, peakBytes: this.peak, pooledBytes: 0 };
  }
  resetPeak(): void {
    this.peak = this.live;
  }
  counters() {
    return { dispatches: this.dispatches, submits: 0 };
  }

  fill(size: number, value: number, dtype: DType): Storage {
    const a = newArr(size, dtype);
    a.fill(value);
    return this.make(dtype, a);
  }
  cast(x: Storage, to: DType): Storage {
    const a = newArr(x.size, to);
    const src = d(x);
    for (let i = 0; i < a.length; i++) a[i] = to === 'i32' || to === 'u32' ? Math.trunc(src[i]) : src[i];
    return this.make(to, a);
  }
  unary(op: UnaryOp, x: Storage): Storage {
    const fn = unaryFns[op];
    const a = f(x);
    const o = this.out(a.length);
    const od = o.data as Float64Array;
    for (let i = 0; i < a.length; i++) od[i] = fn(a[i]);
    return o;
  }
  unaryGrad(op: UnaryOp, x: Storage, y: Storage, dy: Storage): Storage {
    const fn = unaryDerivs[op];
    const xs = f(x), ys = f(y), g = f(dy);
    const o = this.out(xs.length);
    const od = o.data as Float64Array;
    for (let i = 0; i < xs.length; i++) od[i] = g[i] * fn(xs[i], ys[i]);
    return o;
  }
  binary(op: BinaryOp, a: Storage, b: Storage, p: BinaryParams): Storage {
    const fn = binaryFns[op];
    const A = d(a), B = d(b);
    const size = numel(p.shape);
    const o = this.out(size);
    const od = o.data as Float64Array;
    forEachIndex(p.shape, p.aStrides, p.bStrides, (i, ia, ib) => {
      od[i] = fn(A[ia], B[ib]);
    });
    return o;
  }
  affine(x: Storage, a: number, b: number): Storage {
    const xs = f(x);
    const o = this.out(xs.length);
    const od = o.data as Float64Array;
    for (let i = 0; i < xs.length; i++) od[i] = a * xs[i] + b;
    return o;
  }
  pow(x: Storage, e: number): Storage {
    const xs = f(x);
    const o = this.out(xs.length);
    const od = o.data as Float64Array;
    for (let i = 0; i < xs.length; i++) od[i] = xs[i] ** e;
    return o;
  }
  reduce(op: ReduceOp, x: Storage, outer: number, n: number, inner: number): Storage {
    const xs = d(x);
    const o = this.out(outer * inner);
    const od = o.data as Float64Array;
    for (let a = 0; a < outer; a++)
      for (let c = 0; c < inner; c++) {
        let acc = op === 'sum' ? 0 : -Infinity;
        for (let j = 0; j < n; j++) {
          const v = xs[(a * n + j) * inner + c];
          acc = op === 'sum' ? acc + v : Math.max(acc, v);
        }
        od[a * inner + c] = acc;
      }
    return o;
  }
  copy(x: Storage, p: CopyParams, dst?: Storage): Storage {
    const size = numel(p.shape);
    const o = (dst as CpuStorage | undefined) ?? this.out(size, x.dtype);
    const src = d(x), od = o.data;
    forEachIndex(p.shape, p.srcStrides, p.dstStrides, (_i, is, id) => {
      od[p.dstOffset + id] = src[p.srcOffset + is];
    });
    return o;
  }
  matmul(a: Storage, b: Storage, p: MatmulParams, c?: Storage): Storage {
    const A = f(a), B = f(b);
    const { batch, m, n, k } = p;
    const o = (c as CpuStorage | undefined) ?? this.out(batch * m * n + (p.cOffset ?? 0));
    const C = o.data as Float64Array;
    for (let bi = 0; bi < batch; bi++) {
      const ao = (p.aOffset ?? 0) + bi * p.aBatchStride;
      const bo = (p.bOffset ?? 0) + bi * p.bBatchStride;
      const co = (p.cOffset ?? 0) + bi * m * n;
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let l = 0; l < k; l++) {
            const av = p.transA ? A[ao + l * m + i] : A[ao + i * k + l];
            const bv = p.transB ? B[bo + j * k + l] : B[bo + l * n + j];
            acc += av * bv;
          }
          C[co + i * n + j] = p.accumulate ? C[co + i * n + j] + acc : acc;
        }
    }
    return o;
  }
  gather(x: Storage, ids: Storage, outer: number, dim: number, inner: number): Storage {
    const X = d(x), I = d(ids);
    const n = I.length;
    const o = this.out(outer * n * inner, x.dtype);
    for (let a = 0; a < outer; a++)
      for (let j = 0; j < n; j++) {
        const r = I[j];
        if (r < 0 || r >= dim) throw new Error(`gather: index ${r} at position ${j} is out of range [0, ${dim})`);
        for (let c = 0; c < inner; c++) o.data[(a * n + j) * inner + c] = X[(a * dim + r) * inner + c];
      }
    return o;
  }
  scatterAdd(dy: Storage, ids: Storage, outer: number, dim: number, inner: number): Storage {
    const G = f(dy), I = d(ids);
    const n = I.length;
    const o = this.out(outer * dim * inner);
    const od = o.data as Float64Array;
    for (let a = 0; a < outer; a++)
      for (let j = 0; j < n; j++)
        for (let c = 0; c < inner; c++) od[(a * dim + I[j]) * inner + c] += G[(a * n + j) * inner + c];
    return o;
  }
  softmax(x: Storage, rows: number, n: number, mask?: Storage): Storage {
    const X = f(x), M = mask ? d(mask) : undefined;
    const o = this.out(rows * n);
    const od = o.data as Float64Array;
    for (let r = 0; r < rows; r++) {
      let mx = -Infinity;
      for (let j = 0; j < n; j++) if (!M || M[r * n + j]) mx = Math.max(mx, X[r * n + j]);
      if (mx === -Infinity) continue; // fully masked row -> zeros
      let s = 0;
      for (let j = 0; j < n; j++) {
        const e = !M || M[r * n + j] ? Math.exp(X[r * n + j] - mx) : 0;
        od[r * n + j] = e;
        s += e;
      }
      for (let j = 0; j < n; j++) od[r * n + j] /= s;
    }
    return o;
  }
  softmaxGrad(y: Storage, dy: Storage, rows: number, n: number): Storage {
    const Y = f(y), G = f(dy);
    const o = this.out(rows * n);
    const od = o.data as Float64Array;
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += Y[r * n + j] * G[r * n + j];
      for (let j = 0; j < n; j++) od[r * n + j] = Y[r * n + j] * (G[r * n + j] - dot);
    }
    return o;
  }
  rmsnorm(x: Storage, w: Storage, rows: number, n: number, eps: number) {
    const X = f(x), W = f(w);
    const y = this.out(rows * n), rstd = this.out(rows);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let j = 0; j < n; j++) ss += X[r * n + j] ** 2;
      const rs = 1 / Math.sqrt(ss / n + eps);
      rstd.data[r] = rs;
      for (let j = 0; j < n; j++) y.data[r * n + j] = X[r * n + j] * rs * W[j];
    }
    return { y, rstd };
  }
  rmsnormGrad(x: Storage, w: Storage, rstd: Storage, dy: Storage, rows: number, n: number) {
    const X = f(x), W = f(w), R = f(rstd), G = f(dy);
    const dx = this.out(rows * n), dw = this.out(n);
    for (let r = 0; r < rows; r++) {
      const rs = R[r];
      let dot = 0; // Σ g·w·xhat
      for (let j = 0; j < n; j++) dot += G[r * n + j] * W[j] * X[r * n + j] * rs;
      for (let j = 0; j < n; j++) {
        const xhat = X[r * n + j] * rs;
        dx.data[r * n + j] = rs * (G[r * n + j] * W[j] - (xhat * dot) / n);
        dw.data[j] += G[r * n + j] * xhat;
      }
    }
    return { dx, dw };
  }
  layernorm(x: Storage, w: Storage, b: Storage, rows: number, n: number, eps: number) {
    const X = f(x), W = f(w), B = f(b);
    const y = this.out(rows * n), mean = this.out(rows), rstd = this.out(rows);
    for (let r = 0; r < rows; r++) {
      let mu = 0;
      for (let j = 0; j < n; j++) mu += X[r * n + j];
      mu /= n;
      let v = 0;
      for (let j = 0; j < n; j++) v += (X[r * n + j] - mu) ** 2;
      const rs = 1 / Math.sqrt(v / n + eps);
      mean.data[r] = mu;
      rstd.data[r] = rs;
      for (let j = 0; j < n; j++) y.data[r * n + j] = (X[r * n + j] - mu) * rs * W[j] + B[j];
    }
    return { y, mean, rstd };
  }
  layernormGrad(x: Storage, w: Storage, mean: Storage, rstd: Storage, dy: Storage, rows: number, n: number) {
    const X = f(x), W = f(w), MU = f(mean), R = f(rstd), G = f(dy);
    const dx = this.out(rows * n), dw = this.out(n), db = this.out(n);
    for (let r = 0; r < rows; r++) {
      let s1 = 0, s2 = 0; // Σ g·w and Σ g·w·xhat
      for (let j = 0; j < n; j++) {
        const xhat = (X[r * n + j] - MU[r]) * R[r];
        const gw = G[r * n + j] * W[j];
        s1 += gw;
        s2 += gw * xhat;
        dw.data[j] += G[r * n + j] * xhat;
        db.data[j] += G[r * n + j];
      }
      for (let j = 0; j < n; j++) {
        const xhat = (X[r * n + j] - MU[r]) * R[r];
        dx.data[r * n + j] = R[r] * (G[r * n + j] * W[j] - s1 / n - (xhat * s2) / n);
      }
    }
    return { dx, dw, db };
  }
  rope(x: Storage, pos: Storage, table: Storage, b: number, t: number, h: number, dd: number, inverse: boolean): Storage {
    const X = f(x), P = d(pos), TB = f(table);
    const o = this.out(X.length);
    const half = dd / 2;
    const maxPos = TB.length / dd;
    for (let bi = 0; bi < b; bi++)
      for (let ti = 0; ti < t; ti++) {
        const p = P[bi * t + ti];
        const inTable = p >= 0 && p < maxPos;
        for (let hi = 0; hi < h; hi++) {
          const base = ((bi * t + ti) * h + hi) * dd;
          for (let i = 0; i < half; i++) {
            const c = inTable ? TB[(p * half + i) * 2] : 1;
            const s = inTable ? (inverse ? -1 : 1) * TB[(p * half + i) * 2 + 1] : 0;
            const x1 = X[base + i], x2 = X[base + i + half];
            o.data[base + i] = x1 * c - x2 * s;
            o.data[base + i + half] = x2 * c + x1 * s;
          }
        }
      }
    return o;
  }
  /** Attention weights for query (b, t, h): probabilities over keys s < p.s, and their logsumexp. */
  private attnRow(Q: Float64Array, K: Float64Array, M: Arr | undefined, p: AttentionParams, b: number, t: number, h: number) {
    const g = p.hq / p.hkv;
    const kh = Math.floor(h / g);
    const qb = ((b * p.t + t) * p.hq + h) * p.d;
    const scores = new Float64Array(p.s).fill(-Infinity);
    for (let s = 0; s < p.s; s++) {
      if (p.causal && s > t + p.qOffset) continue;
      if (M && !M[b * p.sMax + s]) continue;
      const kb = ((b * p.sMax + s) * p.hkv + kh) * p.d;
      let dot = 0;
      for (let i = 0; i < p.d; i++) dot += Q[qb + i] * K[kb + i];
      scores[s] = dot * p.scale;
    }
    const mx = Math.max(...scores);
    if (mx === -Infinity) return { probs: new Float64Array(p.s), lse: -Infinity, kh };
    let sum = 0;
    for (const v of scores) sum += Math.exp(v - mx);
    const lse = mx + Math.log(sum);
    return { probs: scores.map((v) => Math.exp(v - lse)), lse, kh };
  }
  attention(q: Storage, k: Storage, v: Storage, keyMask: Storage | undefined, p: AttentionParams) {
    const Q = f(q), K = f(k), V = f(v), M = keyMask ? d(keyMask) : undefined;
    const o = this.out(p.batch * p.t * p.hq * p.d), lse = this.out(p.batch * p.t * p.hq);
    for (let b = 0; b < p.batch; b++)
      for (let t = 0; t < p.t; t++)
        for (let h = 0; h < p.hq; h++) {
          const row = this.attnRow(Q, K, M, p, b, t, h);
          lse.data[(b * p.t + t) * p.hq + h] = row.lse;
          const ob = ((b * p.t + t) * p.hq + h) * p.d;
          for (let s = 0; s < p.s; s++) {
            if (!row.probs[s]) continue;
            const vb = ((b * p.sMax + s) * p.hkv + row.kh) * p.d;
            for (let i = 0; i < p.d; i++) o.data[ob + i] += row.probs[s] * V[vb + i];
          }
        }
    return { o, lse };
  }
  attentionGrad(q: Storage, k: Storage, v: Storage, _o: Storage, _lse: Storage, dO: Storage, keyMask: Storage | undefined, p: AttentionParams) {
    const Q = f(q), K = f(k), V = f(v), G = f(dO), M = keyMask ? d(keyMask) : undefined;
    const dq = this.out(Q.length), dk = this.out(K.length), dv = this.out(V.length);
    for (let b = 0; b < p.batch; b++)
      for (let t = 0; t < p.t; t++)
        for (let h = 0; h < p.hq; h++) {
          const { probs, kh } = this.attnRow(Q, K, M, p, b, t, h);
          const qb = ((b * p.t + t) * p.hq + h) * p.d;
          const dp = new Float64Array(p.s);
          let dot = 0;
          for (let s = 0; s < p.s; s++) {
            if (!probs[s]) continue;
            const vb = ((b * p.sMax + s) * p.hkv + kh) * p.d;
            for (let i = 0; i < p.d; i++) dp[s] += G[qb + i] * V[vb + i];
            dot += probs[s] * dp[s];
          }
          for (let s = 0; s < p.s; s++) {
            if (!probs[s]) continue;
            const kb = ((b * p.sMax + s) * p.hkv + kh) * p.d;
            const ds = probs[s] * (dp[s] - dot) * p.scale;
            for (let i = 0; i < p.d; i++) {
              dq.data[qb + i] += ds * K[kb + i];
              dk.data[kb + i] += ds * Q[qb + i];
              dv.data[kb + i] += probs[s] * G[qb + i];
            }
          }
        }
    return { dq, dk, dv };
  }
  logprobChunk(logits: Storage, targets: Storage, stats: Storage, n: number, vc: number, v0: number, temperature: number): void {
    const L = f(logits), T = d(targets), S = f(stats);
    for (let r = 0; r < n; r++) {
      let m = S[r * 4], s = S[r * 4 + 1], sz = S[r * 4 + 2];
      for (let j = 0; j < vc; j++) {
        const z = L[r * vc + j] / temperature;
        if (z > m) {
          const c = Math.exp(m - z);
          s *= c;
          sz *= c;
          m = z;
        }
        const e = Math.exp(z - m);
        s += e;
        sz += e * z;
        if (T[r] === v0 + j) S[r * 4 + 3] = z;
      }
      S[r * 4] = m;
      S[r * 4 + 1] = s;
      S[r * 4 + 2] = sz;
    }
  }
  logprobFinish(stats: Storage, n: number): Storage {
    const S = f(stats);
    const o = this.out(n * 2);
    for (let r = 0; r < n; r++) {
      const logZ = S[r * 4] + Math.log(S[r * 4 + 1]);
      o.data[r * 2] = S[r * 4 + 3] - logZ;
      o.data[r * 2 + 1] = logZ - S[r * 4 + 2] / S[r * 4 + 1];
      S[r * 4] = logZ;
    }
    return o;
  }
  logprobChunkGrad(logits: Storage, targets: Storage, out: Storage, stats: Storage, dlogp: Storage, dent: Storage, n: number, vc: number, v0: number, temperature: number): Storage {
    const L = f(logits), T = d(targets), O = f(out), S = f(stats), GL = f(dlogp), GE = f(dent);
    const o = this.out(n * vc);
    for (let r = 0; r < n; r++) {
      const logZ = S[r * 4], H = O[r * 2 + 1];
      for (let j = 0; j < vc; j++) {
        const logp = L[r * vc + j] / temperature - logZ;
        const pj = Math.exp(logp);
        const dz = GL[r] * ((T[r] === v0 + j ? 1 : 0) - pj) - GE[r] * pj * (logp + H);
        o.data[r * vc + j] = dz / temperature;
      }
    }
    return o;
  }
  patchify(x: Storage, b: number, c: number, h: number, w: number, p: number, inverse: boolean): Storage {
    const X = f(x);
    const o = this.out(X.length);
    const gh = h / p, gw = w / p;
    for (let bi = 0; bi < b; bi++)
      for (let ci = 0; ci < c; ci++)
        for (let y = 0; y < h; y++)
          for (let xx = 0; xx < w; xx++) {
            const img = ((bi * c + ci) * h + y) * w + xx;
            const patch = Math.floor(y / p) * gw + Math.floor(xx / p);
            const within = (ci * p + (y % p)) * p + (xx % p);
            const pat = (bi * gh * gw + patch) * c * p * p + within;
            if (inverse) o.data[img] = X[pat];
            else o.data[pat] = X[img];
          }
    return o;
  }
  sumSquares(x: Storage, partial: Storage, slot: number): void {
    const X = f(x);
    let s = 0;
    for (const v of X) s += v * v;
    f(partial)[slot] += s;
  }
  clipCoef(partial: Storage, k: number, maxNorm: number, out: Storage): void {
    const P = f(partial);
    let s = 0;
    for (let i = 0; i < k; i++) s += P[i];
    const norm = Math.sqrt(s);
    f(out)[0] = norm;
    f(out)[1] = Math.min(1, maxNorm / (norm + 1e-6));
  }
  adamw(p: Storage, g: Storage, m: Storage, v: Storage, h: AdamWParams, coef?: Storage): void {
    const P = f(p), G = f(g), M = f(m), V = f(v);
    const c = coef ? f(coef)[1] : 1;
    const bc1 = 1 - h.beta1 ** h.step, bc2 = 1 - h.beta2 ** h.step;
    for (let i = 0; i < P.length; i++) {
      const gi = G[i] * c;
      P[i] *= 1 - h.lr * h.weightDecay;
      M[i] = h.beta1 * M[i] + (1 - h.beta1) * gi;
      V[i] = h.beta2 * V[i] + (1 - h.beta2) * gi * gi;
      P[i] -= (h.lr * (M[i] / bc1)) / (Math.sqrt(V[i] / bc2) + h.eps);
    }
  }
  sgd(p: Storage, g: Storage, buf: Storage | undefined, lr: number, momentum: number, weightDecay: number, coef?: Storage): void {
    const P = f(p), G = f(g), B = buf ? f(buf) : undefined;
    const c = coef ? f(coef)[1] : 1;
    for (let i = 0; i < P.length; i++) {
      let gi = G[i] * c + weightDecay * P[i];
      if (B) {
        B[i] = momentum * B[i] + gi;
        gi = B[i];
      }
      P[i] -= lr * gi;
    }
  }
}
