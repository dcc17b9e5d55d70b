/**
 * A small WebAssembly assembler: the engine's CPU kernels are written in TypeScript as expression
 * trees and encoded to a module at run time (as jax-js's WebAssembly backend does), so that a clean
 * clone needs no toolchain and the module can be specialised to the runtime (relaxed-SIMD fused
 * multiply-add where it validates, shared memory where threads are possible).
 *
 * Encoding follows the WebAssembly core spec 2.0 (binary format, chapter 5) plus the fixed-width
 * SIMD and relaxed-SIMD proposals. Every helper returns the bytes of one instruction sequence
 * (`Code`); a kernel body is nested calls, e.g. `f32.store(addr, f32.add(f32.load(a), x))`.
 */

export type Code = number[];
type Arg = Code | number;

/** Unsigned LEB128 (spec 5.2.2). */
function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
function sleb(v: number): number[] {
  v |= 0;
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const flat = (...parts: Arg[]): Code => parts.flatMap((p) => (typeof p === 'number' ? [p] : p));
/** Instructions one after another. */
export const seq = (...parts: (Code | Code[])[]): Code => parts.flat(2) as Code;

export type ValType = 'i32' | 'f32' | 'v128';
const TYPE_BYTE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b };

/** A local variable (parameter or declared local) of a function under construction. */
export class Local {
  constructor(readonly index: number, readonly type: ValType) {}
  get(): Code {
    return [0x20, ...uleb(this.index)];
  }
  set(v: Code): Code {
    return [...v, 0x21, ...uleb(this.index)];
  }
  tee(v: Code): Code {
    return [...v, 0x22, ...uleb(this.index)];
  }
}

const memarg = (align: number, offset: number) => [align, ...uleb(offset)];
const simd = (op: number) => [0xfd, ...uleb(op)];

export const i32 = {
  const: (v: number): Code => [0x41, ...sleb(v)],
  load: (addr: Code, offset = 0): Code => flat(addr, 0x28, memarg(2, offset)),
  store: (addr: Code, v: Code, offset = 0): Code => flat(addr, v, 0x36, memarg(2, offset)),
  eqz: (a: Code): Code => flat(a, 0x45),
  eq: (a: Code, b: Code): Code => flat(a, b, 0x46),
  ne: (a: Code, b: Code): Code => flat(a, b, 0x47),
  lt_s: (a: Code, b: Code): Code => flat(a, b, 0x48),
  gt_s: (a: Code, b: Code): Code => flat(a, b, 0x4a),
  le_s: (a: Code, b: Code): Code => flat(a, b, 0x4c),
  ge_s: (a: Code, b: Code): Code => flat(a, b, 0x4e),
  add: (a: Code, b: Code): Code => flat(a, b, 0x6a),
  sub: (a: Code, b: Code): Code => flat(a, b, 0x6b),
  mul: (a: Code, b: Code): Code => flat(a, b, 0x6c),
  div_s: (a: Code, b: Code): Code => flat(a, b, 0x6d),
  rem_s: (a: Code, b: Code): Code => flat(a, b, 0x6f),
  and: (a: Code, b: Code): Code => flat(a, b, 0x71),
  or: (a: Code, b: Code): Code => flat(a, b, 0x72),
  shl: (a: Code, b: Code): Code => flat(a, b, 0x74),
  shr_s: (a: Code, b: Code): Code => flat(a, b, 0x75),
  min_s: (a: Code, b: Code): Code => select(a, b, i32.lt_s(a, b)),
  max_s: (a: Code, b: Code): Code => select(a, b, i32.gt_s(a, b)),
  trunc_f32_s: (a: Code): Code => flat(a, 0xa8),
  reinterpret_f32: (a: Code): Code => flat(a, 0xbc),
};

export const f32 = {
  const: (v: number): Code => {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    return [0x43, ...b];
  },
  load: (addr: Code, offset = 0): Code => flat(addr, 0x2a, memarg(2, offset)),
  store: (addr: Code, v: Code, offset = 0): Code => flat(addr, v, 0x38, memarg(2, offset)),
  eq: (a: Code, b: Code): Code => flat(a, b, 0x5b),
  lt: (a: Code, b: Code): Code => flat(a, b, 0x5d),
  gt: (a: Code, b: Code): Code => flat(a, b, 0x5e),
  ge: (a: Code, b: Code): Code => flat(a, b, 0x60),
  abs: (a: Code): Code => flat(a, 0x8b),
  neg: (a: Code): Code => flat(a, 0x8c),
  nearest: (a: Code): Code => flat(a, 0x90),
  sqrt: (a: Code): Code => flat(a, 0x91),
  add: (a: Code, b: Code): Code => flat(a, b, 0x92),
  sub: (a: Code, b: Code): Code => flat(a, b, 0x93),
  mul: (a: Code, b: Code): Code => flat(a, b, 0x94),
  div: (a: Code, b: Code): Code => flat(a, b, 0x95),
  /** IEEE min/max (NaN-propagating, as WGSL and torch). */
  min: (a: Code, b: Code): Code => flat(a, b, 0x96),
  max: (a: Code, b: Code): Code => flat(a, b, 0x97),
  convert_i32_s: (a: Code): Code => flat(a, 0xb2),
  reinterpret_i32: (a: Code): Code => flat(a, 0xbe),
};

export const v128 = {
  load: (addr: Code, offset = 0): Code => flat(addr, simd(0x00), memarg(4, offset)),
  /** One f32 from memory, in all four lanes. */
  load32_splat: (addr: Code, offset = 0): Code => flat(addr, simd(0x09), memarg(2, offset)),
  store: (addr: Code, v: Code, offset = 0): Code => flat(addr, v, simd(0x0b), memarg(4, offset)),
  and: (a: Code, b: Code): Code => flat(a, b, simd(0x4e)),
  or: (a: Code, b: Code): Code => flat(a, b, simd(0x50)),
  not: (a: Code): Code => flat(a, simd(0x4d)),
  /** Lanes of `a` where `mask` is all ones, else of `b`. */
  bitselect: (a: Code, b: Code, mask: Code): Code => flat(a, b, mask, simd(0x52)),
};

export const f32x4 = {
  splat: (a: Code): Code => flat(a, simd(0x13)),
  extract_lane: (a: Code, lane: number): Code => flat(a, simd(0x1f), lane),
  eq: (a: Code, b: Code): Code => flat(a, b, simd(0x41)),
  lt: (a: Code, b: Code): Code => flat(a, b, simd(0x43)),
  gt: (a: Code, b: Code): Code => flat(a, b, simd(0x44)),
  ge: (a: Code, b: Code): Code => flat(a, b, simd(0x46)),
  nearest: (a: Code): Code => flat(a, simd(0x6a)),
  abs: (a: Code): Code => flat(a, simd(0xe0)),
  neg: (a: Code): Code => flat(a, simd(0xe1)),
  sqrt: (a: Code): Code => flat(a, simd(0xe3)),
  add: (a: Code, b: Code): Code => flat(a, b, simd(0xe4)),
  sub: (a: Code, b: Code): Code => flat(a, b, simd(0xe5)),
  mul: (a: Code, b: Code): Code => flat(a, b, simd(0xe6)),
  div: (a: Code, b: Code): Code => flat(a, b, simd(0xe7)),
  min: (a: Code, b: Code): Code => flat(a, b, simd(0xe8)),
  max: (a: Code, b: Code): Code => flat(a, b, simd(0xe9)),
  convert_i32x4_s: (a: Code): Code => flat(a, simd(0xfa)),
  /** a·b + c: one rounding with relaxed SIMD (fused where the CPU has FMA), else mul then add. */
  madd: (a: Code, b: Code, c: Code, relaxed: boolean): Code => (relaxed ? flat(a, b, c, simd(0x105)) : f32x4.add(f32x4.mul(a, b), c)),
};

export const i32x4 = {
  /** A constant vector of four i32 lanes (v128.const). */
  const: (lanes: [number, number, number, number]): Code => {
    const bytes = new DataView(new ArrayBuffer(16));
    lanes.forEach((v, i) => bytes.setInt32(4 * i, v, true)); // the binary format is little-endian
    return flat(simd(0x0c), [...new Uint8Array(bytes.buffer)]);
  },
  splat: (a: Code): Code => flat(a, simd(0x11)),
  eq: (a: Code, b: Code): Code => flat(a, b, simd(0x37)),
  lt_s: (a: Code, b: Code): Code => flat(a, b, simd(0x39)),
  add: (a: Code, b: Code): Code => flat(a, b, simd(0xae)),
  sub: (a: Code, b: Code): Code => flat(a, b, simd(0xb1)),
  shr_s: (a: Code, b: Code): Code => flat(a, b, simd(0xac)),
  shl: (a: Code, b: Code): Code => flat(a, b, simd(0xab)),
  trunc_sat_f32x4_s: (a: Code): Code => flat(a, simd(0xf8)),
};

export function select(a: Code, b: Code, cond: Code): Code {
  return flat(a, b, cond, 0x1b);
}

/** `if (cond) then [else otherwise]` as a statement. */
export function ifThen(cond: Code, then: Code, otherwise?: Code): Code {
  return otherwise ? flat(cond, 0x04, 0x40, then, 0x05, otherwise, 0x0b) : flat(cond, 0x04, 0x40, then, 0x0b);
}

/** `for (i = from; i < to; i += step) body`; `to` is re-evaluated each iteration (pass a local). */
export function forRange(i: Local, from: Code, to: Code, body: Code, step: Code = i32.const(1)): Code {
  return flat(i.set(from), 0x02, 0x40, 0x03, 0x40, i32.ge_s(i.get(), to), 0x0d, 1, body, i.set(i32.add(i.get(), step)), 0x0c, 0, 0x0b, 0x0b);
}

export const call = (fn: number, ...args: Code[]): Code => flat(...args, 0x10, uleb(fn));

/** A function under construction: parameters, locals by name, and its body. */
export class Func {
  private readonly locals: Local[] = [];
  body: Code = [];
  constructor(
    readonly name: string,
    readonly params: ValType[],
    readonly result?: ValType,
    readonly exported = true,
  ) {
    params.forEach((t, i) => this.locals.push(new Local(i, t)));
  }
  param(i: number): Local {
    return this.locals[i];
  }
  local(type: ValType): Local {
    const l = new Local(this.locals.length, type);
    this.locals.push(l);
    return l;
  }
  encode(): number[] {
    const decls = this.locals.slice(this.params.length).map((l) => [1, TYPE_BYTE[l.type]]);
    const body = [...uleb(decls.length), ...decls.flat(), ...this.body, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const name = (s: string) => {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
};

/**
 * Encodes a module that imports `env.memory` (shared when `shared`, maximum `maxPages` 64 KiB pages)
 * and holds `funcs` (in order: a function's index for `call` is its position), exporting those marked.
 */
export function encodeModule(funcs: Func[], memory: { initialPages: number; maxPages: number; shared: boolean }): Uint8Array {
  const sig = (f: Func) => [0x60, ...vec(f.params.map((t) => [TYPE_BYTE[t]])), ...(f.result ? [1, TYPE_BYTE[f.result]] : [0])];
  const limits = [memory.shared ? 0x03 : 0x01, ...uleb(memory.initialPages), ...uleb(memory.maxPages)];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(funcs.map(sig))),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, ...limits]])),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(funcs.flatMap((f, i) => (f.exported ? [[...name(f.name), 0x00, ...uleb(i)]] : [])))),
    ...section(10, vec(funcs.map((f) => f.encode()))),
  ];
  return new Uint8Array(bytes);
}

/** Whether this runtime validates relaxed-SIMD's f32x4.relaxed_madd (Chrome 114+, Node 22+). */
export function hasRelaxedSimd(): boolean {
  const f = new Func('t', [], 'v128');
  const z = f32x4.splat(f32.const(0));
  f.body = f32x4.madd(z, z, z, true);
  return WebAssembly.validate(encodeModule([f], { initialPages: 0, maxPages: 1, shared: false }) as BufferSource);
}
