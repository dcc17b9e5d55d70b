/**
 * Elementwise ops with numpy broadcasting and their gradients.
 * Backward functions run under noGrad (see tensor.ts), so they may use the public ops freely.
 */
import type { BinaryOp, UnaryOp } from '../backend.js';
import { record, Tensor } from '../tensor.js';
import { broadcastShapes, broadcastStrides, sumTo, wrap } from './shape.js';

function unary(op: UnaryOp, x: Tensor): Tensor {
  x.assertAlive();
  const out = wrap(x.backend.unary(op, x.storage), x.shape);
  record(op, [x], [out], ([g]) => [g && wrap(x.backend.unaryGrad(op, x.storage, out.storage, g.storage), x.shape)]);
  return out;
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
/** x·sigmoid(x) (HF ACT2FN "silu"). */
export const silu = (x: Tensor) => unary('silu', x);
/** GELU, tanh approximation (HF "gelu_pytorch_tanh"): 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export const gelu = (x: Tensor) => unary('gelu_tanh', x);
export const relu = (x: Tensor) => unary('relu', x);
export const abs = (x: Tensor) => unary('abs', x);
export const square = (x: Tensor) => unary('square', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const tanh = (x: Tensor) => unary('tanh', x);

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  a.assertAlive();
  b.assertAlive();
  if (a.backend !== b.backend) throw new Error(`${op}: ${a.describe()} and ${b.describe()} live on different backends`);
  const shape = broadcastShapes(a.shape, b.shape);
  const storage = a.backend.binary(op, a.storage, b.storage, { shape, aStrides: broadcastStrides(a.shape, shape), bStrides: broadcastStrides(b.shape, shape) });
  return wrap(storage, shape);
}

/** a + b with broadcasting. */
export function add(a: Tensor, b: Tensor): Tensor {
  const out = binary('add', a, b);
  record('add', [a, b], [out], ([g]) => [g && sumTo(g, a.shape), g && sumTo(g, b.shape)]);
  return out;
}

/** a - b with broadcasting. */
export function sub(a: Tensor, b: Tensor): Tensor {
  const out = binary('sub', a, b);
  record('sub', [a, b], [out], ([g]) => [g && sumTo(g, a.shape), g && b.requiresGrad ? sumTo(neg(g), b.shape) : null]);
  return out;
}

/** a · b elementwise with broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  const out = binary('mul', a, b);
  record('mul', [a, b], [out], ([g]) => [
    g && a.requiresGrad ? sumTo(mul(g, b), a.shape) : null,
    g && b.requiresGrad ? sumTo(mul(g, a), b.shape) : null,
  ]);
  return out;
}

/** a / b elementwise with broadcasting. */
export function div(a: Tensor, b: Tensor): Tensor {
  const out = binary('div', a, b);
  record('div', [a, b], [out], ([g]) => {
    if (!g) return [null, null];
    const ga = binary('div', g, b);
    // d(a/b)/db = -a/b² = -(1/b)·out
    return [a.requiresGrad ? sumTo(ga, a.shape) : null, b.requiresGrad ? sumTo(neg(mul(ga, out)), b.shape) : null];
  });
  return out;
}

/** Elementwise maximum; the gradient goes to the larger input (to `a` on ties). */
export function maximum(a: Tensor, b: Tensor): Tensor {
  const out = binary('max', a, b);
  record('maximum', [a, b], [out], ([g]) => {
    if (!g) return [null, null];
    const ga = mul(g, binary('eq', out, a));
    return [sumTo(ga, a.shape), sumTo(sub(g, ga), b.shape)];
  });
  return out;
}

/** 1 where a == b else 0 (no gradient). */
export const equal = (a: Tensor, b: Tensor) => binary('eq', a, b);
/** 1 where a > b else 0 (no gradient). */
export const greater = (a: Tensor, b: Tensor) => binary('gt', a, b);

/** scale·x + shift, elementwise. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  x.assertAlive();
  const out = wrap(x.backend.affine(x.storage, scale, shift), x.shape);
  record('affine', [x], [out], ([g]) => [g && wrap(x.backend.affine(g.storage, scale, 0), x.shape)]);
  return out;
}

export const mulScalar = (x: Tensor, c: number) => affine(x, c, 0);

/** x^e elementwise (x must be positive for non-integer e). */
export function pow(x: Tensor, e: number): Tensor {
  x.assertAlive();
  const out = wrap(x.backend.pow(x.storage, e), x.shape);
  record('pow', [x], [out], ([g]) => [g && mul(g, affine(wrap(x.backend.pow(x.storage, e - 1), x.shape), e))]);
  return out;
}
