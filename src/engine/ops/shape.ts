/**
 * Shape ops: broadcasting, permute, slice, concat, index-select, patchify, cast. Tensors are always
 * contiguous, so each op except reshape is one strided-copy (or gather) kernel; backward is the
 * adjoint copy.
 */
import type { CopyParams } from '../backend.js';
import { contiguousStrides, numel, type DType } from '../dtype.js';
import { isGradEnabled, record, Tensor } from '../tensor.js';

/** Wraps a fresh storage as a tensor. */
export const wrap = (storage: Tensor['storage'], shape: readonly number[]) => new Tensor(storage, shape);

function checkAxis(x: Tensor, axis: number, op: string): number {
  const a = axis < 0 ? axis + x.rank : axis;
  if (a < 0 || a >= x.rank) throw new Error(`${op}: axis ${axis} out of range for ${x.describe()}`);
  return a;
}

/** Numpy broadcasting of two shapes. @throws naming both shapes when incompatible. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together`);
    out.push(Math.max(da, db));
  }
  return out;
}

/** Element strides for reading a tensor of `shape` as if broadcast to `target` (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const s = contiguousStrides(shape);
  const off = target.length - shape.length;
  return target.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : s[i - off]));
}

/** Sums `g` down to `shape` (the adjoint of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.join() === shape.join()) return g;
  const off = g.rank - shape.length;
  let cur = g;
  const curShape = [...g.shape];
  for (let i = 0; i < g.rank; i++) {
    const target = i < off ? 1 : shape[i - off];
    if (target === 1 && curShape[i] !== 1) {
      const outer = numel(curShape.slice(0, i));
      const inner = numel(curShape.slice(i + 1));
      const n = curShape[i];
      curShape[i] = 1;
      cur = wrap(g.backend.reduce('sum', cur.storage, outer, n, inner), curShape);
    }
  }
  return cur.reshape(shape);
}

/** Copies x broadcast to `shape` (stride-0 reads). Backward sums over the broadcast dims. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  x.assertAlive();
  const target = broadcastShapes(x.shape, shape);
  if (target.join() !== shape.join()) throw new Error(`broadcastTo: ${x.describe()} cannot be broadcast to [${shape.join(', ')}]`);
  const p: CopyParams = { shape: [...shape], srcStrides: broadcastStrides(x.shape, shape), srcOffset: 0, dstStrides: contiguousStrides(shape), dstOffset: 0 };
  const out = wrap(x.backend.copy(x.storage, p), shape);
  record('broadcastTo', [x], [out], ([g]) => [g && sumTo(g, x.shape)]);
  return out;
}

/** Reorders axes (a copy). `perm[i]` is the input axis that becomes output axis i. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  x.assertAlive();
  if (perm.length !== x.rank || [...perm].sort().some((v, i) => v !== i)) throw new Error(`permute: [${perm.join(', ')}] is not a permutation of ${x.rank} axes of ${x.describe()}`);
  const inStrides = contiguousStrides(x.shape);
  const shape = perm.map((p) => x.shape[p]);
  const out = wrap(x.backend.copy(x.storage, { shape, srcStrides: perm.map((p) => inStrides[p]), srcOffset: 0, dstStrides: contiguousStrides(shape), dstOffset: 0 }), shape);
  const inv = perm.map((_, i) => perm.indexOf(i));
  record('permute', [x], [out], ([g]) => [g && permute(g, inv)]);
  return out;
}

/** Swaps two axes. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = [...x.shape.keys()];
  const i = checkAxis(x, a, 'transpose'), j = checkAxis(x, b, 'transpose');
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** Copies the region [start, start+length) of `axis`. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  x.assertAlive();
  const a = checkAxis(x, axis, 'narrow');
  if (start < 0 || length < 0 || start + length > x.shape[a]) throw new Error(`narrow: [${start}, ${start + length}) is outside axis ${a} (size ${x.shape[a]}) of ${x.describe()}`);
  const strides = contiguousStrides(x.shape);
  const shape = [...x.shape];
  shape[a] = length;
  const out = wrap(x.backend.copy(x.storage, { shape, srcStrides: strides, srcOffset: start * strides[a], dstStrides: contiguousStrides(shape), dstOffset: 0 }), shape);
  record('narrow', [x], [out], ([g]) => {
    if (!g) return [null];
    const dx = wrap(x.backend.fill(x.size, 0, 'f32'), x.shape);
    x.backend.copy(g.storage, { shape, srcStrides: contiguousStrides(shape), srcOffset: 0, dstStrides: strides, dstOffset: start * strides[a] }, dx.storage);
    return [dx];
  });
  return out;
}

/** Concatenates along `axis`; all other dims must match. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  const a = checkAxis(xs[0], axis, 'concat');
  const shape = [...xs[0].shape];
  shape[a] = 0;
  for (const x of xs) {
    x.assertAlive();
    if (x.rank !== shape.length || x.shape.some((d, i) => i !== a && d !== shape[i]) || x.dtype !== xs[0].dtype)
      throw new Error(`concat: ${x.describe()} does not match ${xs[0].describe()} outside axis ${a}`);
    shape[a] += x.shape[a];
  }
  const be = xs[0].backend;
  const dstStrides = contiguousStrides(shape);
  const out = wrap(be.alloc(numel(shape), xs[0].dtype), shape);
  let off = 0;
  const offsets: number[] = [];
  for (const x of xs) {
    offsets.push(off);
    be.copy(x.storage, { shape: [...x.shape], srcStrides: contiguousStrides(x.shape), srcOffset: 0, dstStrides, dstOffset: off * dstStrides[a] }, out.storage);
    off += x.shape[a];
  }
  record('concat', xs, [out], ([g]) => xs.map((x, i) => g && narrow(g, a, offsets[i], x.shape[a])));
  return out;
}

/** Picks entries of `axis` by integer ids [n] (i32): out shape has n at `axis`. Backward scatter-adds. */
export function indexSelect(x: Tensor, axis: number, ids: Tensor): Tensor {
  x.assertAlive();
  ids.assertAlive();
  if (ids.dtype !== 'i32' && ids.dtype !== 'u32') throw new Error(`indexSelect: ids must be i32 or u32, got ${ids.describe()}`);
  const a = checkAxis(x, axis, 'indexSelect');
  const outer = numel(x.shape.slice(0, a)), dim = x.shape[a], inner = numel(x.shape.slice(a + 1));
  const shape = [...x.shape.slice(0, a), ids.size, ...x.shape.slice(a + 1)];
  const out = wrap(x.backend.gather(x.storage, ids.storage, outer, dim, inner), shape);
  record('indexSelect', [x], [out], ([g]) => [g && wrap(x.backend.scatterAdd(g.storage, ids.storage, outer, dim, inner), x.shape)]);
  return out;
}

/**
 * Image [B, C, H, W] -> patches [B, (H/p)(W/p), C·p·p], each patch flattened in (C, py, px) order so
 * that `patches @ W.reshape(out, C·p·p)^T` equals a stride-p Conv2d with weight W [out, C, p, p]
 * (ViT / SigLIP patch embedding). @throws when H or W is not a multiple of p.
 */
export function patchify(x: Tensor, p: number): Tensor {
  x.assertAlive();
  if (x.rank !== 4) throw new Error(`patchify: expected [B, C, H, W], got ${x.describe()}`);
  const [b, c, h, w] = x.shape;
  if (h % p || w % p) throw new Error(`patchify: image ${h}x${w} of ${x.describe()} is not a multiple of patch size ${p}`);
  const shape = [b, (h / p) * (w / p), c * p * p];
  const out = wrap(x.backend.patchify(x.storage, b, c, h, w, p, false), shape);
  record('patchify', [x], [out], ([g]) => [g && wrap(x.backend.patchify(g.storage, b, c, h, w, p, true), x.shape)]);
  return out;
}

/** Converts dtype (f32 <-> f16 storage, ints <-> float). Gradient passes through float casts. */
export function cast(x: Tensor, dtype: DType): Tensor {
  x.assertAlive();
  if (x.dtype === dtype) return x;
  const out = wrap(x.backend.cast(x.storage, dtype), x.shape);
  record('cast', [x], [out], ([g]) => [g && cast(g, 'f32')]);
  return out;
}

/** A copy of x (a new storage). */
export function clone(x: Tensor): Tensor {
  x.assertAlive();
  const s = contiguousStrides(x.shape);
  const out = wrap(x.backend.copy(x.storage, { shape: [...x.shape], srcStrides: s, srcOffset: 0, dstStrides: s, dstOffset: 0 }), x.shape);
  record('clone', [x], [out], ([g]) => [g]);
  return out;
}

/**
 * Writes src into dst along `axis` starting at `start`, in place (e.g. new keys into a KV cache).
 * Not recorded for autograd: dst is a buffer, not a function of src.
 * @throws when shapes disagree outside `axis`, the region overflows, or src requires grad while recording
 */
export function writeSlice(dst: Tensor, src: Tensor, axis: number, start: number): void {
  dst.assertAlive();
  src.assertAlive();
  const a = checkAxis(dst, axis, 'writeSlice');
  if (src.rank !== dst.rank || src.shape.some((d, i) => i !== a && d !== dst.shape[i]) || src.dtype !== dst.dtype)
    throw new Error(`writeSlice: ${src.describe()} does not fit ${dst.describe()} outside axis ${a}`);
  if (start < 0 || start + src.shape[a] > dst.shape[a]) throw new Error(`writeSlice: [${start}, ${start + src.shape[a]}) overflows axis ${a} of ${dst.describe()}`);
  if (src.requiresGrad && isGradEnabled()) throw new Error(`writeSlice: ${src.describe()} requires grad; caches are written under noGrad()`);
  const ds = contiguousStrides(dst.shape);
  dst.backend.copy(src.storage, { shape: [...src.shape], srcStrides: contiguousStrides(src.shape), srcOffset: 0, dstStrides: ds, dstOffset: start * ds[a] }, dst.storage);
}
