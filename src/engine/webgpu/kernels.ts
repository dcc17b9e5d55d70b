/**
 * WGSL sources of the engine's compute kernels, one generator per kernel family. Each pipeline is
 * compiled once per distinct source (see context.ts). Conventions shared by all kernels:
 * - binding 0 is the kernel's uniform struct; storage buffers follow in the order the backend binds them;
 * - 1-D kernels use 256 threads and a 2-D grid of workgroups (index = (wid.y·nwg.x + wid.x)·256 + lid),
 *   so that more than 65535 workgroups fit; row kernels use one workgroup of 256 threads per row
 *   (on software adapters one thread per row, see reduceRowKernel);
 * - infinities are never written or compared: "minus infinity" is -3.0e38 (compilers may assume finite math).
 * Indexing arrays in uniforms are array<vec4<u32>, 2> (uniform arrays need a 16-byte stride): up to 8 dims.
 */
import type { BinaryOp, ReduceOp, UnaryOp } from '../backend.js';

export const WG = 256;
export const NEG_INF = '-3.0e38';

const INDEX_1D = `@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32`;
const I = `let i = (wid.y * nwg.x + wid.x) * ${WG}u + lid;`;
const ROW = `let row = wid.y * nwg.x + wid.x;`;

/** Workgroup tree reductions over 256 threads; call from uniform control flow only. */
const REDUCE_FNS = /* wgsl */ `
var<workgroup> red: array<f32, ${WG}>;
fn wgSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wgMax(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

// tanh is evaluated through exp on some drivers: clamp so that large |u| cannot overflow to NaN.
const TANH = (u: string) => `tanh(clamp(${u}, -15.0, 15.0))`;
const GELU_C = '0.7978845608028654';

const UNARY_EXPR: Record<UnaryOp, string> = {
  neg: '-x',
  exp: 'exp(x)',
  log: 'log(x)',
  sqrt: 'sqrt(x)',
  rsqrt: 'inverseSqrt(x)',
  silu: 'x / (1.0 + exp(-x))',
  gelu_tanh: `0.5 * x * (1.0 + ${TANH(`${GELU_C} * (x + 0.044715 * x * x * x)`)})`,
  relu: 'max(x, 0.0)',
  abs: 'abs(x)',
  square: 'x * x',
  sigmoid: '1.0 / (1.0 + exp(-x))',
  tanh: TANH('x'),
};

/** Derivative dy/dx in terms of x and y. */
const UNARY_DERIV: Record<UnaryOp, string> = {
  neg: '-1.0',
  exp: 'y',
  log: '1.0 / x',
  sqrt: '0.5 / y',
  rsqrt: '-0.5 * y * y * y',
  silu: '(1.0 / (1.0 + exp(-x))) * (1.0 + x * (1.0 - 1.0 / (1.0 + exp(-x))))',
  gelu_tanh: `0.5 * (1.0 + ${TANH(`${GELU_C} * (x + 0.044715 * x * x * x)`)}) + 0.5 * x * (1.0 - pow(${TANH(`${GELU_C} * (x + 0.044715 * x * x * x)`)}, 2.0)) * ${GELU_C} * (1.0 + 3.0 * 0.044715 * x * x)`,
  relu: 'select(0.0, 1.0, x > 0.0)',
  abs: 'sign(x)',
  square: '2.0 * x',
  sigmoid: 'y * (1.0 - y)',
  tanh: '1.0 - y * y',
};

const BINARY_EXPR: Record<BinaryOp, string> = {
  add: 'x + y',
  sub: 'x - y',
  mul: 'x * y',
  div: 'x / y',
  max: 'max(x, y)',
  min: 'min(x, y)',
  eq: 'select(0.0, 1.0, x == y)',
  gt: 'select(0.0, 1.0, x > y)',
};

export function unaryKernel(op: UnaryOp): string {
  return /* wgsl */ `
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  let x = a[i];
  o[i] = ${UNARY_EXPR[op]};
}`;
}

export function unaryGradKernel(op: UnaryOp): string {
  return /* wgsl */ `
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> ys: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  let x = xs[i];
  let y = ys[i];
  o[i] = dy[i] * (${UNARY_DERIV[op]});
}`;
}

/** Strided index decomposition over up to 8 dims: sets ia / ib from the flat output index i. */
const STRIDED = (sa: string, sb: string) => /* wgsl */ `
  var rem = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(u.rank) - 1; d >= 0; d = d - 1) {
    let k = u32(d);
    let s = u.shape[k / 4u][k % 4u];
    let c = rem % s;
    rem = rem / s;
    ia = ia + c * u.${sa}[k / 4u][k % 4u];
    ib = ib + c * u.${sb}[k / 4u][k % 4u];
  }`;

/**
 * `o = a ⊕ b` over a shape with per-operand strides. Layouts that skip the per-element stride
 * decomposition (its integer divisions dominate on software adapters): 'contiguous', both operands
 * row-major over the output's shape; 'rowvec', a row-major and b a vector along the last axis
 * (x + bias).
 */
export function binaryKernel(op: BinaryOp, layout: 'contiguous' | 'rowvec' | 'strided'): string {
  const index = {
    contiguous: 'let ia = i;\n  let ib = i;',
    rowvec: 'let ia = i;\n  let ib = i % u.shape[(u.rank - 1u) / 4u][(u.rank - 1u) % 4u];',
    strided: STRIDED('sa', 'sb'),
  }[layout];
  return /* wgsl */ `
struct U { shape: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2>, rank: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  ${index}
  let x = a[ia];
  let y = b[ib];
  o[i] = ${BINARY_EXPR[op]};
}`;
}

/**
 * copyKernel for a copy that repeats one element into a row-major destination (the backward of a
 * sum or mean over everything broadcasts one value): no per-element index decomposition, whose
 * integer divisions dominate on software adapters.
 */
export const splatKernel = /* wgsl */ `
struct U { n: u32, soff: u32, doff: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  o[u.doff + i] = a[u.soff];
}`;

/** Bit-exact strided copy of 32-bit elements (any 4-byte dtype). */
export const copyKernel = /* wgsl */ `
struct U { shape: array<vec4<u32>, 2>, ss: array<vec4<u32>, 2>, ds: array<vec4<u32>, 2>, rank: u32, n: u32, soff: u32, doff: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  ${STRIDED('ss', 'ds')}
  o[u.doff + ib] = a[u.soff + ia];
}`;

/** Fills n 32-bit words with a bit pattern (f32, i32, u32, or two packed f16). */
export const fillKernel = /* wgsl */ `
struct U { n: u32, bits: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  o[i] = u.bits;
}`;

/** Casts between dtypes; f16 is two halves per u32 word (WGSL core pack2x16float, no shader-f16 needed). */
export function castKernel(from: string, to: string): string {
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
  return /* wgsl */ `
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= ${count}) { return; }
  ${body}
}`;
}

export const affineKernel = /* wgsl */ `
struct U { n: u32, a: f32, b: f32, e: f32, isPow: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  let v = x[i];
  if (u.isPow == 1u) {
    // pow() is undefined for negative bases in WGSL: handle integer exponents by sign.
    let m = pow(abs(v), u.e);
    let odd = abs(u.e - 2.0 * floor(u.e / 2.0)) == 1.0;
    o[i] = select(m, -m, v < 0.0 && odd);
    if (v == 0.0 && u.e == 0.0) { o[i] = 1.0; }
  } else {
    o[i] = u.a * v + u.b;
  }
}`;

/** Reduces the middle axis of [outer, n, inner]: one workgroup per output when inner == 1, else a thread per output. */
export function reduceKernel(op: ReduceOp, rowwise: boolean): string {
  const init = op === 'sum' ? '0.0' : NEG_INF;
  const comb = op === 'sum' ? (a: string, b: string) => `${a} + ${b}` : (a: string, b: string) => `max(${a}, ${b})`;
  const header = /* wgsl */ `
struct U { outer: u32, n: u32, inner: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;`;
  if (rowwise)
    return /* wgsl */ `${header}
${REDUCE_FNS}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${ROW}
  if (row >= u.outer) { return; }
  var acc = ${init};
  for (var j = lid; j < u.n; j = j + ${WG}u) { acc = ${comb('acc', 'x[row * u.n + j]')}; }
  let r = ${op === 'sum' ? 'wgSum' : 'wgMax'}(acc, lid);
  if (lid == 0u) { o[row] = r; }
}`;
  return /* wgsl */ `${header}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.outer * u.inner) { return; }
  let a = i / u.inner;
  let c = i % u.inner;
  var acc = ${init};
  for (var j = 0u; j < u.n; j = j + 1u) { acc = ${comb('acc', 'x[(a * u.n + j) * u.inner + c]')}; }
  o[i] = acc;
}`;
}

/**
 * Tiled matmul: 64x64 output tile per workgroup of 16x16 threads, 4x4 register block per thread,
 * K in steps of 16 through workgroup memory. Threads own rows ty+16r and columns tx+16c, so that
 * global stores and shared-memory reads are contiguous across a row of threads.
 */
export const matmulKernel = /* wgsl */ `
struct U { m: u32, n: u32, k: u32, transA: u32, transB: u32, aBS: u32, bBS: u32, aOff: u32, bOff: u32, cOff: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
var<workgroup> As: array<f32, 1024>;
var<workgroup> Bs: array<f32, 1024>;
@compute @workgroup_size(16, 16) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wid.y * 64u;
  let col0 = wid.x * 64u;
  let tid = lid.y * 16u + lid.x;
  let aBase = u.aOff + wid.z * u.aBS;
  let bBase = u.bOff + wid.z * u.bBS;
  let cBase = u.cOff + wid.z * u.m * u.n;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < u.k; k0 = k0 + 16u) {
    for (var l = 0u; l < 4u; l = l + 1u) {
      let e = tid + l * 256u;
      // A tile element (i, kk) of op(A) [M, K]; pick the mapping whose global reads are contiguous.
      var i = e / 16u;
      var kk = e % 16u;
      if (u.transA == 1u) { i = e % 64u; kk = e / 64u; }
      var va = 0.0;
      if (row0 + i < u.m && k0 + kk < u.k) {
        if (u.transA == 1u) { va = a[aBase + (k0 + kk) * u.m + row0 + i]; } else { va = a[aBase + (row0 + i) * u.k + k0 + kk]; }
      }
      As[kk * 64u + i] = va;
      // B tile element (kk, j) of op(B) [K, N].
      var j = e % 64u;
      var kb = e / 64u;
      if (u.transB == 1u) { j = e / 16u; kb = e % 16u; }
      var vb = 0.0;
      if (col0 + j < u.n && k0 + kb < u.k) {
        if (u.transB == 1u) { vb = b[bBase + (col0 + j) * u.k + k0 + kb]; } else { vb = b[bBase + (k0 + kb) * u.n + col0 + j]; }
      }
      Bs[kb * 64u + j] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
      let a0 = As[kk * 64u + lid.y];
      let a1 = As[kk * 64u + lid.y + 16u];
      let a2 = As[kk * 64u + lid.y + 32u];
      let a3 = As[kk * 64u + lid.y + 48u];
      for (var q = 0u; q < 4u; q = q + 1u) {
        let bv = Bs[kk * 64u + lid.x + q * 16u];
        acc[q] = fma(a0, bv, acc[q]);
        acc[4u + q] = fma(a1, bv, acc[4u + q]);
        acc[8u + q] = fma(a2, bv, acc[8u + q]);
        acc[12u + q] = fma(a3, bv, acc[12u + q]);
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 4u; r = r + 1u) {
    let gi = row0 + lid.y + r * 16u;
    if (gi >= u.m) { continue; }
    for (var q = 0u; q < 4u; q = q + 1u) {
      let gj = col0 + lid.x + q * 16u;
      if (gj >= u.n) { continue; }
      let idx = cBase + gi * u.n + gj;
      var v = acc[r * 4u + q];
      if (u.accumulate == 1u) { v = v + c[idx]; }
      c[idx] = v;
    }
  }
}`;

/** out[a, j, c] = x[a, ids[j], c] (bit copy); out-of-range ids give 0. */
export const gatherKernel = /* wgsl */ `
struct U { outer: u32, dim: u32, inner: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;

/** dx[a, ids[j], c] += dy[a, j, c]: one thread per (a, c) walks j in order (deterministic, no atomics). */
export const scatterAddKernel = /* wgsl */ `
struct U { outer: u32, dim: u32, inner: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;

export const softmaxKernel = /* wgsl */ `
struct U { rows: u32, n: u32, hasMask: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
${REDUCE_FNS}
fn keep(k: u32) -> bool { return u.hasMask == 0u || mask[k] != 0u; }
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
}`;

export const softmaxGradKernel = /* wgsl */ `
struct U { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
${REDUCE_FNS}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${ROW}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  var d = 0.0;
  for (var j = lid; j < u.n; j = j + ${WG}u) { d = d + y[base + j] * dy[base + j]; }
  d = wgSum(d, lid);
  for (var j = lid; j < u.n; j = j + ${WG}u) { o[base + j] = y[base + j] * (dy[base + j] - d); }
}`;

/** RMSNorm / LayerNorm forward, one workgroup per row; `layer` adds mean-centering and a bias. */
export function normKernel(layer: boolean): string {
  return /* wgsl */ `
struct U { rows: u32, n: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
${layer ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${layer ? 4 : 3}) var<storage, read_write> y: array<f32>;
@group(0) @binding(${layer ? 5 : 4}) var<storage, read_write> stats: array<f32>;
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
}`;
}

/** dx of RMSNorm / LayerNorm, one workgroup per row (stats as written by normKernel). */
export function normGradKernel(layer: boolean): string {
  return /* wgsl */ `
struct U { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
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
}`;
}

/** dw (and db) of a norm: one thread per column sums over rows. */
export function normParamGradKernel(layer: boolean): string {
  return /* wgsl */ `
struct U { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;
}

/**
 * Rotary embedding, HF rotate_half pairs (i, i + D/2); one thread per pair. cos/sin come from a
 * table [maxPos, D/2, 2] computed on the host in float64 (WGSL sin/cos lose accuracy for large
 * angles); positions outside the table leave x unrotated.
 */
export const ropeKernel = /* wgsl */ `
struct U { b: u32, t: u32, h: u32, d: u32, maxPos: u32, sign: f32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;

const ATTN_U = `struct U { batch: u32, t: u32, s: u32, sMax: u32, hq: u32, hkv: u32, scale: f32, causal: u32, qOffset: u32, hasMask: u32 }`;

/** Keys a query row may see: causal limit and padding mask. */
const ATTN_VISIBLE = /* wgsl */ `
fn visible(b: u32, t: u32, s: u32) -> bool {
  if (u.causal == 1u && s > t + u.qOffset) { return false; }
  return u.hasMask == 0u || mask[b * u.sMax + s] != 0u;
}`;

/** Entry point of the 64-thread 1-D kernels: sets `i`, the invocation's global index. */
const MAIN64 = `@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;`;

/** Bindings 0-6 shared by the attention backward kernels (q, k, v, dO as `elem` rows; rowstats; key mask). */
const ATTN_BWD_INPUTS = (elem: string) => `@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> q: array<${elem}>;
@group(0) @binding(2) var<storage, read> k: array<${elem}>;
@group(0) @binding(3) var<storage, read> v: array<${elem}>;
@group(0) @binding(4) var<storage, read> dO: array<${elem}>;
@group(0) @binding(5) var<storage, read> rs: array<f32>;
@group(0) @binding(6) var<storage, read> mask: array<u32>;`;

/**
 * Attention forward, one thread per (b, t, h) query row with an online softmax over keys (no score
 * matrix in memory). Writes o and the row's log-sum-exp (3e38 for a row with no visible key).
 */
export function attentionKernel(d: number): string {
  return /* wgsl */ `
${ATTN_U}
@group(0) @binding(0) var<uniform> u: U;
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
}`;
}

/** Per query row: rowstat = (lse, Σ dO·O), the "delta" term of the softmax backward. */
export function attentionDeltaKernel(d: number): string {
  return /* wgsl */ `
struct U { rows: u32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;
}

/** dq: one thread per query row; probabilities recomputed from the saved log-sum-exp. */
export function attentionDqKernel(d: number): string {
  return /* wgsl */ `
${ATTN_U}
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
}`;
}

/** dk, dv: one thread per (b, s, kv head), summing over the query heads of its group and the rows that see key s. */
export function attentionDkvKernel(d: number): string {
  return /* wgsl */ `
${ATTN_U}
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
}`;
}

/** One vocabulary chunk of the fused log-prob: merges the chunk's softmax statistics into stats [n, 4]. */
export const logprobChunkKernel = /* wgsl */ `
struct U { n: u32, vc: u32, v0: u32, invT: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
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
}`;

export const logprobFinishKernel = /* wgsl */ `
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  let logZ = stats[i * 4u] + log(stats[i * 4u + 1u]);
  o[i * 2u] = stats[i * 4u + 3u] - logZ;
  o[i * 2u + 1u] = logZ - stats[i * 4u + 2u] / stats[i * 4u + 1u];
  stats[i * 4u] = logZ;
}`;

export const logprobGradKernel = /* wgsl */ `
struct U { n: u32, vc: u32, v0: u32, invT: f32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;

/** [B, C, H, W] <-> [B, patches, C·p·p]; one thread per pixel. */
export const patchifyKernel = /* wgsl */ `
struct U { b: u32, c: u32, h: u32, w: u32, p: u32, inverse: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.b * u.c * u.h * u.w) { return; }
  let xx = i % u.w;
  let y = (i / u.w) % u.h;
  let ci = (i / (u.w * u.h)) % u.c;
  let bi = i / (u.w * u.h * u.c);
  let gw = u.w / u.p;
  let pidx = (y / u.p) * gw + xx / u.p;
  let within = (ci * u.p + y % u.p) * u.p + xx % u.p;
  let pat = (bi * (u.h / u.p) * gw + pidx) * u.c * u.p * u.p + within;
  if (u.inverse == 1u) { o[i] = x[pat]; } else { o[pat] = x[i]; }
}`;

/** partial[slot] += Σ x² (one workgroup; called once per tensor when clipping the global grad norm). */
export const sumSquaresKernel = /* wgsl */ `
struct U { n: u32, slot: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
${REDUCE_FNS}
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var j = lid; j < u.n; j = j + ${WG}u) { s = fma(x[j], x[j], s); }
  s = wgSum(s, lid);
  if (lid == 0u) { partial[u.slot] = partial[u.slot] + s; }
}`;

export const clipCoefKernel = /* wgsl */ `
struct U { k: u32, maxNorm: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(1) fn main() {
  var s = 0.0;
  for (var j = 0u; j < u.k; j = j + 1u) { s = s + partial[j]; }
  let norm = sqrt(s);
  o[0] = norm;
  o[1] = min(1.0, u.maxNorm / (norm + 1e-6));
}`;

export const adamwKernel = /* wgsl */ `
struct U { n: u32, lr: f32, b1: f32, b2: f32, omb1: f32, omb2: f32, eps: f32, decay: f32, bc1: f32, bc2: f32, hasCoef: u32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;

export const sgdKernel = /* wgsl */ `
struct U { n: u32, lr: f32, momentum: f32, wd: f32, hasCoef: u32, hasBuf: u32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;

/**
 * Register-blocked matmul for CPU-like adapters (SwiftShader): C = op(A)·op(B), each thread 8 rows ×
 * 4 columns held in vec4 accumulators, no workgroup memory and no barriers, which software
 * rasterizers execute slowly. Operands are read as vec4 in one of three layouts, so that the
 * backward products of x·Wᵀ need no transposing copies:
 * - 'nt': A [M, K] and B [N, K], both contiguous along K (K a multiple of 4);
 * - 'nn': A [M, K] (K a multiple of 4) and B [K, N] (N a multiple of 4);
 * - 'tn': A [K, M] (M a multiple of 4) and B [K, N] (N a multiple of 4), any K.
 * Offsets and batch strides are in vec4 units; k4 is K/4 ('nt', 'nn') or K ('tn').
 * Measured on SwiftShader (2 cores): about 3 GFLOP/s against 0.3 for the tiled kernel.
 */
export function matmulVec4Kernel(layout: 'nt' | 'nn' | 'tn'): string {
  const R = 8;
  const rows = [...Array(R).keys()];
  const cols = [0, 1, 2, 3];
  const comp = 'xyzw';
  let setup: string, body: string;
  if (layout === 'tn') {
    // Rows r0..r0+7 of A are two vec4 of row k of the stored [K, M]; the second clamped at M's end.
    setup = `let m4 = u.m / 4u; let n4 = u.n / 4u;
  let a0 = aBase + r0 / 4u; let a1 = aBase + min(r0 / 4u + 1u, m4 - 1u); let bc = bBase + c0 / 4u;`;
    body = `let lo = a[a0 + k * m4]; let hi = a[a1 + k * m4]; let bv = b[bc + k * n4];
    ${rows.map((r) => `acc${r} = fma(vec4<f32>(${r < 4 ? 'lo' : 'hi'}.${comp[r % 4]}), bv, acc${r});`).join(' ')}`;
  } else {
    setup = rows.map((r) => `let ar${r} = aBase + min(r0 + ${r}u, u.m - 1u) * u.k4;`).join('\n  ');
    if (layout === 'nt') {
      setup += '\n  ' + cols.map((q) => `let bc${q} = bBase + min(c0 + ${q}u, u.n - 1u) * u.k4;`).join('\n  ');
      body = `${cols.map((q) => `let b${q} = b[bc${q} + k];`).join(' ')}
    ${rows.map((r) => `{ let av = a[ar${r} + k]; acc${r} = acc${r} + vec4<f32>(dot(av, b0), dot(av, b1), dot(av, b2), dot(av, b3)); }`).join('\n    ')}`;
    } else {
      // Rows 4k..4k+3 of the stored [K, N] B, columns c0..c0+3.
      setup += `\n  let n4 = u.n / 4u; let bc = bBase + c0 / 4u;`;
      body = `${cols.map((q) => `let b${q} = b[bc + (4u * k + ${q}u) * n4];`).join(' ')}
    ${rows.map((r) => `{ let av = a[ar${r} + k]; acc${r} = fma(vec4<f32>(av.x), b0, fma(vec4<f32>(av.y), b1, fma(vec4<f32>(av.z), b2, fma(vec4<f32>(av.w), b3, acc${r})))); }`).join('\n    ')}`;
    }
  }
  return /* wgsl */ `
struct U { m: u32, n: u32, k4: u32, aBS: u32, bBS: u32, aOff: u32, bOff: u32, cOff: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let r0 = g.y * ${R}u;
  let c0 = g.x * 4u;
  if (r0 >= u.m || c0 >= u.n) { return; }
  let aBase = u.aOff + g.z * u.aBS;
  let bBase = u.bOff + g.z * u.bBS;
  ${setup}
  ${rows.map((r) => `var acc${r} = vec4<f32>(0.0);`).join(' ')}
  for (var k = 0u; k < u.k4; k = k + 1u) {
    ${body}
  }
  let cBase = u.cOff + g.z * u.m * u.n;
  ${rows.map((r) => `if (r0 + ${r}u < u.m) { ${cols.map((q) => `if (c0 + ${q}u < u.n) { let i = cBase + (r0 + ${r}u) * u.n + c0 + ${q}u; var v = acc${r}[${q}]; if (u.accumulate == 1u) { v = v + c[i]; } c[i] = v; }`).join(' ')} }`).join('\n  ')}
}`;
}

const range = (n: number) => [...Array(n).keys()];

/**
 * Matmul for software adapters whose subgroups are their 4-wide SIMD groups (SwiftShader):
 * C = op(A)·op(B) with any transposes, read in place (no packing), K of any size. Such adapters turn
 * every storage load whose address depends on the invocation into a 4-lane gather, so the kernel
 * is built to need few of them per multiply-add:
 * - a subgroup's 4 lanes own interleaved columns c0 + lane + 4j (j < 4) of the same 8 rows;
 * - the rows' A values are shared: for each block of 4 k's, lane q loads A[r, k0 + q] and the
 *   others take it with subgroupBroadcast (a register shuffle) instead of loading it themselves;
 * - `rows` (8, or fewer for short products such as decoding's one row per sequence) × 4 columns per
 *   lane: 32 accumulators, the largest block that measured faster (bigger ones spill registers).
 * Per 4 k's a lane makes 8 + 16 gathers for 128 multiply-adds, against 48 for the vec4 kernel
 * (matmulVec4Kernel), which is about 1.3x slower on SwiftShader (measured worker-thread CPU time).
 * A workgroup of 64 threads (16 subgroups of 16 columns each) covers `colGroups`·16 columns and
 * (16 / colGroups)·rows rows; the backend picks the arrangement that pads the product least (a
 * decoding step's few rows take one row block and wide column blocks). No early return: subgroup
 * operations need every lane, so out-of-range rows and columns read clamped indices and skip the store.
 * Offsets and batch strides are in elements.
 */
export function matmulSubgroupKernel(transA: boolean, transB: boolean, rowsPerLane: number, colGroups: number): string {
  const RB = rowsPerLane, CB = 4, rowBlocks = 16 / colGroups;
  const rows = range(RB), cols = range(CB);
  // Element (row r, k index kk) of op(A) and (k index kk, column j) of op(B), with clamped row/column bases.
  const aAt = (r: number, kk: string) => (transA ? `a[aBase + (${kk}) * u.m + ar${r}]` : `a[ar${r} + ${kk}]`);
  const bAt = (j: number, kk: string) => (transB ? `b[bc${j} + ${kk}]` : `b[bBase + (${kk}) * u.n + bc${j}]`);
  const block = (guard: boolean) => `
    ${rows.map((r) => (guard ? `let al${r} = select(0.0, ${aAt(r, 'min(k0 + lane, u.k - 1u)')}, k0 + lane < u.k);` : `let al${r} = ${aAt(r, 'k0 + lane')};`)).join(' ')}
    ${range(4).map((q) => `{
      let kq = ${guard ? `min(k0 + ${q}u, u.k - 1u)` : `k0 + ${q}u`};
      ${cols.map((j) => `let b${j} = ${bAt(j, 'kq')};`).join(' ')}
      ${rows.map((r) => `let a${r} = subgroupBroadcast(al${r}, ${q}u);`).join(' ')}
      ${rows.map((r) => cols.map((j) => `acc${r * CB + j} = fma(a${r}, b${j}, acc${r * CB + j});`).join(' ')).join('\n      ')}
    }`).join('\n    ')}`;
  return /* wgsl */ `
enable subgroups;
struct U { m: u32, n: u32, k: u32, aBS: u32, bBS: u32, aOff: u32, bOff: u32, cOff: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let sg = lid / 4u;
  let r0 = wid.y * ${rowBlocks * RB}u + (sg / ${colGroups}u) * ${RB}u;
  let c0 = wid.x * ${colGroups * 4 * CB}u + (sg % ${colGroups}u) * ${4 * CB}u + lane;
  let aBase = u.aOff + wid.z * u.aBS;
  let bBase = u.bOff + wid.z * u.bBS;
  ${rows.map((r) => `let ar${r} = ${transA ? '' : 'aBase + '}min(r0 + ${r}u, u.m - 1u)${transA ? '' : ' * u.k'};`).join(' ')}
  ${cols.map((j) => `let bc${j} = ${transB ? 'bBase + ' : ''}min(c0 + ${4 * j}u, u.n - 1u)${transB ? ' * u.k' : ''};`).join(' ')}
  ${range(RB * CB).map((i) => `var acc${i} = 0.0;`).join(' ')}
  let kFull = u.k & ~3u;
  for (var k0 = 0u; k0 < kFull; k0 = k0 + 4u) {${block(false)}
  }
  if (kFull < u.k) {
    let k0 = kFull;${block(true)}
  }
  let cBase = u.cOff + wid.z * u.m * u.n;
  ${rows.map((r) => `if (r0 + ${r}u < u.m) { ${cols.map((j) => `if (c0 + ${4 * j}u < u.n) { let i = cBase + (r0 + ${r}u) * u.n + c0 + ${4 * j}u; var v = acc${r * CB + j}; if (u.accumulate == 1u) { v = v + c[i]; } c[i] = v; }`).join(' ')} }`).join('\n  ')}
}`;
}
/** `Σ_j dot(x_j, y_j)` over head_dim/4 vec4 pairs, as four independent partial sums (shorter dependency chains). */
const dot4 = (n: number, x: (j: number) => string, y: (j: number) => string) => {
  const parts = range(Math.min(4, n)).map((p) => range(n).filter((j) => j % 4 === p).map((j) => `dot(${x(j)}, ${y(j)})`).join(' + '));
  return parts.map((s) => `(${s})`).join(' + ');
};
const ATTN_VEC4_MAIN = `@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32)`;
/** Keys [0, sEnd) a query row at t may see (causal limit; the padding mask is checked per key). */
const ATTN_SEND = `var sEnd = u.s;
  if (u.causal == 1u) { sEnd = min(sEnd, t + u.qOffset + 1u); }`;

/**
 * Attention forward for software adapters (SwiftShader), head_dim a multiple of 4: as
 * attentionKernel (one thread per (b, t, h) row, online softmax) with q, k, v, o read as vec4 and
 * the row held in head_dim/4 vec4 registers instead of dynamically indexed private arrays, no
 * workgroup memory, and the causal limit as the loop bound.
 */
export function attentionVec4Kernel(d: number): string {
  const J = range(d / 4);
  return /* wgsl */ `
${ATTN_U}
@group(0) @binding(0) var<uniform> u: U;
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
}`;
}

/** attentionDeltaKernel for software adapters: vec4 rows (head_dim a multiple of 4), 64 threads. */
export function attentionDeltaVec4Kernel(d: number): string {
  const J = range(d / 4);
  return /* wgsl */ `
struct U { rows: u32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;
}

/** dq for software adapters (head_dim a multiple of 4): attentionDqKernel with vec4 registers. */
export function attentionDqVec4Kernel(d: number): string {
  const J = range(d / 4);
  return /* wgsl */ `
${ATTN_U}
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
}`;
}

/**
 * dk, dv for software adapters (head_dim a multiple of 4): one thread per (b, s, kv head) as
 * attentionDkvKernel, with vec4 registers; rows before the causal limit are skipped by the loop
 * bound and a masked key is skipped whole.
 */
export function attentionDkvVec4Kernel(d: number): string {
  const J = range(d / 4);
  return /* wgsl */ `
${ATTN_U}
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
}`;
}

/*
 * Attention for software adapters whose subgroups are their 4-wide SIMD groups (SwiftShader). The
 * vec4 kernels above give each lane its own query row and load every key and value row 4 times per
 * subgroup, one gather per element; here a subgroup's 4 lanes work on the same rows, lane l holding
 * dims [l·D/4, (l+1)·D/4) of each, so every row is loaded once (D/4 gathers per lane) and dot
 * products are finished with subgroupAdd. A subgroup serves 4 query rows (forward, dq) or 4 keys
 * (dk, dv) at a time; 1.4-1.9x faster than the vec4 kernels on SwiftShader (worker CPU time).
 * Loop bounds are per subgroup (uniform across its lanes), hence subgroup_uniformity is off.
 */
const ATTN_SG = 4;
const ATTN_SG_HEAD = `enable subgroups;
diagnostic(off, subgroup_uniformity);
${ATTN_U}`;
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

/** attentionVec4Kernel for 4-lane subgroups (same bindings and outputs); head_dim a multiple of 4. */
export function attentionSubgroupKernel(d: number): string {
  const S = d / 4, X = range(S), J = range(ATTN_SG);
  return /* wgsl */ `${ATTN_SG_HEAD}
@group(0) @binding(0) var<uniform> u: U;
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
}`;
}

/** attentionDqVec4Kernel for 4-lane subgroups (same bindings); head_dim a multiple of 4. */
export function attentionDqSubgroupKernel(d: number): string {
  const S = d / 4, X = range(S), J = range(ATTN_SG);
  return /* wgsl */ `${ATTN_SG_HEAD}
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
}`;
}

/** attentionDkvVec4Kernel for 4-lane subgroups (same bindings); head_dim a multiple of 4. */
export function attentionDkvSubgroupKernel(d: number): string {
  const S = d / 4, X = range(S), J = range(ATTN_SG);
  return /* wgsl */ `${ATTN_SG_HEAD}
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
}`;
}

/*
 * Row kernels for software adapters (SwiftShader): one thread per row in workgroups of 64, walking
 * the row serially. The workgroup kernels above spend most of their time in the 8 barriers of each
 * tree reduction on such adapters (a 1152 x 64 row sum took 260 ms against under 1 ms this way).
 */
const ROW64 = `@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.y * nwg.x + wid.x) * 64u + lid;`;

/** reduceKernel(op, rowwise) for software adapters: x [outer, n] -> o [outer], one thread per row. */
export function reduceRowKernel(op: ReduceOp): string {
  return /* wgsl */ `
struct U { outer: u32, n: u32, inner: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
${ROW64}
  if (row >= u.outer) { return; }
  let base = row * u.n;
  var acc = ${op === 'sum' ? '0.0' : NEG_INF};
  for (var j = 0u; j < u.n; j = j + 1u) { acc = ${op === 'sum' ? 'acc + x[base + j]' : 'max(acc, x[base + j])'}; }
  o[row] = acc;
}`;
}

/** softmaxKernel for software adapters: one thread per row (same bindings). */
export const softmaxRowKernel = /* wgsl */ `
struct U { rows: u32, n: u32, hasMask: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
fn keep(k: u32) -> bool { return u.hasMask == 0u || mask[k] != 0u; }
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
}`;

/** softmaxGradKernel for software adapters: one thread per row. */
export const softmaxGradRowKernel = /* wgsl */ `
struct U { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
${ROW64}
  if (row >= u.rows) { return; }
  let base = row * u.n;
  var d = 0.0;
  for (var j = 0u; j < u.n; j = j + 1u) { d = fma(y[base + j], dy[base + j], d); }
  for (var j = 0u; j < u.n; j = j + 1u) { o[base + j] = y[base + j] * (dy[base + j] - d); }
}`;

/** normKernel(layer) for software adapters: one thread per row (same bindings and stats layout). */
export function normRowKernel(layer: boolean): string {
  return /* wgsl */ `
struct U { rows: u32, n: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
${layer ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${layer ? 4 : 3}) var<storage, read_write> y: array<f32>;
@group(0) @binding(${layer ? 5 : 4}) var<storage, read_write> stats: array<f32>;
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
}`;
}

/** normGradKernel(layer) for software adapters: one thread per row. */
export function normGradRowKernel(layer: boolean): string {
  return /* wgsl */ `
struct U { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
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
}`;
}

/**
 * logprobChunkKernel for software adapters: one thread per row with an online softmax over the
 * chunk (one pass, no barriers). Same bindings and statistics layout.
 */
export const logprobChunkRowKernel = /* wgsl */ `
struct U { n: u32, vc: u32, v0: u32, invT: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
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
}`;

/** sumSquaresKernel for software adapters: 64 strided partial sums and a single barrier. */
export const sumSquaresSmallKernel = /* wgsl */ `
struct U { n: u32, slot: u32 }
@group(0) @binding(0) var<uniform> u: U;
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
}`;
