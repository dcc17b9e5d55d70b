/** Softmax over the last axis of [rows, n] with an optional keep-mask, and its backward. */
import { INDEX_1D, NEG_INF, REDUCE_FNS, ROW, ROW64, WG } from './common.js';
import { uniforms } from './uniforms.js';

const FWD = uniforms({ rows: 'u32', n: 'u32', hasMask: 'u32' });
const FWD_IO = /* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;`;
const KEEP = `fn keep(k: u32) -> bool { return u.hasMask == 0u || mask[k] != 0u; }`;

/** o = softmax(x) per row; masked entries (mask 0) and rows with nothing kept give 0. */
export const forward = {
  gpu: FWD.kernel(/* wgsl */ `${FWD_IO}
${REDUCE_FNS}
${KEEP}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${ROW}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  var m = ${NEG_INF};
  for (var j = lid; j < u.n; j = j + ${WG}u) { if (keep(base + j)) { m = max(m, x[base + j]); } }
  m = wgMax(m, lid);
  var s = 0.0;
  for (var j = lid; j < u.n; j = j + ${WG}u) { if (keep(base + j)) { s = s + exp(x[base + j] - m); } }
  s = wgSum(s, lid);
  for (var j = lid; j < u.n; j = j + ${WG}u) {
    var p = 0.0;
    if (keep(base + j) && s > 0.0) { p = exp(x[base + j] - m) / s; }
    o[base + j] = p;
  }
}`),
  software: FWD.kernel(/* wgsl */ `${FWD_IO}
${KEEP}
${ROW64}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  var m = ${NEG_INF};
  for (var j = 0u; j < u.n; j = j + 1u) { if (keep(base + j)) { m = max(m, x[base + j]); } }
  var s = 0.0;
  for (var j = 0u; j < u.n; j = j + 1u) { if (keep(base + j)) { s = s + exp(x[base + j] - m); } }
  for (var j = 0u; j < u.n; j = j + 1u) {
    var p = 0.0;
    if (keep(base + j) && s > 0.0) { p = exp(x[base + j] - m) / s; }
    o[base + j] = p;
  }
}`),
};

const BWD = uniforms({ rows: 'u32', n: 'u32' });
const BWD_IO = /* wgsl */ `
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;`;

/** dx = y · (dy - Σ y·dy) per row, from the forward's output y. */
export const backward = {
  gpu: BWD.kernel(/* wgsl */ `${BWD_IO}
${REDUCE_FNS}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${ROW}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  var d = 0.0;
  for (var j = lid; j < u.n; j = j + ${WG}u) { d = d + y[base + j] * dy[base + j]; }
  d = wgSum(d, lid);
  for (var j = lid; j < u.n; j = j + ${WG}u) { o[base + j] = y[base + j] * (dy[base + j] - d); }
}`),
  software: BWD.kernel(/* wgsl */ `${BWD_IO}
${ROW64}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  var d = 0.0;
  for (var j = 0u; j < u.n; j = j + 1u) { d = fma(y[base + j], dy[base + j], d); }
  for (var j = 0u; j < u.n; j = j + 1u) { o[base + j] = y[base + j] * (dy[base + j] - d); }
}`),
};
