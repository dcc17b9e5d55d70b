/**
 * How a WebAssembly kernel is declared: a name, its arguments (declared once: the function's
 * prologue that loads them from the argument block and the host's packing both derive from the
 * declaration), and a body built from asm.ts expressions. Every kernel function has the signature
 * (args: i32, tid: i32, nt: i32): it does share `tid` of `nt` of its work.
 */
import { f32, Func, i32, type Code, type Local } from './asm.js';

export type ArgType = 'i32' | 'f32';

/** Builder context of one kernel body. */
export interface KernelCtx<A extends string> {
  f: Func;
  /** Arguments, loaded into locals by the prologue. */
  p: Record<A, Local>;
  tid: Local;
  nt: Local;
  /** Whether f32x4.relaxed_madd may be emitted. */
  relaxed: boolean;
  i32(): Local;
  f32(): Local;
  v128(): Local;
  /** Sets [start, end) to this thread's contiguous share of `total` units (total a local or constant). */
  share(total: Code, start: Local, end: Local): Code;
}

export interface KernelDef<A extends string = string> {
  name: string;
  args: Record<A, ArgType>;
  /** The argument names and types in declaration order (the argument block's layout), derived once. */
  names: A[];
  types: ArgType[];
  build(k: KernelCtx<A>): Code;
}

/** Declares a kernel; `build` runs when the module is generated. */
export function kernel<A extends string>(name: string, args: Record<A, ArgType>, build: (k: KernelCtx<A>) => Code): KernelDef<A> {
  const names = Object.keys(args) as A[];
  return { name, args, names, types: names.map((n) => args[n]), build };
}

/** The function of a kernel, with its argument prologue. */
export function buildKernel(def: KernelDef, relaxed: boolean): Func {
  const f = new Func(def.name, ['i32', 'i32', 'i32']);
  const p = {} as Record<string, Local>;
  const prologue: Code[] = def.names.map((n, i) => {
    const t = def.types[i];
    p[n] = f.local(t);
    return p[n].set(t === 'i32' ? i32.load(f.param(0).get(), i * 4) : f32.load(f.param(0).get(), i * 4));
  });
  const ctx: KernelCtx<string> = {
    f, p, tid: f.param(1), nt: f.param(2), relaxed,
    i32: () => f.local('i32'),
    f32: () => f.local('f32'),
    v128: () => f.local('v128'),
    share(total, start, end) {
      const chunk = f.local('i32');
      // chunk = ceil(total / nt); start = min(total, tid·chunk); end = min(total, start + chunk)
      return [
        ...chunk.set(i32.div_s(i32.add(total, i32.sub(this.nt.get(), i32.const(1))), this.nt.get())),
        ...start.set(i32.min_s(total, i32.mul(this.tid.get(), chunk.get()))),
        ...end.set(i32.min_s(total, i32.add(start.get(), chunk.get()))),
      ];
    },
  };
  f.body = [...prologue.flat(), ...def.build(ctx)];
  return f;
}

/** Argument values in declaration order, from a record keyed like the declaration. */
export function packArgs<A extends string>(def: KernelDef<A>, values: Record<A, number>): { types: ArgType[]; values: number[] } {
  return { types: def.types, values: def.names.map((n) => values[n]) };
}
