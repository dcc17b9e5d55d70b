/**
 * The fused chunked LM-head log-prob and entropy: logits arrive one vocabulary chunk [n, vc] at a
 * time (v0 its first id), so that a 49k vocabulary is never held whole. stats [n, 4] carries each
 * row's running (max, Σ e^(z-max), Σ e^(z-max)·z, target logit) across chunks; finish turns it into
 * (log p(target), entropy) and leaves logZ in stats[·, 0] for the backward.
 */
import { I, INDEX_1D, NEG_INF, REDUCE_FNS, ROW, ROW64, WG } from './common.js';
import { uniforms } from './uniforms.js';

/** invT is 1 / temperature. */
const CHUNK = uniforms({ n: 'u32', vc: 'u32', v0: 'u32', invT: 'f32' });
const CHUNK_IO = /* wgsl */ `
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;`;

/**
 * Merges one chunk's softmax statistics into stats: one workgroup per row ('gpu'), or one thread
 * per row with an online softmax (one pass, no barriers; 'software').
 */
export const chunk = {
  gpu: CHUNK.kernel(/* wgsl */ `${CHUNK_IO}
${REDUCE_FNS}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${ROW}
  if (row >= u.n) { return; }
  let base = row * u.vc;
  var mc = ${NEG_INF};
  for (var j = lid; j < u.vc; j = j + ${WG}u) { mc = max(mc, logits[base + j] * u.invT); }
  mc = wgMax(mc, lid);
  let m0 = stats[row * 4u];
  let m = max(m0, mc);
  var se = 0.0;
  var sz = 0.0;
  for (var j = lid; j < u.vc; j = j + ${WG}u) {
    let z = logits[base + j] * u.invT;
    let e = exp(z - m);
    se = se + e;
    sz = sz + e * z;
  }
  se = wgSum(se, lid);
  sz = wgSum(sz, lid);
  if (lid == 0u) {
    let c = exp(m0 - m);
    stats[row * 4u] = m;
    stats[row * 4u + 1u] = stats[row * 4u + 1u] * c + se;
    stats[row * 4u + 2u] = stats[row * 4u + 2u] * c + sz;
    let tg = targets[row] - i32(u.v0);
    if (tg >= 0 && u32(tg) < u.vc) { stats[row * 4u + 3u] = logits[base + u32(tg)] * u.invT; }
  }
}`),
  software: CHUNK.kernel(/* wgsl */ `${CHUNK_IO}
${ROW64}
  if (row >= u.n) { return; }
  let base = row * u.vc;
  var m = stats[row * 4u];
  var s = stats[row * 4u + 1u];
  var sz = stats[row * 4u + 2u];
  for (var j = 0u; j < u.vc; j = j + 1u) {
    let z = logits[base + j] * u.invT;
    if (z > m) {
      let c = exp(m - z);
      s = s * c;
      sz = sz * c;
      m = z;
    }
    let e = exp(z - m);
    s = s + e;
    sz = sz + e * z;
  }
  stats[row * 4u] = m;
  stats[row * 4u + 1u] = s;
  stats[row * 4u + 2u] = sz;
  let tg = targets[row] - i32(u.v0);
  if (tg >= 0 && u32(tg) < u.vc) { stats[row * 4u + 3u] = logits[base + u32(tg)] * u.invT; }
}`),
};

/** o [n, 2] = (log p(target), entropy); stats[·, 0] becomes logZ. */
export const finish = uniforms({ n: 'u32' }).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  let logZ = stats[i * 4u] + log(stats[i * 4u + 1u]);
  o[i * 2u] = stats[i * 4u + 3u] - logZ;
  o[i * 2u + 1u] = logZ - stats[i * 4u + 2u] / stats[i * 4u + 1u];
  stats[i * 4u] = logZ;
}`);

/** The chunk's dlogits from dlogp (dl) and dentropy (de), given finish's output and logZ. */
export const chunkGrad = CHUNK.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> out: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read> dl: array<f32>;
@group(0) @binding(6) var<storage, read> de: array<f32>;
@group(0) @binding(7) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n * u.vc) { return; }
  let r = i / u.vc;
  let j = i % u.vc;
  let logp = logits[i] * u.invT - stats[r * 4u];
  let p = exp(logp);
  let onehot = select(0.0, 1.0, targets[r] == i32(u.v0 + j));
  o[i] = (dl[r] * (onehot - p) - de[r] * p * (logp + out[r * 2u + 1u])) * u.invT;
}`);
