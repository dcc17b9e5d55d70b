/**
 * The WebAssembly backend: every kernel of backend.ts in f32 on the CPU, with WebAssembly SIMD
 * (relaxed-SIMD fused multiply-add where the runtime validates it) and, where memory can be shared,
 * a pool of threads (runtime.ts). Tensors live in one linear memory; a Storage is a byte offset into
 * it. f16 storage holds packed halves (2 bytes each, even count) as on the GPU; i32/u32 are 4 bytes.
 *
 * The kernels are generated at construction (kernels/*.ts through asm.ts), so nothing is built
 * ahead of time. Small kernels run on the calling thread alone: handing work to another thread costs
 * a few microseconds, more than a small op takes.
 */
import type { AdamWParams, AttentionParams, Backend, BinaryOp, BinaryParams, CopyParams, MatmulParams, ReduceOp, Storage, UnaryOp } from '../backend.js';
import { f16Bits, f16FromBits, numel, storageBytes, type DType } from '../dtype.js';
import { hasRelaxedSimd } from './asm.js';
import { buildKernel, packArgs, type KernelDef } from './kernel.js';
import { attentionGradKernel, attentionKernel, attentionScratchBytes } from './kernels/attention.js';
import { affineKernel, binaryKernels, copyKernel, ELEMENTWISE, fillKernel, powKernel, unaryGradKernels, unaryKernels } from './kernels/elementwise.js';
import { gatherKernel, ropeKernel, scatterAddKernel, INDEXING } from './kernels/indexing.js';
import { logprobChunkGradKernel, logprobChunkKernel, logprobFinishKernel, LOGPROB } from './kernels/logprob.js';
import { libraryFuncs } from './kernels/math.js';
import { matmulKernel, matmulScratchBytes } from './kernels/matmul.js';
import { layernormGradKernel, layernormKernel, NORMS, rmsnormGradKernel, rmsnormKernel } from './kernels/norm.js';
import { adamwKernel, clipCoefKernel, OPTIM, sgdKernel, sumSquaresKernel } from './kernels/optim.js';
import { REDUCE, reduceKernels, softmaxGradKernel, softmaxKernel } from './kernels/reduce.js';
import { Runtime, threadsAvailable } from './runtime.js';

const KERNELS: KernelDef[] = [
  ...ELEMENTWISE, matmulKernel, ...REDUCE, ...NORMS, ...INDEXING, attentionKernel, attentionGradKernel, ...LOGPROB, ...OPTIM,
];

/** Work (elements or multiply-adds) below which a kernel runs on the calling thread alone. */
const PARALLEL_MIN_WORK = 1 << 15;

class WasmStorage implements Storage {
  refs = 1;
  constructor(
    readonly backend: WasmBackend,
    readonly dtype: DType,
    readonly size: number,
    readonly ptr: number,
    readonly bytes: number,
  ) {}
}

const ptr = (s: Storage): number => (s as WasmStorage).ptr;

/** Resolves on a new macrotask (MessageChannel: no 4 ms clamp as nested setTimeout has). */
function nextTask(): Promise<void> {
  if (typeof MessageChannel === 'undefined') return new Promise((res) => setTimeout(res, 0));
  return new Promise((res) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      res();
    };
    ch.port2.postMessage(null);
  });
}

/** Merges dimensions that are contiguous in every stride set (and drops size-1 ones): fewer, longer loops. */
function coalesce(shape: number[], strideSets: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const out: number[][] = strideSets.map(() => []);
  shape.forEach((n, d) => {
    if (n === 1) return;
    const last = outShape.length - 1;
    if (last >= 0 && strideSets.every((s, k) => out[k][last] === s[d] * n)) {
      outShape[last] *= n;
      strideSets.forEach((s, k) => (out[k][last] = s[d]));
    } else {
      outShape.push(n);
      strideSets.forEach((s, k) => out[k].push(s[d]));
    }
  });
  return { shape: outShape, strides: out };
}

export interface WasmBackendOptions {
  /** Threads including the caller's (default: navigator.hardwareConcurrency, at most 8); 1 = single-threaded. */
  threads?: number;
  /** Force plain SIMD even where relaxed SIMD validates (tests compare both). */
  relaxedSimd?: boolean;
  /** Work below which kernels stay on the calling thread (default 32768; tests set 0 to split tiny ops). */
  minParallelWork?: number;
}

function defaultThreads(): number {
  const n = typeof navigator !== 'undefined' && navigator.hardwareConcurrency ? navigator.hardwareConcurrency : 1;
  return Math.max(1, Math.min(8, n));
}

/**
 * The engine's CPU backend for machines without a (fast) GPU. Create with `await WasmBackend.create()`.
 * `notice` says, in words, when it runs single-threaded and why.
 */
export class WasmBackend implements Backend {
  readonly name = 'wasm' as const;
  readonly description: string;
  readonly notice?: string;
  private live = 0;
  private peak = 0;
  private dispatches = 0;

  private constructor(readonly rt: Runtime, readonly relaxed: boolean, private readonly minParallelWork: number, notice?: string) {
    this.notice = notice;
    this.description = `WebAssembly SIMD${relaxed ? ' (relaxed FMA)' : ''}, ${rt.threads} thread${rt.threads > 1 ? 's' : ''}`;
  }

  /** Generates and compiles the kernels, starts the thread pool. */
  static async create(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
    const relaxed = opts.relaxedSimd ?? hasRelaxedSimd();
    if (relaxed && !hasRelaxedSimd()) throw new Error('relaxedSimd: this runtime does not support WebAssembly relaxed SIMD');
    const avail = threadsAvailable();
    let threads = opts.threads ?? defaultThreads();
    let notice: string | undefined;
    if (threads > 1 && !avail.ok) {
      notice = `WebAssembly backend runs single-threaded: ${avail.why}.`;
      threads = 1;
    }
    const funcs = [...libraryFuncs(), ...KERNELS.map((k) => buildKernel(k, relaxed))];
    const rt = await Runtime.create(funcs, { threads });
    return new WasmBackend(rt, relaxed, opts.minParallelWork ?? PARALLEL_MIN_WORK, notice);
  }

  /** Stops the worker threads; the backend must not be used afterwards. */
  destroy(): void {
    this.rt.close();
  }

  /** Runs `fn` with a temporary scratch block of `perThread` bytes for each of `threads` threads. */
  private withScratch(perThread: number, threads: number, label: string, fn: (scratch: number, perThread: number) => void): void {
    const scratch = this.rt.alloc(perThread * threads, label);
    try {
      fn(scratch, perThread);
    } finally {
      this.rt.release(scratch, perThread * threads);
    }
  }
  /** Threads for a kernel of `work` units: all of the pool's when worth a hand-off, else the caller's. */
  private threadsFor(work: number): number {
    return work >= this.minParallelWork ? this.rt.threads : 1;
  }
  /** Runs `def` on `threads` threads (its declaration packs the arguments). */
  private launch<A extends string>(def: KernelDef<A>, args: Record<A, number>, threads: number): void {
    const { types, values } = packArgs(def, args);
    this.rt.setArgs(types, values);
    this.rt.run(def.name, threads);
    this.dispatches++;
  }
  private run<A extends string>(def: KernelDef<A>, args: Record<A, number>, work = 0): void {
    this.launch(def, args, this.threadsFor(work));
  }

  alloc(size: number, dtype: DType, name = 'tensor'): Storage {
    const bytes = storageBytes(size, dtype);
    const p = this.rt.alloc(bytes, `${name} (${size} × ${dtype})`);
    this.live += bytes;
    this.peak = Math.max(this.peak, this.live);
    return new WasmStorage(this, dtype, size, p, bytes);
  }
  private out(size: number, dtype: DType = 'f32'): WasmStorage {
    return this.alloc(size, dtype) as WasmStorage;
  }

  upload(data: Float32Array | Float64Array | Int32Array | Uint32Array, dtype: DType, name = 'upload'): Storage {
    const s = this.alloc(data.length, dtype, name) as WasmStorage;
    if (dtype === 'f16') {
      const u16 = this.rt.u16;
      for (let i = 0; i < data.length; i++) u16[s.ptr / 2 + i] = f16Bits(data[i]);
    } else if (dtype === 'f32') this.rt.f32.set(data, s.ptr / 4);
    else this.rt.i32.set(data instanceof Int32Array ? data : Int32Array.from(data), s.ptr / 4);
    return s;
  }

  /**
   * Yields to the event loop first: kernels run synchronously, so without it a training loop whose
   * only awaits are reads would starve timers and messages (a worker could not hear "pause").
   */
  async read(s: Storage): Promise<Float32Array | Int32Array | Uint32Array> {
    await nextTask();
    return this.readSync(s);
  }
  /** The storage's values now (kernels run synchronously): f16 widened to f32. */
  readSync(s: Storage): Float32Array | Int32Array | Uint32Array {
    const p = ptr(s) / 4;
    if (s.dtype === 'f32') return this.rt.f32.slice(p, p + s.size);
    if (s.dtype === 'i32') return this.rt.i32.slice(p, p + s.size);
    if (s.dtype === 'u32') return new Uint32Array(this.rt.i32.slice(p, p + s.size).buffer);
    const u16 = this.rt.u16, out = new Float32Array(s.size);
    for (let i = 0; i < s.size; i++) out[i] = f16FromBits(u16[ptr(s) / 2 + i]);
    return out;
  }

  free(s: Storage): void {
    const w = s as WasmStorage;
    this.rt.release(w.ptr, w.bytes);
    this.live -= w.bytes;
  }
  flush(): void {}
  async sync(): Promise<void> {
    await nextTask();
  }
  memory() {
    return { liveBytes: this.live, peakBytes: this.peak, pooledBytes: this.rt.heapBytes - this.live };
  }
  resetPeak(): void {
    this.peak = this.live;
  }
  counters() {
    return { dispatches: this.dispatches, submits: 0 };
  }

  private requireF32(op: string, ...xs: Storage[]): void {
    for (const x of xs) if (x.dtype !== 'f32') throw new Error(`${op} on the WebAssembly backend needs f32 inputs, got ${x.dtype}: cast() f16 storage to f32 first`);
  }

  fill(size: number, value: number, dtype: DType): Storage {
    const s = this.out(size, dtype);
    let bits: number;
    if (dtype === 'f16') bits = f16Bits(value) * 0x10001;
    else if (dtype === 'f32') bits = new Int32Array(new Float32Array([value]).buffer)[0];
    else bits = value | 0;
    const words = Math.ceil(s.bytes / 4);
    this.run(fillKernel, { out: s.ptr, n: words, bits }, words);
    return s;
  }

  /** dtype conversion (a format change, not compute: plain JavaScript over the memory). */
  cast(x: Storage, to: DType): Storage {
    const src = this.readSync(x);
    const o = this.upload(to === 'i32' || to === 'u32' ? Int32Array.from(src, Math.trunc) : Float32Array.from(src), to);
    return o;
  }

  unary(op: UnaryOp, x: Storage): Storage {
    this.requireF32(op, x);
    const o = this.out(x.size);
    this.run(unaryKernels[op], { x: ptr(x), out: o.ptr, n: x.size }, x.size * 8);
    return o;
  }
  unaryGrad(op: UnaryOp, x: Storage, y: Storage, dy: Storage): Storage {
    const o = this.out(x.size);
    this.run(unaryGradKernels[op], { x: ptr(x), y: ptr(y), dy: ptr(dy), out: o.ptr, n: x.size }, x.size * 8);
    return o;
  }

  /** Runs a 4-d strided kernel over `shape` (coalesced), looping here over any dimensions beyond 4. */
  private strided4(shape: number[], strideSets: number[][], launch: (dims: number[], strides: number[][], offsets: number[]) => void): void {
    const c = coalesce(shape, strideSets);
    while (c.shape.length < 4) {
      c.shape.unshift(1);
      c.strides.forEach((s) => s.unshift(0));
    }
    const lead = c.shape.length - 4;
    const leadShape = c.shape.slice(0, lead);
    const total = numel(leadShape);
    for (let idx = 0; idx < total; idx++) {
      let rem = idx;
      const offsets = strideSets.map(() => 0);
      for (let d = lead - 1; d >= 0; d--) {
        const i = rem % leadShape[d];
        rem = Math.floor(rem / leadShape[d]);
        c.strides.forEach((s, k) => (offsets[k] += i * s[d]));
      }
      launch(c.shape.slice(lead), c.strides.map((s) => s.slice(lead)), offsets);
    }
  }

  binary(op: BinaryOp, a: Storage, b: Storage, p: BinaryParams): Storage {
    this.requireF32(op, a, b);
    const n = numel(p.shape);
    const o = this.out(n);
    const outStrides: number[] = [];
    for (let d = p.shape.length - 1, acc = 1; d >= 0; d--) {
      outStrides[d] = acc;
      acc *= p.shape[d];
    }
    this.strided4(p.shape, [p.aStrides, p.bStrides, outStrides], ([n0, n1, n2, n3], [sa, sb], [oa, ob, oo]) => {
      this.run(binaryKernels[op], {
        a: ptr(a) + 4 * oa, b: ptr(b) + 4 * ob, out: o.ptr + 4 * oo, n0, n1, n2, n3,
        sa0: sa[0], sa1: sa[1], sa2: sa[2], sa3: sa[3], sb0: sb[0], sb1: sb[1], sb2: sb[2], sb3: sb[3],
      }, n0 * n1 * n2 * n3);
    });
    return o;
  }

  affine(x: Storage, a: number, b: number): Storage {
    this.requireF32('affine', x);
    const o = this.out(x.size);
    this.run(affineKernel, { x: ptr(x), out: o.ptr, n: x.size, a, b }, x.size);
    return o;
  }
  pow(x: Storage, e: number): Storage {
    this.requireF32('pow', x);
    const o = this.out(x.size);
    const isInt = Number.isInteger(e) ? 1 : 0;
    this.run(powKernel, { x: ptr(x), out: o.ptr, n: x.size, e, isInt, odd: isInt && Math.abs(e) % 2 === 1 ? 1 : 0 }, x.size * 8);
    return o;
  }
  reduce(op: ReduceOp, x: Storage, outer: number, n: number, inner: number): Storage {
    this.requireF32(op, x);
    const o = this.out(outer * inner);
    this.run(reduceKernels[op], { x: ptr(x), out: o.ptr, outer, n, inner }, outer * n * inner);
    return o;
  }
  copy(x: Storage, p: CopyParams, dst?: Storage): Storage {
    if (x.dtype === 'f16') throw new Error('strided copies of f16 storage are not supported: cast() to f32 first');
    const size = numel(p.shape);
    const o = (dst as WasmStorage | undefined) ?? this.out(size, x.dtype);
    this.strided4(p.shape, [p.srcStrides, p.dstStrides], ([n0, n1, n2, n3], [ss, ds], [os, od]) => {
      this.run(copyKernel, {
        src: ptr(x) + 4 * (p.srcOffset + os), dst: o.ptr + 4 * (p.dstOffset + od), n0, n1, n2, n3,
        ss0: ss[0], ss1: ss[1], ss2: ss[2], ss3: ss[3], ds0: ds[0], ds1: ds[1], ds2: ds[2], ds3: ds[3],
      }, n0 * n1 * n2 * n3);
    });
    return o;
  }

  matmul(a: Storage, b: Storage, p: MatmulParams, c?: Storage): Storage {
    this.requireF32('matmul', a, b);
    if (p.accumulate && !c) throw new Error('matmul: accumulate needs the output storage c');
    const { batch, m, n, k } = p;
    const o = (c as WasmStorage | undefined) ?? this.out(batch * m * n + (p.cOffset ?? 0));
    if (batch * m * n === 0) return o;
    const threads = this.threadsFor(m * n * k / 4);
    this.withScratch(matmulScratchBytes(k), threads, 'matmul panel scratch', (scratch, scratchPerThread) => this.launch(matmulKernel, {
      a: ptr(a) + 4 * (p.aOffset ?? 0), b: ptr(b) + 4 * (p.bOffset ?? 0), c: o.ptr + 4 * (p.cOffset ?? 0), batch, m, n, k,
      sAi: p.transA ? 1 : k, sAl: p.transA ? m : 1, sBl: p.transB ? 1 : n, sBj: p.transB ? k : 1,
      aBatch: p.aBatchStride, bBatch: p.bBatchStride, accumulate: p.accumulate ? 1 : 0, scratch, scratchPerThread,
    }, threads));
    return o;
  }

  gather(x: Storage, ids: Storage, outer: number, dim: number, inner: number): Storage {
    const idv = this.readSync(ids);
    idv.forEach((r, j) => {
      if (r < 0 || r >= dim) throw new Error(`gather: index ${r} at position ${j} is out of range [0, ${dim})`);
    });
    if (x.dtype === 'f16') throw new Error('gather of f16 storage is not supported: cast() to f32 first');
    const o = this.out(outer * ids.size * inner, x.dtype);
    this.run(gatherKernel, { x: ptr(x), ids: ptr(ids), out: o.ptr, outer, n: ids.size, dim, inner }, outer * ids.size * inner);
    return o;
  }
  scatterAdd(dy: Storage, ids: Storage, outer: number, dim: number, inner: number): Storage {
    const o = this.fill(outer * dim * inner, 0, 'f32') as WasmStorage;
    this.run(scatterAddKernel, { dy: ptr(dy), ids: ptr(ids), out: o.ptr, outer, n: ids.size, dim, inner }, outer * ids.size * inner);
    return o;
  }
  softmax(x: Storage, rows: number, n: number, mask?: Storage): Storage {
    const o = this.out(rows * n);
    this.run(softmaxKernel, { x: ptr(x), mask: mask ? ptr(mask) : 0, out: o.ptr, rows, n }, rows * n * 8);
    return o;
  }
  softmaxGrad(y: Storage, dy: Storage, rows: number, n: number): Storage {
    const o = this.out(rows * n);
    this.run(softmaxGradKernel, { y: ptr(y), dy: ptr(dy), out: o.ptr, rows, n }, rows * n);
    return o;
  }
  rmsnorm(x: Storage, w: Storage, rows: number, n: number, eps: number) {
    const y = this.out(rows * n), rstd = this.out(rows);
    this.run(rmsnormKernel, { x: ptr(x), w: ptr(w), y: y.ptr, rstd: rstd.ptr, rows, n, eps }, rows * n);
    return { y, rstd };
  }
  rmsnormGrad(x: Storage, w: Storage, rstd: Storage, dy: Storage, rows: number, n: number) {
    const dx = this.out(rows * n);
    const threads = this.threadsFor(rows * n);
    const part = this.fill(threads * n, 0, 'f32') as WasmStorage;
    this.launch(rmsnormGradKernel, { x: ptr(x), w: ptr(w), rstd: ptr(rstd), dy: ptr(dy), dx: dx.ptr, dw: part.ptr, rows, n }, threads);
    const dw = this.sumRows(part, threads, n);
    return { dx, dw };
  }
  layernorm(x: Storage, w: Storage, b: Storage, rows: number, n: number, eps: number) {
    const y = this.out(rows * n), mean = this.out(rows), rstd = this.out(rows);
    this.run(layernormKernel, { x: ptr(x), w: ptr(w), b: ptr(b), y: y.ptr, mean: mean.ptr, rstd: rstd.ptr, rows, n, eps }, rows * n);
    return { y, mean, rstd };
  }
  layernormGrad(x: Storage, w: Storage, mean: Storage, rstd: Storage, dy: Storage, rows: number, n: number) {
    const dx = this.out(rows * n);
    const threads = this.threadsFor(rows * n);
    const part = this.fill(2 * threads * n, 0, 'f32') as WasmStorage;
    this.launch(layernormGradKernel, { x: ptr(x), w: ptr(w), mean: ptr(mean), rstd: ptr(rstd), dy: ptr(dy), dx: dx.ptr, dwb: part.ptr, rows, n }, threads);
    // partials are [threads, 2, n]: dw row then db row per thread
    const both = this.sumRows(part, threads, 2 * n);
    const dw = this.copy(both, { shape: [n], srcStrides: [1], srcOffset: 0, dstStrides: [1], dstOffset: 0 });
    const db = this.copy(both, { shape: [n], srcStrides: [1], srcOffset: n, dstStrides: [1], dstOffset: 0 });
    this.free(both);
    return { dx, dw, db };
  }
  /** Σ over the rows of part [rows, n] -> [n]; frees part. */
  private sumRows(part: WasmStorage, rows: number, n: number): Storage {
    const r = this.out(n);
    this.run(reduceKernels.sum, { x: part.ptr, out: r.ptr, outer: 1, n: rows, inner: n }, 0);
    this.free(part);
    return r;
  }
  rope(x: Storage, pos: Storage, table: Storage, b: number, t: number, h: number, d: number, inverse: boolean): Storage {
    const o = this.out(x.size);
    this.run(ropeKernel, { x: ptr(x), pos: ptr(pos), table: ptr(table), out: o.ptr, rows: b * t, h, d, maxPos: table.size / d, sign: inverse ? -1 : 1 }, x.size);
    return o;
  }
  attention(q: Storage, k: Storage, v: Storage, keyMask: Storage | undefined, p: AttentionParams) {
    const o = this.out(p.batch * p.t * p.hq * p.d), lse = this.out(p.batch * p.t * p.hq);
    const threads = this.threadsFor(p.batch * p.t * p.s * p.hq * p.d);
    this.withScratch(attentionScratchBytes(p.d, p.s, false), threads, 'attention scratch', (scratch, scratchPerThread) =>
      this.launch(attentionKernel, { ...this.attnArgs(q, k, v, keyMask, p), o: o.ptr, lse: lse.ptr, scratch, scratchPerThread }, threads));
    return { o, lse };
  }
  private attnArgs(q: Storage, k: Storage, v: Storage, keyMask: Storage | undefined, p: AttentionParams) {
    return {
      q: ptr(q), k: ptr(k), v: ptr(v), mask: keyMask ? ptr(keyMask) : 0, batch: p.batch, t: p.t, s: p.s, sMax: p.sMax,
      hq: p.hq, hkv: p.hkv, d: p.d, scale: p.scale, causal: p.causal ? 1 : 0, qOffset: p.qOffset,
    };
  }
  attentionGrad(q: Storage, k: Storage, v: Storage, o: Storage, lse: Storage, dO: Storage, keyMask: Storage | undefined, p: AttentionParams) {
    const dq = this.out(q.size);
    const dk = this.fill(k.size, 0, 'f32') as WasmStorage, dv = this.fill(v.size, 0, 'f32') as WasmStorage;
    const threads = this.threadsFor(p.batch * p.t * p.s * p.hq * p.d);
    this.withScratch(attentionScratchBytes(p.d, p.s, true), threads, 'attention scratch', (scratch, scratchPerThread) =>
      this.launch(attentionGradKernel, {
        ...this.attnArgs(q, k, v, keyMask, p), o: ptr(o), lse: ptr(lse), dO: ptr(dO), dq: dq.ptr, dk: dk.ptr, dv: dv.ptr, scratch, scratchPerThread,
      }, threads));
    return { dq, dk, dv };
  }
  logprobChunk(logits: Storage, targets: Storage, stats: Storage, n: number, vc: number, v0: number, temperature: number): void {
    this.run(logprobChunkKernel, { logits: ptr(logits), targets: ptr(targets), stats: ptr(stats), n, vc, v0, invT: 1 / temperature }, n * vc * 8);
  }
  logprobFinish(stats: Storage, n: number): Storage {
    const o = this.out(n * 2);
    this.launch(logprobFinishKernel, { stats: ptr(stats), out: o.ptr, n }, 1);
    return o;
  }
  logprobChunkGrad(logits: Storage, targets: Storage, out: Storage, stats: Storage, dlogp: Storage, dent: Storage, n: number, vc: number, v0: number, temperature: number): Storage {
    const o = this.out(n * vc);
    this.run(logprobChunkGradKernel, {
      logits: ptr(logits), targets: ptr(targets), out: ptr(out), stats: ptr(stats), dlogp: ptr(dlogp), dent: ptr(dent), dz: o.ptr, n, vc, v0, invT: 1 / temperature,
    }, n * vc * 8);
    return o;
  }
  /** A strided copy: [B, C, gh, p, gw, p] <-> [B, gh, gw, C, p, p]. */
  patchify(x: Storage, b: number, c: number, h: number, w: number, p: number, inverse: boolean): Storage {
    const gh = h / p, gw = w / p;
    const shape = [b, c, gh, p, gw, p];
    const img = [c * h * w, h * w, p * w, w, p, 1];
    const pat = [gh * gw * c * p * p, p * p, gw * c * p * p, p, c * p * p, 1];
    return this.copy(x, { shape, srcStrides: inverse ? pat : img, srcOffset: 0, dstStrides: inverse ? img : pat, dstOffset: 0 });
  }
  sumSquares(x: Storage, partial: Storage, slot: number): void {
    this.launch(sumSquaresKernel, { x: ptr(x), n: x.size, out: ptr(partial) + 4 * slot }, 1);
  }
  clipCoef(partial: Storage, k: number, maxNorm: number, out: Storage): void {
    this.launch(clipCoefKernel, { partial: ptr(partial), k, maxNorm, out: ptr(out) }, 1);
  }
  adamw(p: Storage, g: Storage, m: Storage, v: Storage, h: AdamWParams, coef?: Storage): void {
    this.run(adamwKernel, {
      p: ptr(p), g: ptr(g), m: ptr(m), v: ptr(v), n: p.size, lr: h.lr, beta1: h.beta1, beta2: h.beta2, omb1: 1 - h.beta1, omb2: 1 - h.beta2, eps: h.eps, decay: 1 - h.lr * h.weightDecay,
      bc1: 1 - h.beta1 ** h.step, bc2: 1 - h.beta2 ** h.step, coef: coef ? ptr(coef) : 0,
    }, p.size * 4);
  }
  sgd(p: Storage, g: Storage, buf: Storage | undefined, lr: number, momentum: number, weightDecay: number, coef?: Storage): void {
    this.run(sgdKernel, { p: ptr(p), g: ptr(g), buf: buf ? ptr(buf) : 0, n: p.size, lr, momentum, decay: weightDecay, coef: coef ? ptr(coef) : 0 }, p.size * 4);
  }
}
