/** Sum and max over the middle axis of [outer, n, inner] (their backward is a broadcast copy). */
import type { ReduceOp } from '../../backend.js';
import { I, INDEX_1D, NEG_INF, REDUCE_FNS, ROW, ROW64, WG } from './common.js';
import { uniforms } from './uniforms.js';

const U = uniforms({ outer: 'u32', n: 'u32', inner: 'u32' });
const IO = /* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;`;
const init = (op: ReduceOp) => (op === 'sum' ? '0.0' : NEG_INF);
const comb = (op: ReduceOp, a: string, b: string) => (op === 'sum' ? `${a} + ${b}` : `max(${a}, ${b})`);

/** inner == 1, x [outer, n] -> o [outer]: one workgroup per row ('gpu') or one thread per row ('software'). */
export const rows = {
  gpu: (op: ReduceOp) =>
    U.kernel(/* wgsl */ `${IO}
${REDUCE_FNS}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${ROW}
  if (row >= u.outer) { return; }
  var acc = ${init(op)};
  for (var j = lid; j < u.n; j = j + ${WG}u) { acc = ${comb(op, 'acc', 'x[row * u.n + j]')}; }
  let r = ${op === 'sum' ? 'wgSum' : 'wgMax'}(acc, lid);
  if (lid == 0u) { o[row] = r; }
}`),
  software: (op: ReduceOp) =>
    U.kernel(/* wgsl */ `${IO}
${ROW64}
  if (row >= u.outer) { return; }
  let base = row * u.n;
  var acc = ${init(op)};
  for (var j = 0u; j < u.n; j = j + 1u) { acc = ${comb(op, 'acc', 'x[base + j]')}; }
  o[row] = acc;
}`),
};

/** inner > 1: a thread per output walks n (both families). */
export const strided = (op: ReduceOp) =>
  U.kernel(/* wgsl */ `${IO}
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.outer * u.inner) { return; }
  let a = i / u.inner;
  let c = i % u.inner;
  var acc = ${init(op)};
  for (var j = 0u; j < u.n; j = j + 1u) { acc = ${comb(op, 'acc', 'x[(a * u.n + j) * u.inner + c]')}; }
  o[i] = acc;
}`);
