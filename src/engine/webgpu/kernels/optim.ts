/** The optimizers' kernels: global grad-norm clipping (sum of squares, clip coefficient), AdamW and SGD. */
import { I, INDEX_1D, REDUCE_FNS, WG } from './common.js';
import { uniforms } from './uniforms.js';

const SUM_SQUARES = uniforms({ n: 'u32', slot: 'u32' });

/**
 * partial[slot] += Σ x² in one workgroup (dispatched once per tensor): a tree reduction over 256
 * threads ('gpu'), or 64 strided partial sums and a single barrier ('software').
 */
export const sumSquares = {
  gpu: SUM_SQUARES.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
${REDUCE_FNS}
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var j = lid; j < u.n; j = j + ${WG}u) { s = fma(x[j], x[j], s); }
  s = wgSum(s, lid);
  if (lid == 0u) { partial[u.slot] = partial[u.slot] + s; }
}`),
  software: SUM_SQUARES.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var j = lid; j < u.n; j = j + 64u) { s = fma(x[j], x[j], s); }
  part[lid] = s;
  workgroupBarrier();
  if (lid == 0u) {
    var t = 0.0;
    for (var i = 0u; i < 64u; i = i + 1u) { t = t + part[i]; }
    partial[u.slot] = partial[u.slot] + t;
  }
}`),
};

/** o = (global norm, min(1, maxNorm / norm)) from the k partial sums; AdamW and SGD scale gradients by o[1]. */
export const clipCoef = uniforms({ k: 'u32', maxNorm: 'f32' }).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(1) fn main() {
  var s = 0.0;
  for (var j = 0u; j < u.k; j = j + 1u) { s = s + partial[j]; }
  let norm = sqrt(s);
  o[0] = norm;
  o[1] = min(1.0, u.maxNorm / (norm + 1e-6));
}`);

/** omb1 / omb2 are 1 - beta, decay 1 - lr·weightDecay, bc1 / bc2 the bias corrections 1 - beta^step. */
export const adamw = uniforms({
  n: 'u32', lr: 'f32', b1: 'f32', b2: 'f32', omb1: 'f32', omb2: 'f32', eps: 'f32', decay: 'f32', bc1: 'f32', bc2: 'f32', hasCoef: 'u32',
}).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> coef: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  var gi = g[i];
  if (u.hasCoef == 1u) { gi = gi * coef[1]; }
  // 1 - beta and the bias corrections arrive precomputed in float64: 1 - 0.999 in f32 loses 4 digits.
  let mi = u.b1 * m[i] + u.omb1 * gi;
  let vi = u.b2 * v[i] + u.omb2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] * u.decay - u.lr * (mi / u.bc1) / (sqrt(vi / u.bc2) + u.eps);
}`);

/** SGD with optional momentum buffer (hasBuf) and weight decay added to the gradient. */
export const sgd = uniforms({ n: 'u32', lr: 'f32', momentum: 'f32', wd: 'f32', hasCoef: 'u32', hasBuf: 'u32' }).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> buf: array<f32>;
@group(0) @binding(4) var<storage, read> coef: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  var gi = g[i];
  if (u.hasCoef == 1u) { gi = gi * coef[1]; }
  gi = gi + u.wd * p[i];
  if (u.hasBuf == 1u) {
    let bi = u.momentum * buf[i] + gi;
    buf[i] = bi;
    gi = bi;
  }
  p[i] = p[i] - u.lr * gi;
}`);
