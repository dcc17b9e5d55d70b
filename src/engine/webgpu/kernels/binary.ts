/** Broadcasting binary ops (the backward of each is built from other ops in ../../ops). */
import type { BinaryOp } from '../../backend.js';
import { I, INDEX_1D, STRIDED, WG } from './common.js';
import { uniforms } from './uniforms.js';

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

const U = uniforms({ shape: 'arr8', sa: 'arr8', sb: 'arr8', rank: 'u32', n: 'u32' });

/**
 * `o = a ⊕ b` over a shape with per-operand strides. Layouts that skip the per-element stride
 * decomposition (its integer divisions dominate on software adapters): 'contiguous', both operands
 * row-major over the output's shape; 'rowvec', a row-major and b a vector along the last axis
 * (x + bias).
 */
export function binary(op: BinaryOp, layout: 'contiguous' | 'rowvec' | 'strided') {
  const index = {
    contiguous: 'let ia = i;\n  let ib = i;',
    rowvec: 'let ia = i;\n  let ib = i % u.shape[(u.rank - 1u) / 4u][(u.rank - 1u) % 4u];',
    strided: STRIDED('sa', 'sb'),
  }[layout];
  return U.kernel(/* wgsl */ `
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
}`);
}
