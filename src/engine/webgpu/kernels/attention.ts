/**
 * Fused causal / GQA attention with a key padding mask and a KV-cache offset (query t sits at key
 * t + qOffset), never holding the [T x S] score matrix: the forward writes o and each row's
 * log-sum-exp; the backward recomputes probabilities from it (delta, then dq and dk/dv). Three
 * variants of each kernel, picked by the backend: 'scalar' (one thread per row, any head_dim),
 * 'vec4' (software adapters, head_dim a multiple of 4) and 'subgroup' (4-lane subgroups, head_dim
 * a multiple of 4).
 */
import { I, INDEX_1D, NEG_INF, WG, range } from './common.js';
import { uniforms } from './uniforms.js';

/** AttentionParams' fields (the backend passes them whole) and whether a key mask is bound. */
const ATTN = uniforms({
  batch: 'u32', t: 'u32', s: 'u32', sMax: 'u32', hq: 'u32', hkv: 'u32', scale: 'f32', causal: 'u32', qOffset: 'u32', hasMask: 'u32',
});
const DELTA = uniforms({ rows: 'u32' });

/** Keys a query row may see: causal limit and padding mask. */
const ATTN_VISIBLE = /* wgsl */ `
fn visible(b: u32, t: u32, s: u32) -> bool {
  if (u.causal == 1u && s > t + u.qOffset) { return false; }
  return u.hasMask == 0u || mask[b * u.sMax + s] != 0u;
}`;

/** Entry point of the 64-thread 1-D kernels: sets `i`, the invocation's global index. */
const MAIN64 = `@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;`;

/** Bindings 1-6 shared by the attention backward kernels (q, k, v, dO as `elem` rows; rowstats; key mask). */
const ATTN_BWD_INPUTS = (elem: string) => `@group(0) @binding(1) var<storage, read> q: array<${elem}>;
@group(0) @binding(2) var<storage, read> k: array<${elem}>;
@group(0) @binding(3) var<storage, read> v: array<${elem}>;
@group(0) @binding(4) var<storage, read> dO: array<${elem}>;
@group(0) @binding(5) var<storage, read> rs: array<f32>;
@group(0) @binding(6) var<storage, read> mask: array<u32>;`;

/** `Σ_j dot(x_j, y_j)` over head_dim/4 vec4 pairs, as four independent partial sums (shorter dependency chains). */
const dot4 = (n: number, x: (j: number) => string, y: (j: number) => string) => {
  const parts = range(Math.min(4, n)).map((p) => range(n).filter((j) => j % 4 === p).map((j) => `dot(${x(j)}, ${y(j)})`).join(' + '));
  return parts.map((s) => `(${s})`).join(' + ');
};
const ATTN_VEC4_MAIN = `@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32)`;
/** Keys [0, sEnd) a query row at t may see (causal limit; the padding mask is checked per key). */
const ATTN_SEND = `var sEnd = u.s;
  if (u.causal == 1u) { sEnd = min(sEnd, t + u.qOffset + 1u); }`;

/*
 * Attention for software adapters whose subgroups are their 4-wide SIMD groups (SwiftShader). The
 * vec4 kernels give each lane its own query row and load every key and value row 4 times per
 * subgroup, one gather per element; here a subgroup's 4 lanes work on the same rows, lane l holding
 * dims [l·D/4, (l+1)·D/4) of each, so every row is loaded once (D/4 gathers per lane) and dot
 * products are finished with subgroupAdd. A subgroup serves 4 query rows (forward, dq) or 4 keys
 * (dk, dv) at a time; 1.4-1.9x faster than the vec4 kernels on SwiftShader (worker CPU time).
 * Loop bounds are per subgroup (uniform across its lanes), hence subgroup_uniformity is off.
 */
const ATTN_SG = 4;
const ATTN_SG_DIRECTIVES = `enable subgroups;
diagnostic(off, subgroup_uniformity);`;
const ATTN_SG_MAIN = `@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32)`;
/** Subgroup index `sg` and the block (b, head, first row) it serves, over rows `n` of `heads` heads. */
const attnSgBlock = (n: string, heads: string) => `let sg = (wid.y * nwg.x + wid.x) * 16u + lid / 4u;
  let nBlocks = (${n} + ${ATTN_SG - 1}u) / ${ATTN_SG}u;
  if (sg >= u.batch * ${heads} * nBlocks) { return; }
  let r0 = (sg % nBlocks) * ${ATTN_SG}u;
  let head = (sg / nBlocks) % ${heads};
  let b = sg / (nBlocks * ${heads});`;
/** `Σ_x x·y` over the lane's D/4 dims, summed over the subgroup. */
const sgDot = (n: number, x: (i: number) => string, y: (i: number) => string) => `subgroupAdd(${range(n).map((i) => `${x(i)} * ${y(i)}`).join(' + ')})`;

/**
 * Opening of the key loop of the subgroup attention forward and dq kernels: keys up to the causal limit
 * of the block's last query row, padding skipped, this lane's quarter of the key and value rows
 * loaded into k0.. and v0.. (the loop body and its closing brace follow).
 */
function sgKeyLoop(d: number): string {
  const X = range(d / 4);
  return `var sEnd = u.s;
  if (u.causal == 1u) { sEnd = min(sEnd, min(r0 + ${ATTN_SG - 1}u, u.t - 1u) + u.qOffset + 1u); }
  for (var s = 0u; s < sEnd; s = s + 1u) {
    if (u.hasMask == 1u && mask[b * u.sMax + s] == 0u) { continue; }
    let kb = ((b * u.sMax + s) * u.hkv + kh) * ${d}u + d0;
    ${X.map((x) => `let k${x} = k[kb + ${x}u];`).join(' ')}
    ${X.map((x) => `let v${x} = v[kb + ${x}u];`).join(' ')}`;
}

/** o and lse (bindings q, k, v, mask, o, lse). */
export const forward = {
  /**
   * Attention forward, one thread per (b, t, h) query row with an online softmax over keys (no score
   * matrix in memory). Writes o and the row's log-sum-exp (3e38 for a row with no visible key).
   */
  scalar(d: number) {
    return ATTN.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
${ATTN_VISIBLE}
${MAIN64}
  if (i >= u.batch * u.t * u.hq) { return; }
  let h = i % u.hq;
  let t = (i / u.hq) % u.t;
  let b = i / (u.hq * u.t);
  let kh = h / (u.hq / u.hkv);
  let qb = i * ${d}u;
  var qv: array<f32, ${d}>;
  var acc: array<f32, ${d}>;
  for (var e = 0u; e < ${d}u; e = e + 1u) { qv[e] = q[qb + e] * u.scale; }
  var m = ${NEG_INF};
  var l = 0.0;
  for (var s = 0u; s < u.s; s = s + 1u) {
    if (!visible(b, t, s)) { continue; }
    let kb = ((b * u.sMax + s) * u.hkv + kh) * ${d}u;
    var sc = 0.0;
    for (var e = 0u; e < ${d}u; e = e + 1u) { sc = fma(qv[e], k[kb + e], sc); }
    let mn = max(m, sc);
    let corr = exp(m - mn);
    let p = exp(sc - mn);
    l = l * corr + p;
    for (var e = 0u; e < ${d}u; e = e + 1u) { acc[e] = fma(p, v[kb + e], acc[e] * corr); }
    m = mn;
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var e = 0u; e < ${d}u; e = e + 1u) { o[qb + e] = acc[e] * inv; }
  lse[i] = select(3.0e38, m + log(l), l > 0.0);
}`);
  },
  /**
   * Attention forward for software adapters (SwiftShader), head_dim a multiple of 4: as
   * scalar (one thread per (b, t, h) row, online softmax) with q, k, v, o read as vec4 and
   * the row held in head_dim/4 vec4 registers instead of dynamically indexed private arrays, no
   * workgroup memory, and the causal limit as the loop bound.
   */
  vec4(d: number) {
    const J = range(d / 4);
    return ATTN.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
${ATTN_VEC4_MAIN} {
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= u.batch * u.t * u.hq) { return; }
  let h = i % u.hq;
  let t = (i / u.hq) % u.t;
  let b = i / (u.hq * u.t);
  let kh = h / (u.hq / u.hkv);
  let qb = i * ${d / 4}u;
  ${J.map((j) => `let q${j} = q[qb + ${j}u] * u.scale;`).join(' ')}
  ${J.map((j) => `var a${j} = vec4<f32>(0.0);`).join(' ')}
  var m = ${NEG_INF};
  var l = 0.0;
  ${ATTN_SEND}
  for (var s = 0u; s < sEnd; s = s + 1u) {
    if (u.hasMask == 1u && mask[b * u.sMax + s] == 0u) { continue; }
    let kb = ((b * u.sMax + s) * u.hkv + kh) * ${d / 4}u;
    let sc = ${dot4(d / 4, (j) => `q${j}`, (j) => `k[kb + ${j}u]`)};
    let mn = max(m, sc);
    let corr = exp(m - mn);
    let p = exp(sc - mn);
    l = l * corr + p;
    ${J.map((j) => `a${j} = fma(vec4<f32>(p), v[kb + ${j}u], a${j} * corr);`).join('\n    ')}
    m = mn;
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  ${J.map((j) => `o[qb + ${j}u] = a${j} * inv;`).join(' ')}
  lse[i] = select(3.0e38, m + log(l), l > 0.0);
}`);
  },
  /** vec4 for 4-lane subgroups (same bindings and outputs); head_dim a multiple of 4. */
  subgroup(d: number) {
    const S = d / 4, X = range(S), J = range(ATTN_SG);
    return ATTN.kernel(
      /* wgsl */ `
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
${ATTN_SG_MAIN} {
  ${attnSgBlock('u.t', 'u.hq')}
  let kh = head / (u.hq / u.hkv);
  let d0 = lane * ${S}u;
  ${J.map((j) => `let t${j} = r0 + ${j}u; let qb${j} = ((b * u.t + min(t${j}, u.t - 1u)) * u.hq + head) * ${d}u + d0;
  ${X.map((x) => `let q${j}_${x} = q[qb${j} + ${x}u] * u.scale;`).join(' ')}
  ${X.map((x) => `var a${j}_${x} = 0.0;`).join(' ')}
  var m${j} = ${NEG_INF};
  var l${j} = 0.0;`).join('\n  ')}
  ${sgKeyLoop(d)}
    ${J.map((j) => `{
      let sc = ${sgDot(S, (x) => `q${j}_${x}`, (x) => `k${x}`)};
      let vis = u.causal == 0u || s <= t${j} + u.qOffset;
      let mn = select(m${j}, max(m${j}, sc), vis);
      let corr = exp(m${j} - mn);
      let p = select(0.0, exp(sc - mn), vis);
      l${j} = l${j} * corr + p;
      ${X.map((x) => `a${j}_${x} = fma(p, v${x}, a${j}_${x} * corr);`).join(' ')}
      m${j} = mn;
    }`).join('\n    ')}
  }
  ${J.map((j) => `if (t${j} < u.t) {
    let inv = select(0.0, 1.0 / l${j}, l${j} > 0.0);
    ${X.map((x) => `o[qb${j} + ${x}u] = a${j}_${x} * inv;`).join(' ')}
    if (lane == 0u) { lse[(b * u.t + t${j}) * u.hq + head] = select(3.0e38, m${j} + log(l${j}), l${j} > 0.0); }
  }`).join('\n  ')}
}`,
      ATTN_SG_DIRECTIVES,
    );
  },
};

/** Per query row: rowstat = (lse, Σ dO·O), the "delta" term of the softmax backward. */
export const delta = {
  /** One thread per row, 256 per workgroup. */
  scalar(d: number) {
    return DELTA.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> dO: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> rs: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.rows) { return; }
  var acc = 0.0;
  for (var e = 0u; e < ${d}u; e = e + 1u) { acc = fma(o[i * ${d}u + e], dO[i * ${d}u + e], acc); }
  rs[2u * i] = lse[i];
  rs[2u * i + 1u] = acc;
}`);
  },
  /** scalar for software adapters: vec4 rows (head_dim a multiple of 4), 64 threads. */
  vec4(d: number) {
    return DELTA.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> o: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dO: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> rs: array<f32>;
${ATTN_VEC4_MAIN} {
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= u.rows) { return; }
  let b = i * ${d / 4}u;
  rs[2u * i] = lse[i];
  rs[2u * i + 1u] = ${dot4(d / 4, (j) => `o[b + ${j}u]`, (j) => `dO[b + ${j}u]`)};
}`);
  },
};

/** dq (bindings q, k, v, dO, rowstats, mask, dq). */
export const dq = {
  /** dq: one thread per query row; probabilities recomputed from the saved log-sum-exp. */
  scalar(d: number) {
    return ATTN.kernel(/* wgsl */ `
${ATTN_BWD_INPUTS('f32')}
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
${ATTN_VISIBLE}
${MAIN64}
  if (i >= u.batch * u.t * u.hq) { return; }
  let h = i % u.hq;
  let t = (i / u.hq) % u.t;
  let b = i / (u.hq * u.t);
  let kh = h / (u.hq / u.hkv);
  let qb = i * ${d}u;
  let lse = rs[2u * i];
  let delta = rs[2u * i + 1u];
  var qv: array<f32, ${d}>;
  var gv: array<f32, ${d}>;
  var acc: array<f32, ${d}>;
  for (var e = 0u; e < ${d}u; e = e + 1u) { qv[e] = q[qb + e]; gv[e] = dO[qb + e]; }
  for (var s = 0u; s < u.s; s = s + 1u) {
    if (!visible(b, t, s)) { continue; }
    let kb = ((b * u.sMax + s) * u.hkv + kh) * ${d}u;
    var sc = 0.0;
    var dp = 0.0;
    for (var e = 0u; e < ${d}u; e = e + 1u) { sc = fma(qv[e], k[kb + e], sc); dp = fma(gv[e], v[kb + e], dp); }
    let p = exp(sc * u.scale - lse);
    let ds = p * (dp - delta) * u.scale;
    for (var e = 0u; e < ${d}u; e = e + 1u) { acc[e] = fma(ds, k[kb + e], acc[e]); }
  }
  for (var e = 0u; e < ${d}u; e = e + 1u) { dq[qb + e] = acc[e]; }
}`);
  },
  /** scalar for software adapters (head_dim a multiple of 4), with vec4 registers. */
  vec4(d: number) {
    const J = range(d / 4);
    return ATTN.kernel(/* wgsl */ `
${ATTN_BWD_INPUTS('vec4<f32>')}
@group(0) @binding(7) var<storage, read_write> dq: array<vec4<f32>>;
${ATTN_VEC4_MAIN} {
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= u.batch * u.t * u.hq) { return; }
  let h = i % u.hq;
  let t = (i / u.hq) % u.t;
  let b = i / (u.hq * u.t);
  let kh = h / (u.hq / u.hkv);
  let qb = i * ${d / 4}u;
  let lse = rs[2u * i];
  let delta = rs[2u * i + 1u];
  ${J.map((j) => `let q${j} = q[qb + ${j}u] * u.scale;`).join(' ')}
  ${J.map((j) => `let g${j} = dO[qb + ${j}u];`).join(' ')}
  ${J.map((j) => `var a${j} = vec4<f32>(0.0);`).join(' ')}
  ${ATTN_SEND}
  for (var s = 0u; s < sEnd; s = s + 1u) {
    if (u.hasMask == 1u && mask[b * u.sMax + s] == 0u) { continue; }
    let kb = ((b * u.sMax + s) * u.hkv + kh) * ${d / 4}u;
    ${J.map((j) => `let k${j} = k[kb + ${j}u];`).join(' ')}
    let sc = ${dot4(d / 4, (j) => `q${j}`, (j) => `k${j}`)};
    let dp = ${dot4(d / 4, (j) => `g${j}`, (j) => `v[kb + ${j}u]`)};
    let ds = vec4<f32>(exp(sc - lse) * (dp - delta) * u.scale);
    ${J.map((j) => `a${j} = fma(ds, k${j}, a${j});`).join(' ')}
  }
  ${J.map((j) => `dq[qb + ${j}u] = a${j};`).join(' ')}
}`);
  },
  /** vec4 for 4-lane subgroups (same bindings); head_dim a multiple of 4. */
  subgroup(d: number) {
    const S = d / 4, X = range(S), J = range(ATTN_SG);
    return ATTN.kernel(
      /* wgsl */ `
${ATTN_BWD_INPUTS('f32')}
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
${ATTN_SG_MAIN} {
  ${attnSgBlock('u.t', 'u.hq')}
  let kh = head / (u.hq / u.hkv);
  let d0 = lane * ${S}u;
  ${J.map((j) => `let t${j} = r0 + ${j}u; let row${j} = (b * u.t + min(t${j}, u.t - 1u)) * u.hq + head; let qb${j} = row${j} * ${d}u + d0;
  let lse${j} = rs[2u * row${j}]; let delta${j} = rs[2u * row${j} + 1u];
  ${X.map((x) => `let q${j}_${x} = q[qb${j} + ${x}u] * u.scale; let g${j}_${x} = dO[qb${j} + ${x}u];`).join(' ')}
  ${X.map((x) => `var a${j}_${x} = 0.0;`).join(' ')}`).join('\n  ')}
  ${sgKeyLoop(d)}
    ${J.map((j) => `{
      let sc = ${sgDot(S, (x) => `q${j}_${x}`, (x) => `k${x}`)};
      let dp = ${sgDot(S, (x) => `g${j}_${x}`, (x) => `v${x}`)};
      let vis = u.causal == 0u || s <= t${j} + u.qOffset;
      let ds = select(0.0, exp(sc - lse${j}) * (dp - delta${j}) * u.scale, vis);
      ${X.map((x) => `a${j}_${x} = fma(ds, k${x}, a${j}_${x});`).join(' ')}
    }`).join('\n    ')}
  }
  ${J.map((j) => `if (t${j} < u.t) { ${X.map((x) => `dq[qb${j} + ${x}u] = a${j}_${x};`).join(' ')} }`).join('\n  ')}
}`,
      ATTN_SG_DIRECTIVES,
    );
  },
};

/** dk and dv (bindings q, k, v, dO, rowstats, mask, dk, dv). */
export const dkv = {
  /** dk, dv: one thread per (b, s, kv head), summing over the query heads of its group and the rows that see key s. */
  scalar(d: number) {
    return ATTN.kernel(/* wgsl */ `
${ATTN_BWD_INPUTS('f32')}
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
${ATTN_VISIBLE}
${MAIN64}
  if (i >= u.batch * u.sMax * u.hkv) { return; }
  let kh = i % u.hkv;
  let s = (i / u.hkv) % u.sMax;
  let b = i / (u.hkv * u.sMax);
  let kb = i * ${d}u;
  var kv: array<f32, ${d}>;
  var vv: array<f32, ${d}>;
  var ak: array<f32, ${d}>;
  var av: array<f32, ${d}>;
  for (var e = 0u; e < ${d}u; e = e + 1u) { kv[e] = k[kb + e]; vv[e] = v[kb + e]; }
  let group = u.hq / u.hkv;
  var t0 = 0u;
  if (u.causal == 1u && s > u.qOffset) { t0 = s - u.qOffset; }
  if (s < u.s) {
    for (var t = t0; t < u.t; t = t + 1u) {
      if (!visible(b, t, s)) { continue; }
      for (var g = 0u; g < group; g = g + 1u) {
        let h = kh * group + g;
        let r = (b * u.t + t) * u.hq + h;
        let qb = r * ${d}u;
        var sc = 0.0;
        var dp = 0.0;
        for (var e = 0u; e < ${d}u; e = e + 1u) { sc = fma(q[qb + e], kv[e], sc); dp = fma(dO[qb + e], vv[e], dp); }
        let p = exp(sc * u.scale - rs[2u * r]);
        let ds = p * (dp - rs[2u * r + 1u]) * u.scale;
        for (var e = 0u; e < ${d}u; e = e + 1u) {
          av[e] = fma(p, dO[qb + e], av[e]);
          ak[e] = fma(ds, q[qb + e], ak[e]);
        }
      }
    }
  }
  for (var e = 0u; e < ${d}u; e = e + 1u) { dk[kb + e] = ak[e]; dv[kb + e] = av[e]; }
}`);
  },
  /**
   * dk, dv for software adapters (head_dim a multiple of 4): one thread per (b, s, kv head) as
   * scalar, with vec4 registers; rows before the causal limit are skipped by the loop
   * bound and a masked key is skipped whole.
   */
  vec4(d: number) {
    const J = range(d / 4);
    return ATTN.kernel(/* wgsl */ `
${ATTN_BWD_INPUTS('vec4<f32>')}
@group(0) @binding(7) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dv: array<vec4<f32>>;
${ATTN_VEC4_MAIN} {
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (i >= u.batch * u.sMax * u.hkv) { return; }
  let kh = i % u.hkv;
  let s = (i / u.hkv) % u.sMax;
  let b = i / (u.hkv * u.sMax);
  let kb = i * ${d / 4}u;
  ${J.map((j) => `let k${j} = k[kb + ${j}u] * u.scale;`).join(' ')}
  ${J.map((j) => `let v${j} = v[kb + ${j}u];`).join(' ')}
  ${J.map((j) => `var ak${j} = vec4<f32>(0.0);`).join(' ')}
  ${J.map((j) => `var av${j} = vec4<f32>(0.0);`).join(' ')}
  let group = u.hq / u.hkv;
  var t0 = 0u;
  if (u.causal == 1u && s > u.qOffset) { t0 = s - u.qOffset; }
  var tEnd = u.t;
  if (s >= u.s || (u.hasMask == 1u && mask[b * u.sMax + s] == 0u)) { tEnd = 0u; }
  for (var t = t0; t < tEnd; t = t + 1u) {
    for (var g = 0u; g < group; g = g + 1u) {
      let r = (b * u.t + t) * u.hq + kh * group + g;
      let qb = r * ${d / 4}u;
      ${J.map((j) => `let q${j} = q[qb + ${j}u];`).join(' ')}
      ${J.map((j) => `let g${j} = dO[qb + ${j}u];`).join(' ')}
      let sc = ${dot4(d / 4, (j) => `q${j}`, (j) => `k${j}`)};
      let dp = ${dot4(d / 4, (j) => `g${j}`, (j) => `v${j}`)};
      let p = exp(sc - rs[2u * r]);
      let pv = vec4<f32>(p);
      let ds = vec4<f32>(p * (dp - rs[2u * r + 1u]) * u.scale);
      ${J.map((j) => `av${j} = fma(pv, g${j}, av${j});`).join(' ')}
      ${J.map((j) => `ak${j} = fma(ds, q${j}, ak${j});`).join(' ')}
    }
  }
  ${J.map((j) => `dk[kb + ${j}u] = ak${j}; dv[kb + ${j}u] = av${j};`).join(' ')}
}`);
  },
  /** vec4 for 4-lane subgroups (same bindings); head_dim a multiple of 4. */
  subgroup(d: number) {
    const S = d / 4, X = range(S), J = range(ATTN_SG);
    return ATTN.kernel(
      /* wgsl */ `
${ATTN_BWD_INPUTS('f32')}
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
${ATTN_SG_MAIN} {
  ${attnSgBlock('u.sMax', 'u.hkv')}
  let d0 = lane * ${S}u;
  ${J.map((j) => `let s${j} = r0 + ${j}u; let kb${j} = ((b * u.sMax + min(s${j}, u.sMax - 1u)) * u.hkv + head) * ${d}u + d0;
  let live${j} = s${j} < u.s && (u.hasMask == 0u || mask[b * u.sMax + min(s${j}, u.sMax - 1u)] != 0u);
  ${X.map((x) => `let k${j}_${x} = k[kb${j} + ${x}u] * u.scale; let v${j}_${x} = v[kb${j} + ${x}u];`).join(' ')}
  ${X.map((x) => `var ak${j}_${x} = 0.0; var av${j}_${x} = 0.0;`).join(' ')}`).join('\n  ')}
  let group = u.hq / u.hkv;
  // Queries that see the block's first key come at or after it (causal).
  var t0 = 0u;
  if (u.causal == 1u && r0 > u.qOffset) { t0 = r0 - u.qOffset; }
  for (var t = t0; t < u.t; t = t + 1u) {
    for (var g = 0u; g < group; g = g + 1u) {
      let r = (b * u.t + t) * u.hq + head * group + g;
      let qb = r * ${d}u + d0;
      ${X.map((x) => `let q${x} = q[qb + ${x}u]; let g${x} = dO[qb + ${x}u];`).join(' ')}
      let lse = rs[2u * r];
      let delta = rs[2u * r + 1u];
      ${J.map((j) => `{
        let sc = ${sgDot(S, (x) => `q${x}`, (x) => `k${j}_${x}`)};
        let dp = ${sgDot(S, (x) => `g${x}`, (x) => `v${j}_${x}`)};
        let vis = live${j} && (u.causal == 0u || s${j} <= t + u.qOffset);
        let p = select(0.0, exp(sc - lse), vis);
        let ds = p * (dp - delta) * u.scale;
        ${X.map((x) => `av${j}_${x} = fma(p, g${x}, av${j}_${x}); ak${j}_${x} = fma(ds, q${x}, ak${j}_${x});`).join(' ')}
      }`).join('\n      ')}
    }
  }
  ${J.map((j) => `if (s${j} < u.sMax) { ${X.map((x) => `dk[kb${j} + ${x}u] = ak${j}_${x}; dv[kb${j} + ${x}u] = av${j}_${x};`).join(' ')} }`).join('\n  ')}
}`,
      ATTN_SG_DIRECTIVES,
    );
  },
};
