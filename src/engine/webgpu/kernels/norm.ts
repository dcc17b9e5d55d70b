/**
 * RMSNorm and LayerNorm over the last axis of [rows, n]; `layer` adds mean-centering and a bias.
 * stats holds rstd per row (RMSNorm) or interleaved (mean, rstd) pairs (LayerNorm).
 */
import { I, INDEX_1D, REDUCE_FNS, ROW, ROW64, WG } from './common.js';
import { uniforms } from './uniforms.js';

const FWD = uniforms({ rows: 'u32', n: 'u32', eps: 'f32' });
const fwdIO = (layer: boolean) => /* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
${layer ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${layer ? 4 : 3}) var<storage, read_write> y: array<f32>;
@group(0) @binding(${layer ? 5 : 4}) var<storage, read_write> stats: array<f32>;`;

/** y and stats: one workgroup per row ('gpu') or one thread per row ('software'). */
export const forward = {
  gpu: (layer: boolean) =>
    FWD.kernel(/* wgsl */ `${fwdIO(layer)}
${REDUCE_FNS}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${ROW}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  var mu = 0.0;
  ${layer ? `for (var j = lid; j < u.n; j = j + ${WG}u) { mu = mu + x[base + j]; }
  mu = wgSum(mu, lid) / f32(u.n);` : ''}
  var ss = 0.0;
  for (var j = lid; j < u.n; j = j + ${WG}u) { let c = x[base + j] - mu; ss = ss + c * c; }
  let rs = inverseSqrt(wgSum(ss, lid) / f32(u.n) + u.eps);
  for (var j = lid; j < u.n; j = j + ${WG}u) {
    y[base + j] = (x[base + j] - mu) * rs * w[j]${layer ? ' + bias[j]' : ''};
  }
  if (lid == 0u) {
    ${layer ? 'stats[row * 2u] = mu; stats[row * 2u + 1u] = rs;' : 'stats[row] = rs;'}
  }
}`),
  software: (layer: boolean) =>
    FWD.kernel(/* wgsl */ `${fwdIO(layer)}
${ROW64}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  var mu = 0.0;
  ${layer ? `for (var j = 0u; j < u.n; j = j + 1u) { mu = mu + x[base + j]; }
  mu = mu / f32(u.n);` : ''}
  var ss = 0.0;
  for (var j = 0u; j < u.n; j = j + 1u) { let c = x[base + j] - mu; ss = fma(c, c, ss); }
  let rs = inverseSqrt(ss / f32(u.n) + u.eps);
  for (var j = 0u; j < u.n; j = j + 1u) { y[base + j] = (x[base + j] - mu) * rs * w[j]${layer ? ' + bias[j]' : ''}; }
  ${layer ? 'stats[row * 2u] = mu; stats[row * 2u + 1u] = rs;' : 'stats[row] = rs;'}
}`),
};

const BWD = uniforms({ rows: 'u32', n: 'u32' });
const BWD_IO = /* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;`;

/** dx from the forward's stats: one workgroup per row ('gpu') or one thread per row ('software'). */
export const backward = {
  gpu: (layer: boolean) =>
    BWD.kernel(/* wgsl */ `${BWD_IO}
${REDUCE_FNS}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${ROW}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  let mu = ${layer ? 'stats[row * 2u]' : '0.0'};
  let rs = ${layer ? 'stats[row * 2u + 1u]' : 'stats[row]'};
  var s1 = 0.0;
  var s2 = 0.0;
  for (var j = lid; j < u.n; j = j + ${WG}u) {
    let gw = dy[base + j] * w[j];
    s1 = s1 + gw;
    s2 = s2 + gw * (x[base + j] - mu) * rs;
  }
  ${layer ? 's1 = wgSum(s1, lid) / f32(u.n);' : ''}
  s2 = wgSum(s2, lid) / f32(u.n);
  for (var j = lid; j < u.n; j = j + ${WG}u) {
    let xhat = (x[base + j] - mu) * rs;
    dx[base + j] = rs * (dy[base + j] * w[j] ${layer ? '- s1 ' : ''}- xhat * s2);
  }
}`),
  software: (layer: boolean) =>
    BWD.kernel(/* wgsl */ `${BWD_IO}
${ROW64}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  let mu = ${layer ? 'stats[row * 2u]' : '0.0'};
  let rs = ${layer ? 'stats[row * 2u + 1u]' : 'stats[row]'};
  var s1 = 0.0;
  var s2 = 0.0;
  for (var j = 0u; j < u.n; j = j + 1u) {
    let gw = dy[base + j] * w[j];
    s1 = s1 + gw;
    s2 = fma(gw, (x[base + j] - mu) * rs, s2);
  }
  s1 = ${layer ? 's1 / f32(u.n)' : '0.0'};
  s2 = s2 / f32(u.n);
  for (var j = 0u; j < u.n; j = j + 1u) {
    let xhat = (x[base + j] - mu) * rs;
    dx[base + j] = rs * (dy[base + j] * w[j] - s1 - xhat * s2);
  }
}`),
};

/** dw (and db) of a norm: one thread per column sums over rows (both families). */
export const paramGrad = (layer: boolean) =>
  BWD.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;
${layer ? '@group(0) @binding(5) var<storage, read_write> db: array<f32>;' : ''}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  var sw = 0.0;
  var sb = 0.0;
  for (var r = 0u; r < u.rows; r = r + 1u) {
    let g = dy[r * u.n + i];
    ${layer ? 'sw = sw + g * (x[r * u.n + i] - stats[r * 2u]) * stats[r * 2u + 1u]; sb = sb + g;' : 'sw = sw + g * x[r * u.n + i] * stats[r];'}
  }
  dw[i] = sw;
  ${layer ? 'db[i] = sb;' : ''}
}`);
