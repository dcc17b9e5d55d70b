/** Memory kernels on 32-bit words: strided copy (every layout change), splat, fill and dtype casts. */
import type { DType } from '../../dtype.js';
import { I, INDEX_1D, STRIDED, WG } from './common.js';
import { uniforms } from './uniforms.js';

/** Bit-exact strided copy of 32-bit elements (any 4-byte dtype). */
export const copy = uniforms({ shape: 'arr8', ss: 'arr8', ds: 'arr8', rank: 'u32', n: 'u32', soff: 'u32', doff: 'u32' }).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  ${STRIDED('ss', 'ds')}
  o[u.doff + ib] = a[u.soff + ia];
}`);

/**
 * copy for a copy that repeats one element into a row-major destination (the backward of a sum or
 * mean over everything broadcasts one value): no per-element index decomposition, whose integer
 * divisions dominate on software adapters.
 */
export const splat = uniforms({ n: 'u32', soff: 'u32', doff: 'u32' }).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  o[u.doff + i] = a[u.soff];
}`);

/** Fills n 32-bit words with a bit pattern (f32, i32, u32, or two packed f16). */
export const fill = uniforms({ n: 'u32', bits: 'u32' }).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  o[i] = u.bits;
}`);

const CAST = uniforms({ n: 'u32' });

/** Casts between dtypes; f16 is two halves per u32 word (WGSL core pack2x16float, no shader-f16 needed). */
export function cast(from: DType, to: DType) {
  const read =
    from === 'f16' ? 'unpack2x16float(a[j / 2u])[j % 2u]' : from === 'f32' ? 'bitcast<f32>(a[j])' : from === 'i32' ? 'f32(bitcast<i32>(a[j]))' : 'f32(a[j])';
  const body =
    to === 'f16'
      ? `let j0 = 2u * i; var lo = 0.0; var hi = 0.0;
  { let j = j0; lo = ${read}; }
  if (j0 + 1u < u.n) { let j = j0 + 1u; hi = ${read}; }
  o[i] = pack2x16float(vec2<f32>(lo, hi));`
      : `let j = i; let v = ${read};
  o[i] = ${to === 'f32' ? 'bitcast<u32>(v)' : to === 'i32' ? 'bitcast<u32>(i32(v))' : 'u32(v)'};`;
  const count = to === 'f16' ? '(u.n + 1u) / 2u' : 'u.n';
  return CAST.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= ${count}) { return; }
  ${body}
}`);
}
