/** indexSelect / embedding along the middle axis of [outer, dim, inner], and its scatter-add backward. */
import { I, INDEX_1D, WG } from './common.js';
import { uniforms } from './uniforms.js';

/** n is the number of ids. */
const U = uniforms({ outer: 'u32', dim: 'u32', inner: 'u32', n: 'u32' });

/** out[a, j, c] = x[a, ids[j], c] (bit copy); out-of-range ids give 0. */
export const gather = U.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.outer * u.n * u.inner) { return; }
  let c = i % u.inner;
  let j = (i / u.inner) % u.n;
  let a = i / (u.inner * u.n);
  let r = ids[j];
  if (r < 0 || u32(r) >= u.dim) { o[i] = 0u; return; }
  o[i] = x[(a * u.dim + u32(r)) * u.inner + c];
}`);

/** dx[a, ids[j], c] += dy[a, j, c]: one thread per (a, c) walks j in order (deterministic, no atomics). */
export const scatterAdd = U.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.outer * u.inner) { return; }
  let a = i / u.inner;
  let c = i % u.inner;
  for (var j = 0u; j < u.n; j = j + 1u) {
    let r = ids[j];
    if (r < 0 || u32(r) >= u.dim) { continue; }
    let idx = (a * u.dim + u32(r)) * u.inner + c;
    o[idx] = o[idx] + dy[(a * u.n + j) * u.inner + c];
  }
}`);
