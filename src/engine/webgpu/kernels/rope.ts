/**
 * Rotary embedding, HF rotate_half pairs (i, i + D/2); one thread per pair. cos/sin come from a
 * table [maxPos, D/2, 2] computed on the host in float64 (WGSL sin/cos lose accuracy for large
 * angles); positions outside the table leave x unrotated. The backward is the inverse rotation
 * (sign -1).
 */
import { I, INDEX_1D, WG } from './common.js';
import { uniforms } from './uniforms.js';

export const rope = uniforms({ b: 'u32', t: 'u32', h: 'u32', d: 'u32', maxPos: 'u32', sign: 'f32' }).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read> table: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  let half = u.d / 2u;
  if (i >= u.b * u.t * u.h * half) { return; }
  let k = i % half;
  let bth = i / half;
  let bt = bth / u.h;
  let base = bth * u.d;
  let p = pos[bt];
  var c = 1.0;
  var s = 0.0;
  if (p >= 0 && u32(p) < u.maxPos) {
    c = table[(u32(p) * half + k) * 2u];
    s = u.sign * table[(u32(p) * half + k) * 2u + 1u];
  }
  let x1 = x[base + k];
  let x2 = x[base + k + half];
  o[base + k] = x1 * c - x2 * s;
  o[base + k + half] = x2 * c + x1 * s;
}`);

