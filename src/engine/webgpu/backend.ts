/**
 * The WebGPU backend: each Backend kernel of ../backend.ts as one or a few WGSL dispatches
 * (kernels/, one module per op) recorded through the GpuContext. The same code runs on the
 * browser's navigator.gpu (page or worker) and on Dawn in Node.
 */
import type { AdamWParams, AttentionParams, Backend, BinaryOp, BinaryParams, CopyParams, MatmulParams, ReduceOp, Storage, UnaryOp } from '../backend.js';
import { f16Bits, f16FromBits, numel, storageBytes, type DType } from '../dtype.js';
import { GpuContext, type GpuBuffer } from './context.js';
import * as attention from './kernels/attention.js';
import { binary } from './kernels/binary.js';
import { WG, type Family } from './kernels/common.js';
import { cast, copy, fill, splat } from './kernels/copy.js';
import { affine, unary, unaryGrad } from './kernels/elementwise.js';
import { gather, scatterAdd } from './kernels/gather.js';
import * as logprob from './kernels/logprob.js';
import * as matmul from './kernels/matmul.js';
import * as norm from './kernels/norm.js';
import * as optim from './kernels/optim.js';
import { patchify } from './kernels/patchify.js';
import * as reduce from './kernels/reduce.js';
import { rope } from './kernels/rope.js';
import * as softmax from './kernels/softmax.js';
import type { Fields, Kernel, Values } from './kernels/uniforms.js';

class GpuStorage implements Storage {
  refs = 1;
  constructor(
    readonly backend: WebGPUBackend,
    readonly dtype: DType,
    readonly size: number,
    readonly gpu: GpuBuffer,
  ) {}
}

const buf = (s: Storage) => (s as GpuStorage).gpu.buffer;

/** Whether the device runs WGSL subgroups of exactly 4 lanes (SwiftShader's SIMD width), as matmul.subgroup assumes. */
function hasSubgroupsOf4(device: GPUDevice): boolean {
  const info = (device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  return device.features.has('subgroups') && info?.subgroupMinSize === 4 && info?.subgroupMaxSize === 4;
}
const groups = (n: number, per = WG) => Math.ceil(n / per);
/** Whether strides address `shape` row-major without gaps (flat index = element index); size-1 dims may have any stride. */
function rowMajor(shape: number[], strides: number[]): boolean {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== expect) return false;
    expect *= shape[d];
  }
  return true;
}

/**
 * The {@link Backend} on a WebGPU device (the browser's navigator.gpu in a page or worker, or Dawn in
 * Node): every kernel is one or a few WGSL dispatches recorded through its {@link GpuContext}, which
 * batches them into few submissions. Two kernel families, picked by the adapter's name: 'software'
 * (SwiftShader and kin) and 'gpu' (workgroup-tiled).
 *
 * Storage: f32, i32 and u32 as 32-bit words; f16 as packed halves (two per word, read through WGSL's
 * unpack2x16float, so no shader-f16 feature is needed); compute is f32.
 * Errors: f16 inputs to kernels that need f32, strided copies or gathers of f16 storage; buffers above
 * the adapter's limits, a lost device or a GPU validation error (raised by the GpuContext, naming the
 * tensor, its size and the limit).
 */
export class WebGPUBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly ctx: GpuContext;
  /** Small buffers bound where a kernel's optional input is absent (two: one read-only, one read-write slot). */
  private dummy: GpuStorage;
  private dummyRW: GpuStorage;

  /**
   * Which kernel family runs: 'software' for CPU-like adapters (SwiftShader and kin), whose kernels
   * avoid workgroup memory, barriers and dynamically indexed private arrays and read vec4; 'gpu'
   * (workgroup-tiled, workgroup reductions) otherwise.
   */
  readonly kernels: Family;
  /**
   * Which matmul kernel runs: on software adapters the subgroup kernel where subgroups are 4 lanes
   * wide (SwiftShader), else the register-blocked vec4 one; workgroup-tiled on GPUs.
   */
  readonly matmulKernel: 'tiled' | 'vec4' | 'subgroup';

  /**
   * @param description the adapter's name, shown in benchmarks and the lab's setup view
   * @param opts.kernels force a kernel family (tests exercise both); default picks by adapter
   * @param opts.matmul force a matmul kernel; default follows the family
   */
  constructor(device: GPUDevice, readonly description = 'WebGPU', opts: { kernels?: Family; matmul?: 'tiled' | 'vec4' | 'subgroup' } = {}) {
    this.ctx = new GpuContext(device);
    this.kernels = opts.kernels ?? (/swiftshader|llvmpipe|lavapipe|software/i.test(description) ? 'software' : 'gpu');
    this.matmulKernel = opts.matmul ?? (this.kernels === 'gpu' ? 'tiled' : hasSubgroupsOf4(device) ? 'subgroup' : 'vec4');
    if (this.matmulKernel === 'subgroup' && !hasSubgroupsOf4(device)) throw new Error('the subgroup matmul needs the subgroups feature with 4-lane subgroups');
    this.dummy = this.alloc(4, 'u32', 'placeholder') as GpuStorage;
    this.dummyRW = this.alloc(4, 'u32', 'placeholder') as GpuStorage;
  }

  private out(size: number, dtype: DType, label: string): GpuStorage {
    return this.alloc(size, dtype, label) as GpuStorage;
  }

  /** Records one dispatch of `kernel` with its uniform values, storage buffers (bindings 1..n) and workgroups. */
  private run<F extends Fields>(kernel: Kernel<F>, values: Values<F>, buffers: GPUBuffer[], workgroups: number | [number, number, number]): void {
    this.ctx.dispatch(kernel.code, kernel.pack(values), buffers, workgroups);
  }

  alloc(size: number, dtype: DType, name = 'tensor'): Storage {
    const bytes = storageBytes(size, dtype);
    return new GpuStorage(this, dtype, size, this.ctx.acquire(bytes, `${name} (${size} × ${dtype})`));
  }

  upload(data: Float32Array | Float64Array | Int32Array | Uint32Array, dtype: DType, name = 'upload'): Storage {
    const s = this.out(data.length, dtype, name);
    let bytes: ArrayBufferView;
    if (dtype === 'f16') {
      const words = new Uint32Array(Math.ceil(data.length / 2));
      for (let i = 0; i < data.length; i++) words[i >> 1] |= f16Bits(data[i]) << (16 * (i & 1));
      bytes = words;
    } else if (dtype === 'f32') bytes = data instanceof Float32Array ? data : Float32Array.from(data);
    else if (dtype === 'i32') bytes = data instanceof Int32Array ? data : Int32Array.from(data);
    else bytes = data instanceof Uint32Array ? data : Uint32Array.from(data);
    if (bytes.byteLength) this.ctx.write(s.gpu.buffer, bytes);
    return s;
  }

  async read(s: Storage, _exact?: boolean): Promise<Float32Array | Int32Array | Uint32Array> {
    const raw = await this.ctx.read(buf(s), storageBytes(s.size, s.dtype));
    if (s.dtype === 'i32') return new Int32Array(raw);
    if (s.dtype === 'u32') return new Uint32Array(raw);
    if (s.dtype === 'f32') return new Float32Array(raw);
    const words = new Uint32Array(raw);
    const out = new Float32Array(s.size);
    for (let i = 0; i < s.size; i++) out[i] = f16FromBits((words[i >> 1] >>> (16 * (i & 1))) & 0xffff);
    return out;
  }

  free(s: Storage): void {
    this.ctx.release((s as GpuStorage).gpu);
  }
  flush(): void {
    this.ctx.flush();
  }
  async sync(): Promise<void> {
    this.ctx.flush();
    await this.ctx.device.queue.onSubmittedWorkDone();
    this.ctx.check();
  }
  memory() {
    return { liveBytes: this.ctx.live, peakBytes: this.ctx.peak, pooledBytes: this.ctx.pooled };
  }
  resetPeak(): void {
    this.ctx.peak = this.ctx.live;
  }
  counters() {
    return { dispatches: this.ctx.dispatches, submits: this.ctx.submits };
  }

  private requireF32(op: string, ...xs: Storage[]): void {
    for (const x of xs) if (x.dtype !== 'f32') throw new Error(`${op} on the GPU needs f32 inputs, got ${x.dtype}: cast() f16 storage to f32 first`);
  }

  fill(size: number, value: number, dtype: DType): Storage {
    const s = this.out(size, dtype, 'fill');
    let bits: number;
    if (dtype === 'f16') bits = f16Bits(value) * 0x10001;
    else if (dtype === 'f32') bits = new Uint32Array(new Float32Array([value]).buffer)[0];
    else bits = dtype === 'i32' ? value | 0 : value >>> 0;
    const words = Math.ceil(storageBytes(size, dtype) / 4);
    this.run(fill, { n: words, bits }, [s.gpu.buffer], groups(words));
    return s;
  }

  cast(x: Storage, to: DType): Storage {
    const s = this.out(x.size, to, `cast to ${to}`);
    const n = to === 'f16' ? Math.ceil(x.size / 2) : x.size;
    this.run(cast(x.dtype, to), { n: x.size }, [buf(x), s.gpu.buffer], groups(n));
    return s;
  }

  unary(op: UnaryOp, x: Storage): Storage {
    this.requireF32(op, x);
    const s = this.out(x.size, 'f32', op);
    this.run(unary(op), { n: x.size }, [buf(x), s.gpu.buffer], groups(x.size));
    return s;
  }

  unaryGrad(op: UnaryOp, x: Storage, y: Storage, dy: Storage): Storage {
    const s = this.out(x.size, 'f32', `${op} grad`);
    this.run(unaryGrad(op), { n: x.size }, [buf(x), buf(y), buf(dy), s.gpu.buffer], groups(x.size));
    return s;
  }

  binary(op: BinaryOp, a: Storage, b: Storage, p: BinaryParams): Storage {
    this.requireF32(op, a, b);
    const n = numel(p.shape);
    const s = this.out(n, 'f32', op);
    const last = p.shape.length - 1;
    const rowVector = last >= 0 && p.bStrides.every((st, d) => (d === last ? st === 1 : st === 0 || p.shape[d] === 1));
    const layout = !rowMajor(p.shape, p.aStrides) ? 'strided' : rowMajor(p.shape, p.bStrides) ? 'contiguous' : rowVector ? 'rowvec' : 'strided';
    const u = { shape: p.shape, sa: p.aStrides, sb: p.bStrides, rank: p.shape.length, n };
    this.run(binary(op, layout), u, [buf(a), buf(b), s.gpu.buffer], groups(n));
    return s;
  }

  affine(x: Storage, a: number, b: number): Storage {
    this.requireF32('affine', x);
    const s = this.out(x.size, 'f32', 'affine');
    this.run(affine, { n: x.size, a, b, e: 0, isPow: false }, [buf(x), s.gpu.buffer], groups(x.size));
    return s;
  }

  pow(x: Storage, e: number): Storage {
    this.requireF32('pow', x);
    const s = this.out(x.size, 'f32', 'pow');
    this.run(affine, { n: x.size, a: 1, b: 0, e, isPow: true }, [buf(x), s.gpu.buffer], groups(x.size));
    return s;
  }

  reduce(op: ReduceOp, x: Storage, outer: number, n: number, inner: number): Storage {
    this.requireF32(op, x);
    const s = this.out(outer * inner, 'f32', `reduce ${op}`);
    const u = { outer, n, inner };
    if (inner === 1) this.run(reduce.rows[this.kernels](op), u, [buf(x), s.gpu.buffer], this.rowGroups(outer));
    else this.run(reduce.strided(op), u, [buf(x), s.gpu.buffer], groups(outer * inner));
    return s;
  }

  copy(x: Storage, p: CopyParams, dst?: Storage): Storage {
    if (x.dtype === 'f16') throw new Error('strided copies of f16 storage are not supported: cast() to f32 first');
    const n = numel(p.shape);
    const s = (dst as GpuStorage | undefined) ?? this.out(n, x.dtype, 'copy');
    if (p.srcStrides.every((st, d) => st === 0 || p.shape[d] === 1) && rowMajor(p.shape, p.dstStrides)) {
      this.run(splat, { n, soff: p.srcOffset, doff: p.dstOffset }, [buf(x), s.gpu.buffer], groups(n));
      return s;
    }
    const u = { shape: p.shape, ss: p.srcStrides, ds: p.dstStrides, rank: p.shape.length, n, soff: p.srcOffset, doff: p.dstOffset };
    this.run(copy, u, [buf(x), s.gpu.buffer], groups(n));
    return s;
  }

  matmul(a: Storage, b: Storage, p: MatmulParams, c?: Storage): Storage {
    this.requireF32('matmul', a, b);
    const s = (c as GpuStorage | undefined) ?? this.out(p.batch * p.m * p.n + (p.cOffset ?? 0), 'f32', `matmul output [${p.batch}, ${p.m}, ${p.n}]`);
    if (this.matmulKernel === 'vec4') this.matmulVec4(a, b, p, s);
    else {
      const u = { m: p.m, n: p.n, k: p.k, aBS: p.aBatchStride, bBS: p.bBatchStride, aOff: p.aOffset ?? 0, bOff: p.bOffset ?? 0, cOff: p.cOffset ?? 0, accumulate: !!p.accumulate };
      if (this.matmulKernel === 'subgroup') {
        const { rowsPerLane, colGroups, grid } = matmul.subgroupLaunch(p.m, p.n, p.batch);
        this.run(matmul.subgroup(p.transA, p.transB, rowsPerLane, colGroups), u, [buf(a), buf(b), s.gpu.buffer], grid);
      } else {
        const tiled = { ...u, transA: p.transA, transB: p.transB };
        this.run(matmul.tiled, tiled, [buf(a), buf(b), s.gpu.buffer], [Math.ceil(p.n / 64), Math.ceil(p.m / 64), p.batch]);
      }
    }
    return s;
  }

  /**
   * The vec4 kernel reads A as [M, K] and B as [N, K] or [K, N] (or, with no copy at all, A as
   * [K, M] with B as [K, N]) with the vec4 axis a multiple of 4 and aligned offsets. Operands in
   * another layout are first packed into [rows, K] by a strided copy (zero-padding K): O(size) work
   * against the O(M·N·K) product.
   */
  private matmulVec4(a: Storage, b: Storage, p: MatmulParams, out: GpuStorage): void {
    const k4 = Math.ceil(p.k / 4);
    const aOffset = p.aOffset ?? 0, bOffset = p.bOffset ?? 0;
    const aligned = (offset: number, batchStride: number) => offset % 4 === 0 && batchStride % 4 === 0;
    // Stored [K, M] / [K, N], read along M / N.
    const aT = p.transA && p.m % 4 === 0 && aligned(aOffset, p.aBatchStride);
    const bT = !p.transB && p.n % 4 === 0 && aligned(bOffset, p.bBatchStride);
    const pack = (x: Storage, rows: number, trans: boolean, batchStride: number, offset: number): { s: Storage; bs: number; off: number; temp: boolean } => {
      const batch = batchStride ? p.batch : 1;
      if (!trans && p.k % 4 === 0 && aligned(offset, batchStride)) return { s: x, bs: batchStride / 4, off: offset / 4, temp: false };
      // Packed [batch, rows, 4·k4]: element (r, kk) read from x at offset + b·batchStride + (trans ? kk·rows + r : r·K + kk).
      const dst = k4 * 4 === p.k ? this.out(batch * rows * k4 * 4, 'f32', 'matmul packed operand') : (this.fill(batch * rows * k4 * 4, 0, 'f32') as GpuStorage);
      this.copy(x, { shape: [batch, rows, p.k], srcStrides: [batchStride, trans ? 1 : p.k, trans ? rows : 1], srcOffset: offset, dstStrides: [rows * k4 * 4, k4 * 4, 1], dstOffset: 0 }, dst);
      return { s: dst, bs: batchStride ? rows * k4 : 0, off: 0, temp: true };
    };
    const direct = (x: Storage, batchStride: number, offset: number) => ({ s: x, bs: batchStride / 4, off: offset / 4, temp: false });
    let layout: 'nt' | 'nn' | 'tn', A, B;
    if (aT && bT) {
      layout = 'tn';
      A = direct(a, p.aBatchStride, aOffset);
      B = direct(b, p.bBatchStride, bOffset);
    } else {
      A = pack(a, p.m, p.transA, p.aBatchStride, aOffset);
      // B [K, N] is read directly when A is unpadded along K; otherwise packed to [N, K].
      layout = bT && p.k % 4 === 0 ? 'nn' : 'nt';
      B = layout === 'nn' ? direct(b, p.bBatchStride, bOffset) : pack(b, p.n, !p.transB, p.bBatchStride, bOffset);
    }
    const u = { m: p.m, n: p.n, k4: layout === 'tn' ? p.k : k4, aBS: A.bs, bBS: B.bs, aOff: A.off, bOff: B.off, cOff: p.cOffset ?? 0, accumulate: !!p.accumulate };
    this.run(matmul.vec4(layout), u, [buf(A.s), buf(B.s), out.gpu.buffer], [Math.ceil(p.n / 4 / 64), Math.ceil(p.m / 8), p.batch]);
    if (A.temp) this.free(A.s);
    if (B.temp) this.free(B.s);
  }

  gather(x: Storage, ids: Storage, outer: number, dim: number, inner: number): Storage {
    if (x.dtype === 'f16') throw new Error('gather of f16 storage is not supported: cast() to f32 first');
    const n = ids.size;
    const s = this.out(outer * n * inner, x.dtype, 'gather');
    this.run(gather, { outer, dim, inner, n }, [buf(x), buf(ids), s.gpu.buffer], groups(outer * n * inner));
    return s;
  }

  scatterAdd(dy: Storage, ids: Storage, outer: number, dim: number, inner: number): Storage {
    const s = this.fill(outer * dim * inner, 0, 'f32') as GpuStorage;
    this.run(scatterAdd, { outer, dim, inner, n: ids.size }, [buf(dy), buf(ids), s.gpu.buffer], groups(outer * inner));
    return s;
  }

  softmax(x: Storage, rows: number, n: number, mask?: Storage): Storage {
    this.requireF32('softmax', x);
    const s = this.out(rows * n, 'f32', 'softmax');
    this.run(softmax.forward[this.kernels], { rows, n, hasMask: !!mask }, [buf(x), buf(mask ?? this.dummy), s.gpu.buffer], this.rowGroups(rows));
    return s;
  }

  softmaxGrad(y: Storage, dy: Storage, rows: number, n: number): Storage {
    const s = this.out(rows * n, 'f32', 'softmax grad');
    this.run(softmax.backward[this.kernels], { rows, n }, [buf(y), buf(dy), s.gpu.buffer], this.rowGroups(rows));
    return s;
  }

  /** Workgroups of a row kernel (reduce, softmax, norms, log-prob): one thread per row on software adapters, one workgroup per row otherwise. */
  private rowGroups(rows: number): number {
    return this.kernels === 'software' ? groups(rows, 64) : rows;
  }

  rmsnorm(x: Storage, w: Storage, rows: number, n: number, eps: number) {
    this.requireF32('rmsnorm', x, w);
    const y = this.out(rows * n, 'f32', 'rmsnorm'), rstd = this.out(rows, 'f32', 'rmsnorm rstd');
    this.run(norm.forward[this.kernels](false), { rows, n, eps }, [buf(x), buf(w), y.gpu.buffer, rstd.gpu.buffer], this.rowGroups(rows));
    return { y, rstd };
  }

  rmsnormGrad(x: Storage, w: Storage, rstd: Storage, dy: Storage, rows: number, n: number) {
    const dx = this.out(rows * n, 'f32', 'rmsnorm dx'), dw = this.out(n, 'f32', 'rmsnorm dw');
    this.run(norm.backward[this.kernels](false), { rows, n }, [buf(x), buf(w), buf(rstd), buf(dy), dx.gpu.buffer], this.rowGroups(rows));
    this.run(norm.paramGrad(false), { rows, n }, [buf(x), buf(rstd), buf(dy), dw.gpu.buffer], groups(n));
    return { dx, dw };
  }

  layernorm(x: Storage, w: Storage, b: Storage, rows: number, n: number, eps: number) {
    this.requireF32('layernorm', x, w, b);
    const y = this.out(rows * n, 'f32', 'layernorm'), stats = this.out(rows * 2, 'f32', 'layernorm stats');
    this.run(norm.forward[this.kernels](true), { rows, n, eps }, [buf(x), buf(w), buf(b), y.gpu.buffer, stats.gpu.buffer], this.rowGroups(rows));
    // mean and rstd are interleaved in one buffer; expose them as the interface's two storages.
    const mean = this.copy(stats, { shape: [rows], srcStrides: [2], srcOffset: 0, dstStrides: [1], dstOffset: 0 });
    const rstd = this.copy(stats, { shape: [rows], srcStrides: [2], srcOffset: 1, dstStrides: [1], dstOffset: 0 });
    this.free(stats);
    return { y, mean, rstd };
  }

  layernormGrad(x: Storage, w: Storage, mean: Storage, rstd: Storage, dy: Storage, rows: number, n: number) {
    const stats = this.out(rows * 2, 'f32', 'layernorm stats');
    this.copy(mean, { shape: [rows], srcStrides: [1], srcOffset: 0, dstStrides: [2], dstOffset: 0 }, stats);
    this.copy(rstd, { shape: [rows], srcStrides: [1], srcOffset: 0, dstStrides: [2], dstOffset: 1 }, stats);
    const dx = this.out(rows * n, 'f32', 'layernorm dx'), dw = this.out(n, 'f32', 'layernorm dw'), db = this.out(n, 'f32', 'layernorm db');
    this.run(norm.backward[this.kernels](true), { rows, n }, [buf(x), buf(w), stats.gpu.buffer, buf(dy), dx.gpu.buffer], this.rowGroups(rows));
    this.run(norm.paramGrad(true), { rows, n }, [buf(x), stats.gpu.buffer, buf(dy), dw.gpu.buffer, db.gpu.buffer], groups(n));
    this.free(stats);
    return { dx, dw, db };
  }

  rope(x: Storage, pos: Storage, table: Storage, b: number, t: number, h: number, d: number, inverse: boolean): Storage {
    this.requireF32('rope', x, table);
    const s = this.out(x.size, 'f32', 'rope');
    const u = { b, t, h, d, maxPos: table.size / d, sign: inverse ? -1 : 1 };
    this.run(rope, u, [buf(x), buf(pos), buf(table), s.gpu.buffer], groups((b * t * h * d) / 2));
    return s;
  }

  /** vec4 attention kernels: software adapters, head_dim a multiple of 4 (every supported model). */
  private attnVec4(p: AttentionParams): boolean {
    return this.kernels === 'software' && p.d % 4 === 0;
  }

  /** Subgroup attention kernels where the subgroup matmul runs (4-lane subgroups), head_dim a multiple of 4. */
  private attnSubgroup(p: AttentionParams): boolean {
    return this.matmulKernel === 'subgroup' && p.d % 4 === 0;
  }

  /** Workgroups of 16 subgroups, each serving 4 rows of `rows` per head. */
  private attnSubgroupGroups(batch: number, heads: number, rows: number): number {
    return groups(batch * heads * Math.ceil(rows / 4), 16);
  }

  attention(q: Storage, k: Storage, v: Storage, keyMask: Storage | undefined, p: AttentionParams) {
    this.requireF32('attention', q, k, v);
    const rows = p.batch * p.t * p.hq;
    const o = this.out(rows * p.d, 'f32', 'attention output'), lse = this.out(rows, 'f32', 'attention lse');
    const u = { ...p, hasMask: !!keyMask };
    const bindings = [buf(q), buf(k), buf(v), buf(keyMask ?? this.dummy), o.gpu.buffer, lse.gpu.buffer];
    if (this.attnSubgroup(p)) this.run(attention.forward.subgroup(p.d), u, bindings, this.attnSubgroupGroups(p.batch, p.hq, p.t));
    else this.run(attention.forward[this.attnVec4(p) ? 'vec4' : 'scalar'](p.d), u, bindings, groups(rows, 64));
    return { o, lse };
  }

  attentionGrad(q: Storage, k: Storage, v: Storage, o: Storage, lse: Storage, dO: Storage, keyMask: Storage | undefined, p: AttentionParams) {
    const rows = p.batch * p.t * p.hq;
    const rowStats = this.out(rows * 2, 'f32', 'attention row stats');
    const vec4 = this.attnVec4(p);
    this.run(attention.delta[vec4 ? 'vec4' : 'scalar'](p.d), { rows }, [buf(o), buf(dO), buf(lse), rowStats.gpu.buffer], groups(rows, vec4 ? 64 : WG));
    const u = { ...p, hasMask: !!keyMask };
    const mask = buf(keyMask ?? this.dummy);
    const dq = this.out(q.size, 'f32', 'attention dq'), dk = this.out(k.size, 'f32', 'attention dk'), dv = this.out(v.size, 'f32', 'attention dv');
    const inputs = [buf(q), buf(k), buf(v), buf(dO), rowStats.gpu.buffer, mask];
    if (this.attnSubgroup(p)) {
      this.run(attention.dq.subgroup(p.d), u, [...inputs, dq.gpu.buffer], this.attnSubgroupGroups(p.batch, p.hq, p.t));
      this.run(attention.dkv.subgroup(p.d), u, [...inputs, dk.gpu.buffer, dv.gpu.buffer], this.attnSubgroupGroups(p.batch, p.hkv, p.sMax));
    } else {
      const variant = vec4 ? 'vec4' : 'scalar';
      this.run(attention.dq[variant](p.d), u, [...inputs, dq.gpu.buffer], groups(rows, 64));
      this.run(attention.dkv[variant](p.d), u, [...inputs, dk.gpu.buffer, dv.gpu.buffer], groups(p.batch * p.sMax * p.hkv, 64));
    }
    this.free(rowStats);
    return { dq, dk, dv };
  }

  logprobChunk(logits: Storage, targets: Storage, stats: Storage, n: number, vc: number, v0: number, temperature: number): void {
    this.run(logprob.chunk[this.kernels], { n, vc, v0, invT: 1 / temperature }, [buf(logits), buf(targets), buf(stats)], this.rowGroups(n));
  }

  logprobFinish(stats: Storage, n: number): Storage {
    const s = this.out(n * 2, 'f32', 'logprob output');
    this.run(logprob.finish, { n }, [buf(stats), s.gpu.buffer], groups(n));
    return s;
  }

  logprobChunkGrad(logits: Storage, targets: Storage, out: Storage, stats: Storage, dlogp: Storage, dent: Storage, n: number, vc: number, v0: number, temperature: number): Storage {
    const s = this.out(n * vc, 'f32', 'logprob chunk grad');
    const bindings = [buf(logits), buf(targets), buf(out), buf(stats), buf(dlogp), buf(dent), s.gpu.buffer];
    this.run(logprob.chunkGrad, { n, vc, v0, invT: 1 / temperature }, bindings, groups(n * vc));
    return s;
  }

  patchify(x: Storage, b: number, c: number, h: number, w: number, p: number, inverse: boolean): Storage {
    this.requireF32('patchify', x);
    const s = this.out(x.size, 'f32', 'patchify');
    this.run(patchify, { b, c, h, w, p, inverse }, [buf(x), s.gpu.buffer], groups(x.size));
    return s;
  }

  sumSquares(x: Storage, partial: Storage, slot: number): void {
    this.run(optim.sumSquares[this.kernels], { n: x.size, slot }, [buf(x), buf(partial)], 1);
  }

  clipCoef(partial: Storage, k: number, maxNorm: number, out: Storage): void {
    this.run(optim.clipCoef, { k, maxNorm }, [buf(partial), buf(out)], 1);
  }

  adamw(p: Storage, g: Storage, m: Storage, v: Storage, h: AdamWParams, coef?: Storage): void {
    const u = {
      n: p.size, lr: h.lr, b1: h.beta1, b2: h.beta2, omb1: 1 - h.beta1, omb2: 1 - h.beta2, eps: h.eps,
      decay: 1 - h.lr * h.weightDecay, bc1: 1 - h.beta1 ** h.step, bc2: 1 - h.beta2 ** h.step, hasCoef: !!coef,
    };
    this.run(optim.adamw, u, [buf(p), buf(g), buf(m), buf(v), buf(coef ?? this.dummy)], groups(p.size));
  }

  sgd(p: Storage, g: Storage, b: Storage | undefined, lr: number, momentum: number, weightDecay: number, coef?: Storage): void {
    const u = { n: p.size, lr, momentum, wd: weightDecay, hasCoef: !!coef, hasBuf: !!b };
    this.run(optim.sgd, u, [buf(p), buf(g), buf(b ?? this.dummyRW), buf(coef ?? this.dummy)], groups(p.size));
  }
}


