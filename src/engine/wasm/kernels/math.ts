/**
 * The f32 transcendental functions of the WebAssembly kernels (WebAssembly has no exp or log
 * instruction) and the unary ops with their derivatives, each written once over `Lanes`: scalar f32
 * (tails, per-row statistics) or four lanes of f32x4 (the bulk of elementwise kernels).
 *
 * exp: Cody-Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, degree-6 Taylor polynomial of e^r
 * (truncation error < 2e-7 relative), scaled by 2^n through the exponent bits; below -87.3 it flushes
 * to 0 (as GPUs flush denormals), above 88.72 it is +inf, NaN stays NaN. log: x = m·2^e with m in
 * [√½, √2), log m = 2·atanh(s), s = (m-1)/(m+1), odd series to s^9 (error < 4e-10); -inf at 0 (and
 * denormals), NaN below 0, +inf at +inf.
 */
import type { UnaryOp } from '../../backend.js';
import { call, f32, f32x4, Func, i32, i32x4, select, seq, v128, type Code, type Local, type ValType } from '../asm.js';

/** Arithmetic on one lane type; comparisons give a condition that `sel` consumes. */
export interface Lanes {
  type: 'f32' | 'v128';
  c(v: number): Code;
  add(a: Code, b: Code): Code;
  sub(a: Code, b: Code): Code;
  mul(a: Code, b: Code): Code;
  div(a: Code, b: Code): Code;
  min(a: Code, b: Code): Code;
  max(a: Code, b: Code): Code;
  neg(a: Code): Code;
  abs(a: Code): Code;
  sqrt(a: Code): Code;
  exp(a: Code): Code;
  log(a: Code): Code;
  gt(a: Code, b: Code): Code;
  lt(a: Code, b: Code): Code;
  eq(a: Code, b: Code): Code;
  /** cond ? a : b (both evaluated) */
  sel(a: Code, b: Code, cond: Code): Code;
  load(addr: Code): Code;
  store(addr: Code, v: Code): Code;
}

/** Module indices of the library functions (placed first in the module by libraryFuncs()). */
const LIB = { exp: 0, log: 1, expV: 2, logV: 3 } as const;

export const scalar: Lanes = {
  type: 'f32',
  c: f32.const, add: f32.add, sub: f32.sub, mul: f32.mul, div: f32.div, min: f32.min, max: f32.max,
  neg: f32.neg, abs: f32.abs, sqrt: f32.sqrt,
  exp: (a) => call(LIB.exp, a), log: (a) => call(LIB.log, a),
  gt: f32.gt, lt: f32.lt, eq: f32.eq,
  sel: select,
  load: (addr) => f32.load(addr), store: (addr, v) => f32.store(addr, v),
};

export const vector: Lanes = {
  type: 'v128',
  c: (v) => f32x4.splat(f32.const(v)), add: f32x4.add, sub: f32x4.sub, mul: f32x4.mul, div: f32x4.div, min: f32x4.min, max: f32x4.max,
  neg: f32x4.neg, abs: f32x4.abs, sqrt: f32x4.sqrt,
  exp: (a) => call(LIB.expV, a), log: (a) => call(LIB.logV, a),
  gt: f32x4.gt, lt: f32x4.lt, eq: f32x4.eq,
  sel: v128.bitselect,
  load: (addr) => v128.load(addr), store: (addr, v) => v128.store(addr, v),
};

/** Scalar or per-lane 32-bit integer ops on float bit patterns, for exp's scale and log's split. */
const bits = {
  f32: { c: i32.const, add: i32.add, sub: i32.sub, and: i32.and, or: i32.or, toInt: (a: Code) => i32.trunc_f32_s(a), toFloat: f32.convert_i32_s, asFloat: f32.reinterpret_i32, asInt: i32.reinterpret_f32 },
  v128: {
    c: (v: number) => i32x4.splat(i32.const(v)), add: i32x4.add, sub: i32x4.sub, and: v128.and, or: v128.or,
    toInt: i32x4.trunc_sat_f32x4_s, toFloat: f32x4.convert_i32x4_s, asFloat: (a: Code) => a, asInt: (a: Code) => a,
  },
};

/** The smallest normal f32: below it (denormals, 0) log is -inf. */
const TINY = 1.1754944e-38;

const horner = (L: Lanes, x: Code, coefs: number[]): Code => coefs.slice(1).reduce<Code>((acc, c) => L.add(L.mul(acc, x), L.c(c)), L.c(coefs[0]));

function expFunc(L: Lanes, name: string): Func {
  const t = L.type as ValType;
  const B = bits[L.type];
  const f = new Func(name, [t], t, false);
  const x = f.param(0), n = f.local(t), r = f.local(t), y = f.local(t);
  // the shift amount of i32x4.shl is a scalar i32
  const shl23 = L.type === 'v128' ? (a: Code) => i32x4.shl(a, i32.const(23)) : (a: Code) => i32.shl(a, i32.const(23));
  f.body = [
    ...n.set(f32Nearest(L, L.mul(L.min(x.get(), L.c(88.3)), L.c(Math.LOG2E)))),
    ...r.set(L.sub(L.sub(x.get(), L.mul(n.get(), L.c(0.693359375))), L.mul(n.get(), L.c(-2.12194440e-4)))),
    // 2^n by the exponent field; n ≥ -126 keeps it normal, smaller x returns 0 below
    ...y.set(L.mul(horner(L, r.get(), [1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1, 1]), B.asFloat(shl23(B.add(B.toInt(L.max(n.get(), L.c(-126))), B.c(127)))))),
    ...L.sel(L.c(0), L.sel(L.c(Infinity), y.get(), L.gt(x.get(), L.c(88.72))), L.lt(x.get(), L.c(-87.3))),
  ];
  return f;
}

const f32Nearest = (L: Lanes, a: Code) => (L.type === 'f32' ? f32.nearest(a) : f32x4.nearest(a));

function logFunc(L: Lanes, name: string): Func {
  const t = L.type as ValType;
  const B = bits[L.type];
  const f = new Func(name, [t], t, false);
  const x = f.param(0), e = f.local(t), m = f.local(t), big = f.local(t), s = f.local(t), s2 = f.local(t), y = f.local(t);
  const shr23 = L.type === 'v128' ? (a: Code) => i32x4.shr_s(a, i32.const(23)) : (a: Code) => i32.shr_s(a, i32.const(23));
  // e and m live in float-typed locals (v128 is untyped; scalars reinterpret)
  const eInt = L.type === 'f32' ? i32.reinterpret_f32(e.get()) : e.get();
  const asLocal = (a: Code) => (L.type === 'f32' ? f32.reinterpret_i32(a) : a);
  /** lo ≤ x < hi */
  const within = (lo: number, hi: number) => (L.type === 'f32'
    ? i32.and(f32.ge(x.get(), f32.const(lo)), f32.lt(x.get(), f32.const(hi)))
    : v128.and(f32x4.ge(x.get(), L.c(lo)), f32x4.lt(x.get(), L.c(hi))));
  f.body = [
    ...e.set(asLocal(B.sub(shr23(B.asInt(x.get())), B.c(127)))),
    ...m.set(B.asFloat(B.or(B.and(B.asInt(x.get()), B.c(0x7fffff)), B.c(0x3f800000)))),
    ...(L.type === 'f32'
      ? [...e.set(f32.reinterpret_i32(i32.add(eInt, f32.gt(m.get(), f32.const(Math.SQRT2))))), ...m.set(select(f32.mul(m.get(), f32.const(0.5)), m.get(), f32.gt(m.get(), f32.const(Math.SQRT2))))]
      : [...big.set(f32x4.gt(m.get(), L.c(Math.SQRT2))), ...e.set(i32x4.sub(e.get(), big.get())), ...m.set(v128.bitselect(f32x4.mul(m.get(), L.c(0.5)), m.get(), big.get()))]),
    ...s.set(L.div(L.sub(m.get(), L.c(1)), L.add(m.get(), L.c(1)))),
    ...s2.set(L.mul(s.get(), s.get())),
    ...y.set(L.add(L.mul(B.toFloat(eInt), L.c(Math.LN2)), L.mul(L.mul(L.c(2), s.get()), horner(L, s2.get(), [1 / 9, 1 / 7, 1 / 5, 1 / 3, 1])))),
    // zero and denormals -> -inf, negatives and NaN -> NaN, +inf -> +inf
    ...L.sel(y.get(), L.sel(L.c(-Infinity), L.sel(x.get(), L.c(NaN), L.eq(x.get(), L.c(Infinity))), within(0, TINY)), within(TINY, Infinity)),
  ];
  return f;
}

/** Sum of the 4 lanes of `v` (through the v128 local `t`). */
export const hsum = (v: Code, t: Local): Code => seq(
  t.set(v),
  f32.add(f32.add(f32x4.extract_lane(t.get(), 0), f32x4.extract_lane(t.get(), 1)), f32.add(f32x4.extract_lane(t.get(), 2), f32x4.extract_lane(t.get(), 3))),
);
/** Max of the 4 lanes of `v` (through the v128 local `t`). */
export const hmax = (v: Code, t: Local): Code => seq(
  t.set(v),
  f32.max(f32.max(f32x4.extract_lane(t.get(), 0), f32x4.extract_lane(t.get(), 1)), f32.max(f32x4.extract_lane(t.get(), 2), f32x4.extract_lane(t.get(), 3))),
);

export const expf = scalar.exp;
export const logf = scalar.log;

/** The library functions, in LIB order. */
export function libraryFuncs(): Func[] {
  return [expFunc(scalar, 'exp'), logFunc(scalar, 'log'), expFunc(vector, 'expV'), logFunc(vector, 'logV')];
}

const GELU_C = Math.sqrt(2 / Math.PI);
const sigmoid = (L: Lanes, x: Code) => L.div(L.c(1), L.add(L.c(1), L.exp(L.neg(x))));
/** tanh(x) = 1 - 2/(e^{2x}+1): exact limits ±1 at overflow. */
const tanh = (L: Lanes, x: Code) => L.sub(L.c(1), L.div(L.c(2), L.add(L.exp(L.mul(L.c(2), x)), L.c(1))));
const geluInner = (L: Lanes, x: Local) => L.mul(L.c(GELU_C), L.add(x.get(), L.mul(L.c(0.044715), L.mul(x.get(), L.mul(x.get(), x.get())))));

/** y = op(x) for each unary op, as in the CPU reference. */
export const unaryCode: Record<UnaryOp, (L: Lanes, x: Local) => Code> = {
  neg: (L, x) => L.neg(x.get()),
  exp: (L, x) => L.exp(x.get()),
  log: (L, x) => L.log(x.get()),
  sqrt: (L, x) => L.sqrt(x.get()),
  rsqrt: (L, x) => L.div(L.c(1), L.sqrt(x.get())),
  silu: (L, x) => L.mul(x.get(), sigmoid(L, x.get())),
  gelu_tanh: (L, x) => L.mul(L.mul(L.c(0.5), x.get()), L.add(L.c(1), tanh(L, geluInner(L, x)))),
  relu: (L, x) => L.sel(x.get(), L.c(0), L.gt(x.get(), L.c(0))),
  abs: (L, x) => L.abs(x.get()),
  square: (L, x) => L.mul(x.get(), x.get()),
  sigmoid: (L, x) => sigmoid(L, x.get()),
  tanh: (L, x) => tanh(L, x.get()),
};

/** dy/dx of each op from x and y = op(x) (t: a scratch local of the lane type), as in the CPU reference. */
export const derivCode: Record<UnaryOp, (L: Lanes, x: Local, y: Local, t: Local) => Code> = {
  neg: (L) => L.c(-1),
  exp: (_L, _x, y) => y.get(),
  log: (L, x) => L.div(L.c(1), x.get()),
  sqrt: (L, _x, y) => L.div(L.c(0.5), y.get()),
  rsqrt: (L, _x, y) => L.mul(L.c(-0.5), L.mul(y.get(), L.mul(y.get(), y.get()))),
  silu: (L, x, _y, t) => [...t.set(sigmoid(L, x.get())), ...L.mul(t.get(), L.add(L.c(1), L.mul(x.get(), L.sub(L.c(1), t.get()))))],
  gelu_tanh: (L, x, _y, t) => [
    ...t.set(tanh(L, geluInner(L, x))),
    ...L.add(
      L.mul(L.c(0.5), L.add(L.c(1), t.get())),
      L.mul(L.mul(L.mul(L.c(0.5), x.get()), L.sub(L.c(1), L.mul(t.get(), t.get()))), L.mul(L.c(GELU_C), L.add(L.c(1), L.mul(L.c(3 * 0.044715), L.mul(x.get(), x.get()))))),
    ),
  ],
  relu: (L, x) => L.sel(L.c(1), L.c(0), L.gt(x.get(), L.c(0))),
  abs: (L, x) => L.sel(L.c(1), L.sel(L.c(-1), L.c(0), L.lt(x.get(), L.c(0))), L.gt(x.get(), L.c(0))),
  square: (L, x) => L.mul(L.c(2), x.get()),
  sigmoid: (L, _x, y) => L.mul(y.get(), L.sub(L.c(1), y.get())),
  tanh: (L, _x, y) => L.sub(L.c(1), L.mul(y.get(), y.get())),
};
