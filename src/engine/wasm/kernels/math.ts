/**
 * Scalar f32 transcendental functions for the WebAssembly kernels (WebAssembly has no exp or log
 * instruction), and the unary ops with their derivatives written on them.
 *
 * exp: Cody-Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, degree-6 Taylor polynomial of e^r
 * (truncation error < 2e-7 relative), scaled by 2^n through the exponent bits; below -87.3 it flushes
 * to 0 (as GPUs flush denormals), above 88.72 it is +inf. log: x = m·2^e with m in [√½, √2),
 * log m = 2·atanh(s), s = (m-1)/(m+1), odd series to s^9 (error < 4e-10).
 */
import type { UnaryOp } from '../../backend.js';
import { Func, f32, i32, select, type Code, type Local } from '../asm.js';
import { expf, logf } from '../kernel.js';

const horner = (x: Code, coefs: number[]): Code => coefs.slice(1).reduce<Code>((acc, c) => f32.add(f32.mul(acc, x), f32.const(c)), f32.const(coefs[0]));

/** The module's `exp(x: f32) -> f32`. */
export function expFunc(): Func {
  const f = new Func('exp', ['f32'], 'f32', false);
  const x = f.param(0), n = f.local('f32'), r = f.local('f32'), y = f.local('f32');
  f.body = [
    ...n.set(f32.nearest(f32.mul(f32.min(x.get(), f32.const(88.3)), f32.const(Math.LOG2E)))),
    ...r.set(f32.sub(f32.sub(x.get(), f32.mul(n.get(), f32.const(0.693359375))), f32.mul(n.get(), f32.const(-2.12194440e-4)))),
    // 2^n by the exponent field; n ≥ -126 keeps it normal, smaller x returns 0 below
    ...y.set(f32.mul(horner(r.get(), [1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1, 1]), f32.reinterpret_i32(i32.shl(i32.add(i32.trunc_f32_s(f32.max(n.get(), f32.const(-126))), i32.const(127)), i32.const(23))))),
    ...select(f32.const(0), select(f32.const(Infinity), y.get(), f32.gt(x.get(), f32.const(88.72))), f32.lt(x.get(), f32.const(-87.3))),
  ];
  return f;
}

/** The module's `log(x: f32) -> f32` (-inf at 0, NaN below, +inf at +inf). */
export function logFunc(): Func {
  const f = new Func('log', ['f32'], 'f32', false);
  const x = f.param(0), bits = f.local('i32'), e = f.local('i32'), m = f.local('f32'), s = f.local('f32'), s2 = f.local('f32'), y = f.local('f32');
  const big = f32.gt(m.get(), f32.const(Math.SQRT2));
  f.body = [
    ...bits.set(i32.reinterpret_f32(x.get())),
    ...e.set(i32.sub(i32.shr_s(bits.get(), i32.const(23)), i32.const(127))),
    ...m.set(f32.reinterpret_i32(i32.or(i32.and(bits.get(), i32.const(0x7fffff)), i32.const(0x3f800000)))),
    ...e.set(i32.add(e.get(), big)),
    ...m.set(select(f32.mul(m.get(), f32.const(0.5)), m.get(), big)),
    ...s.set(f32.div(f32.sub(m.get(), f32.const(1)), f32.add(m.get(), f32.const(1)))),
    ...s2.set(f32.mul(s.get(), s.get())),
    ...y.set(f32.add(f32.mul(f32.convert_i32_s(e.get()), f32.const(Math.LN2)), f32.mul(f32.mul(f32.const(2), s.get()), horner(s2.get(), [1 / 9, 1 / 7, 1 / 5, 1 / 3, 1])))),
    // zero and denormals -> -inf, negatives and NaN -> NaN, +inf -> +inf
    ...select(
      y.get(),
      select(f32.const(-Infinity), select(x.get(), f32.const(NaN), f32.eq(x.get(), f32.const(Infinity))), f32.eq(f32.max(x.get(), f32.const(0)), f32.const(0))),
      i32.and(f32.ge(x.get(), f32.const(1.1754944e-38)), f32.lt(x.get(), f32.const(Infinity))),
    ),
  ];
  return f;
}

const GELU_C = Math.sqrt(2 / Math.PI);
const sigmoid = (x: Code) => f32.div(f32.const(1), f32.add(f32.const(1), expf(f32.neg(x))));
/** tanh(x) = 1 - 2/(e^{2x}+1): exact limits ±1 at overflow. */
const tanh = (x: Code) => f32.sub(f32.const(1), f32.div(f32.const(2), f32.add(expf(f32.mul(f32.const(2), x)), f32.const(1))));
const geluInner = (x: Local) => f32.mul(f32.const(GELU_C), f32.add(x.get(), f32.mul(f32.const(0.044715), f32.mul(x.get(), f32.mul(x.get(), x.get())))));

/** y = op(x) for each unary op, as in the CPU reference. */
export const unaryCode: Record<UnaryOp, (x: Local) => Code> = {
  neg: (x) => f32.neg(x.get()),
  exp: (x) => expf(x.get()),
  log: (x) => logf(x.get()),
  sqrt: (x) => f32.sqrt(x.get()),
  rsqrt: (x) => f32.div(f32.const(1), f32.sqrt(x.get())),
  silu: (x) => f32.mul(x.get(), sigmoid(x.get())),
  gelu_tanh: (x) => f32.mul(f32.mul(f32.const(0.5), x.get()), f32.add(f32.const(1), tanh(geluInner(x)))),
  relu: (x) => select(x.get(), f32.const(0), f32.gt(x.get(), f32.const(0))),
  abs: (x) => f32.abs(x.get()),
  square: (x) => f32.mul(x.get(), x.get()),
  sigmoid: (x) => sigmoid(x.get()),
  tanh: (x) => tanh(x.get()),
};

/** dy/dx of each op from x and y = op(x) (t: a scratch local), as in the CPU reference. */
export const derivCode: Record<UnaryOp, (x: Local, y: Local, t: Local) => Code> = {
  neg: () => f32.const(-1),
  exp: (_x, y) => y.get(),
  log: (x) => f32.div(f32.const(1), x.get()),
  sqrt: (_x, y) => f32.div(f32.const(0.5), y.get()),
  rsqrt: (_x, y) => f32.mul(f32.const(-0.5), f32.mul(y.get(), f32.mul(y.get(), y.get()))),
  silu: (x, _y, t) => [...t.set(sigmoid(x.get())), ...f32.mul(t.get(), f32.add(f32.const(1), f32.mul(x.get(), f32.sub(f32.const(1), t.get()))))],
  gelu_tanh: (x, _y, t) => [
    ...t.set(tanh(geluInner(x))),
    ...f32.add(
      f32.mul(f32.const(0.5), f32.add(f32.const(1), t.get())),
      f32.mul(f32.mul(f32.mul(f32.const(0.5), x.get()), f32.sub(f32.const(1), f32.mul(t.get(), t.get()))), f32.mul(f32.const(GELU_C), f32.add(f32.const(1), f32.mul(f32.const(3 * 0.044715), f32.mul(x.get(), x.get()))))),
    ),
  ],
  relu: (x) => select(f32.const(1), f32.const(0), f32.gt(x.get(), f32.const(0))),
  abs: (x) => select(f32.const(1), select(f32.const(-1), f32.const(0), f32.lt(x.get(), f32.const(0))), f32.gt(x.get(), f32.const(0))),
  square: (x) => f32.mul(f32.const(2), x.get()),
  sigmoid: (_x, y) => f32.mul(y.get(), f32.sub(f32.const(1), y.get())),
  tanh: (_x, y) => f32.sub(f32.const(1), f32.mul(y.get(), y.get())),
};
