/**
 * Elementwise kernels: unary ops and their gradients, affine and pow, binary ops over up to four
 * broadcast (strided) dimensions, and the strided copy behind permute/narrow/concat. Binary and copy
 * take the innermost dimension with SIMD when it is contiguous (or broadcast) in every operand.
 */
import type { BinaryOp, UnaryOp } from '../../backend.js';
import { f32, f32x4, forRange, i32, select, seq, v128, type Code, type Local } from '../asm.js';
import { kernel, type KernelCtx, type KernelDef } from '../kernel.js';
import { derivCode, expf, logf, scalar, unaryCode, vector, type Lanes } from './math.js';

/** Byte address of element `i` (a local) of the f32 array at `base`. */
export const at = (base: Local, i: Code): Code => i32.add(base.get(), i32.shl(i, i32.const(2)));

/**
 * This thread's share of n elements: `vec(L, i)` for 4 elements at a time (L = vector lanes), then
 * `vec(L, i)` with scalar lanes for the tail. Shares are whole quads so that only the last thread has a tail.
 */
export function lanesLoop(k: KernelCtx<string>, n: Local, body: (L: Lanes, i: Local) => Code): Code {
  const q = k.i32(), qs = k.i32(), qe = k.i32(), i = k.i32(), end4 = k.i32(), end = k.i32();
  return seq(
    q.set(i32.shr_s(i32.add(n.get(), i32.const(3)), i32.const(2))),
    k.share(q.get(), qs, qe),
    end.set(i32.min_s(n.get(), i32.shl(qe.get(), i32.const(2)))),
    end4.set(i32.and(end.get(), i32.const(-4))),
    forRange(i, i32.shl(qs.get(), i32.const(2)), end4.get(), body(vector, i), i32.const(4)),
    forRange(i, i32.max_s(end4.get(), i32.shl(qs.get(), i32.const(2))), end.get(), body(scalar, i)),
  );
}

/** A local of the lane type for each of scalar and vector code paths. */
const laneLocal = (k: KernelCtx<string>, L: Lanes): Local => (L.type === 'f32' ? k.f32() : k.v128());

export const unaryKernels = Object.fromEntries(
  (Object.keys(unaryCode) as UnaryOp[]).map((op) => [
    op,
    kernel(`unary_${op}`, { x: 'i32', out: 'i32', n: 'i32' }, (k) => {
      const { x, out, n } = k.p;
      return lanesLoop(k as unknown as KernelCtx<string>, n, (L, i) => {
        const v = laneLocal(k as unknown as KernelCtx<string>, L);
        return seq(v.set(L.load(at(x, i.get()))), L.store(at(out, i.get()), unaryCode[op](L, v)));
      });
    }),
  ]),
) as Record<UnaryOp, KernelDef>;

export const unaryGradKernels = Object.fromEntries(
  (Object.keys(derivCode) as UnaryOp[]).map((op) => [
    op,
    kernel(`unary_grad_${op}`, { x: 'i32', y: 'i32', dy: 'i32', out: 'i32', n: 'i32' }, (k) => {
      const { x, y, dy, out, n } = k.p;
      const K = k as unknown as KernelCtx<string>;
      return lanesLoop(K, n, (L, i) => {
        const xv = laneLocal(K, L), yv = laneLocal(K, L), t = laneLocal(K, L);
        return seq(
          xv.set(L.load(at(x, i.get()))),
          yv.set(L.load(at(y, i.get()))),
          L.store(at(out, i.get()), L.mul(L.load(at(dy, i.get())), derivCode[op](L, xv, yv, t))),
        );
      });
    }),
  ]),
) as Record<UnaryOp, KernelDef>;

/** out = a·x + b. */
export const affineKernel = kernel('affine', { x: 'i32', out: 'i32', n: 'i32', a: 'f32', b: 'f32' }, (k) => {
  const { x, out, n, a, b } = k.p;
  return lanesLoop(k as unknown as KernelCtx<string>, n, (L, i) => {
    const splat = (v: Local) => (L.type === 'f32' ? v.get() : f32x4.splat(v.get()));
    return L.store(at(out, i.get()), L.add(L.mul(splat(a), L.load(at(x, i.get()))), splat(b)));
  });
});

/**
 * out = x^e as JavaScript's `**`: exp(e·log|x|), negative bases only for integer e (sign by parity,
 * NaN otherwise), 0^e = 0, 1 or inf, and x^0 = 1.
 */
export const powKernel = kernel('pow', { x: 'i32', out: 'i32', n: 'i32', e: 'f32', isInt: 'i32', odd: 'i32' }, (k) => {
  const { x, out, n, e, isInt, odd } = k.p;
  const i = k.i32(), s = k.i32(), en = k.i32(), v = k.f32(), mag = k.f32();
  const signed = select(f32.neg(mag.get()), mag.get(), odd.get());
  return seq(
    k.share(n.get(), s, en),
    forRange(i, s.get(), en.get(), seq(
      v.set(f32.load(at(x, i.get()))),
      mag.set(expf(f32.mul(e.get(), logf(f32.abs(v.get()))))),
      f32.store(at(out, i.get()), select(
        f32.const(1),
        select(mag.get(), select(signed, f32.const(NaN), isInt.get()), f32.ge(v.get(), f32.const(0))),
        f32.eq(e.get(), f32.const(0)),
      )),
    )),
  );
});

const scalarBinary: Record<BinaryOp, (a: Code, b: Code) => Code> = {
  add: f32.add, sub: f32.sub, mul: f32.mul, div: f32.div, max: f32.max, min: f32.min,
  eq: (a, b) => select(f32.const(1), f32.const(0), f32.eq(a, b)),
  gt: (a, b) => select(f32.const(1), f32.const(0), f32.gt(a, b)),
};
const one4 = f32x4.splat(f32.const(1));
const vectorBinary: Record<BinaryOp, (a: Code, b: Code) => Code> = {
  add: f32x4.add, sub: f32x4.sub, mul: f32x4.mul, div: f32x4.div, max: f32x4.max, min: f32x4.min,
  eq: (a, b) => v128.and(f32x4.eq(a, b), one4),
  gt: (a, b) => v128.and(f32x4.gt(a, b), one4),
};

/** The 4-d strided-loop arguments (element strides) shared by binary and copy. */
const dims4 = { n0: 'i32', n1: 'i32', n2: 'i32', n3: 'i32' } as const;
const strides = <P extends string>(p: P) => ({ [`${p}0`]: 'i32', [`${p}1`]: 'i32', [`${p}2`]: 'i32', [`${p}3`]: 'i32' }) as Record<`${P}${0 | 1 | 2 | 3}`, 'i32'>;

/**
 * Row r of the [n0, n1, n2] outer index space: sets `ao`/`bo` to the byte offsets of its first
 * element under the two stride sets.
 */
function rowOffsets(r: Local, n1: Local, n2: Local, sa: Local[], sb: Local[], ao: Local, bo: Local, t: Local[]): Code {
  const [i0, i1, i2] = t;
  return seq(
    i2.set(i32.rem_s(r.get(), n2.get())),
    i1.set(i32.rem_s(i32.div_s(r.get(), n2.get()), n1.get())),
    i0.set(i32.div_s(r.get(), i32.mul(n1.get(), n2.get()))),
    ao.set(i32.shl(i32.add(i32.add(i32.mul(i0.get(), sa[0].get()), i32.mul(i1.get(), sa[1].get())), i32.mul(i2.get(), sa[2].get())), i32.const(2))),
    bo.set(i32.shl(i32.add(i32.add(i32.mul(i0.get(), sb[0].get()), i32.mul(i1.get(), sb[1].get())), i32.mul(i2.get(), sb[2].get())), i32.const(2))),
  );
}

export const binaryKernels = Object.fromEntries(
  (Object.keys(scalarBinary) as BinaryOp[]).map((op) => [
    op,
    kernel(`binary_${op}`, { a: 'i32', b: 'i32', out: 'i32', ...dims4, ...strides('sa'), ...strides('sb') }, (k) => {
      const p = k.p as Record<string, Local>;
      const sa = [p.sa0, p.sa1, p.sa2], sb = [p.sb0, p.sb1, p.sb2];
      const r = k.i32(), rs = k.i32(), re = k.i32(), j = k.i32(), pa = k.i32(), pb = k.i32(), po = k.i32(), j4 = k.i32();
      const t = [k.i32(), k.i32(), k.i32()];
      const n3 = p.n3;
      const rows = i32.mul(i32.mul(p.n0.get(), p.n1.get()), p.n2.get());
      // SIMD when a is contiguous and b contiguous or broadcast (or the reverse) along the last dim
      const va = (addr: Code) => select(v128.load(addr), v128.load32_splat(addr), i32.eq(p.sa3.get(), i32.const(1)));
      const vb = (addr: Code) => select(v128.load(addr), v128.load32_splat(addr), i32.eq(p.sb3.get(), i32.const(1)));
      const simdOk = i32.and(
        i32.or(i32.eq(p.sa3.get(), i32.const(1)), i32.eqz(p.sa3.get())),
        i32.or(i32.eq(p.sb3.get(), i32.const(1)), i32.eqz(p.sb3.get())),
      );
      const elem = (jj: Code) => f32.store(
        i32.add(po.get(), i32.shl(jj, i32.const(2))),
        scalarBinary[op](f32.load(i32.add(pa.get(), i32.shl(i32.mul(jj, p.sa3.get()), i32.const(2)))), f32.load(i32.add(pb.get(), i32.shl(i32.mul(jj, p.sb3.get()), i32.const(2))))),
      );
      const vecStep = v128.store(
        i32.add(po.get(), i32.shl(j.get(), i32.const(2))),
        vectorBinary[op](va(i32.add(pa.get(), i32.shl(i32.mul(j.get(), p.sa3.get()), i32.const(2)))), vb(i32.add(pb.get(), i32.shl(i32.mul(j.get(), p.sb3.get()), i32.const(2))))),
      );
      return seq(
        k.share(rows, rs, re),
        j4.set(select(i32.and(n3.get(), i32.const(-4)), i32.const(0), simdOk)),
        forRange(r, rs.get(), re.get(), seq(
          rowOffsets(r, p.n1, p.n2, sa, sb, pa, pb, t),
          pa.set(i32.add(pa.get(), p.a.get())),
          pb.set(i32.add(pb.get(), p.b.get())),
          po.set(i32.add(p.out.get(), i32.shl(i32.mul(r.get(), n3.get()), i32.const(2)))),
          forRange(j, i32.const(0), j4.get(), vecStep, i32.const(4)),
          forRange(j, j4.get(), n3.get(), elem(j.get())),
        )),
      );
    }),
  ]),
) as Record<BinaryOp, KernelDef>;

/** dst[Σ i·ds] = src[Σ i·ss] over [n0, n1, n2, n3] (4-byte elements; offsets folded into the pointers). */
export const copyKernel = kernel('copy', { src: 'i32', dst: 'i32', ...dims4, ...strides('ss'), ...strides('ds') }, (k) => {
  const p = k.p as Record<string, Local>;
  const r = k.i32(), rs = k.i32(), re = k.i32(), j = k.i32(), ps = k.i32(), pd = k.i32(), j4 = k.i32();
  const t = [k.i32(), k.i32(), k.i32()];
  const rows = i32.mul(i32.mul(p.n0.get(), p.n1.get()), p.n2.get());
  const contiguous = i32.and(i32.eq(p.ss3.get(), i32.const(1)), i32.eq(p.ds3.get(), i32.const(1)));
  return seq(
    k.share(rows, rs, re),
    j4.set(select(i32.and(p.n3.get(), i32.const(-4)), i32.const(0), contiguous)),
    forRange(r, rs.get(), re.get(), seq(
      rowOffsets(r, p.n1, p.n2, [p.ss0, p.ss1, p.ss2], [p.ds0, p.ds1, p.ds2], ps, pd, t),
      ps.set(i32.add(ps.get(), p.src.get())),
      pd.set(i32.add(pd.get(), p.dst.get())),
      forRange(j, i32.const(0), j4.get(), v128.store(at(pd, j.get()), v128.load(at(ps, j.get()))), i32.const(4)),
      forRange(j, j4.get(), p.n3.get(), i32.store(at(pd, i32.mul(j.get(), p.ds3.get())), i32.load(at(ps, i32.mul(j.get(), p.ss3.get()))))),
    )),
  );
});

/** Fills `n` 32-bit words with `bits`. */
export const fillKernel = kernel('fill', { out: 'i32', n: 'i32', bits: 'i32' }, (k) => {
  const { out, n, bits } = k.p;
  const i = k.i32(), s = k.i32(), e = k.i32();
  return seq(k.share(n.get(), s, e), forRange(i, s.get(), e.get(), i32.store(at(out, i.get()), bits.get())));
});

export const ELEMENTWISE = [...Object.values(unaryKernels), ...Object.values(unaryGradKernels), affineKernel, powKernel, ...Object.values(binaryKernels), copyKernel, fillKernel];
