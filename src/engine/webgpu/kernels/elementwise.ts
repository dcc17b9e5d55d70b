/** Elementwise unary ops (forward and derivative) and the scalar ops affine (a·x + b) and pow. */
import type { UnaryOp } from '../../backend.js';
import { I, INDEX_1D, WG } from './common.js';
import { uniforms } from './uniforms.js';

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

const N = uniforms({ n: 'u32' });

export const unary = (op: UnaryOp) =>
  N.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.n) { return; }
  let x = a[i];
  o[i] = ${UNARY_EXPR[op]};
}`);

/** dx = dy · f'(x), from x and the forward's output y. */
export const unaryGrad = (op: UnaryOp) =>
  N.kernel(/* wgsl */ `
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
}`);

/** a·x + b, or x^e when isPow (one kernel for both scalar ops). */
export const affine = uniforms({ n: 'u32', a: 'f32', b: 'f32', e: 'f32', isPow: 'u32' }).kernel(/* wgsl */ `
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
}`);
