/**
 * Batched matmul C[b] (+)= op(A[b])·op(B[b]) in the GotoBLAS/BLIS shape: for each panel of NR
 * columns of B, the panel is packed contiguously ([k, NR], zero-padded past n) into this thread's
 * scratch, then an MR x NR register-blocked micro-kernel sweeps every MR-row block of A over it:
 * per step of k, NR/4 vector loads of the packed panel, MR broadcast loads of A, MR·NR/4 fused
 * multiply-adds (relaxed-SIMD madd where available). A is read in place (no packing): [m, k] through
 * one pointer per row, or [k, m] (transA) with the block's rows adjacent.
 * Threads split the (batch, column panel) pairs: each thread packs only the panels it computes.
 *
 * MR x NR = 4 x 8, one k step per loop iteration: V8 (x64) allocates 15 SIMD registers (xmm15 is its scratch)
 * and an unfused multiply-add needs a temporary, so 8 accumulators + 2 panel vectors + 1 broadcast + 1 temporary
 * stay in registers; TurboFan unrolls the loop itself. 6 x 8 with four k steps per iteration, read in its machine
 * code (node --print-wasm-code), kept 4 of its 12 accumulators on the stack: 16 spill loads and stores per k step,
 * about 1.35x the CPU time of 4 x 8 at tiny-vlm's shapes. Relaxed SIMD's fused madd needs no temporary, yet 5 x 8
 * and 6 x 8 still spill there and run at about half 4 x 8's speed (docs/performance.md).
 */
import { f32, f32x4, forRange, i32, ifThen, select, seq, v128, type Code, type Local } from '../asm.js';
import { kernel } from '../kernel.js';

const MR = 4;
const NR = 8;
const NV = NR / 4;

/** Scratch bytes one thread needs for a product with inner dimension k. */
export const matmulScratchBytes = (k: number): number => (k * NR + MR * NR) * 4;

export const matmulKernel = kernel(
  'matmul',
  {
    a: 'i32', b: 'i32', c: 'i32', batch: 'i32', m: 'i32', n: 'i32', k: 'i32',
    sAi: 'i32', sAl: 'i32', sBl: 'i32', sBj: 'i32', aBatch: 'i32', bBatch: 'i32', accumulate: 'i32', scratch: 'i32', scratchPerThread: 'i32',
  },
  (K) => {
    const p = K.p;
    const u = K.i32(), us = K.i32(), ue = K.i32(), panels = K.i32(), bi = K.i32(), j0 = K.i32(), l = K.i32(), cc = K.i32();
    const pack = K.i32(), tmp = K.i32(), src = K.i32(), dst = K.i32(), i0 = K.i32(), pb = K.i32(), stepA = K.i32();
    const aBase = K.i32(), cBase = K.i32(), rows = K.i32(), cols = K.i32(), r = K.i32(), addr = K.i32(), val = K.f32();
    const pa: Local[] = Array.from({ length: MR }, () => K.i32());
    const acc: Local[][] = Array.from({ length: MR }, () => Array.from({ length: NV }, () => K.v128()));
    const bv: Local[] = Array.from({ length: NV }, () => K.v128());
    const av = K.v128();
    const zero = f32x4.splat(f32.const(0));
    const bytes = (x: Code) => i32.shl(x, i32.const(2));

    // Pack columns [j0, j0+NR) of B (batch bi) into `pack` as [k, NR]: vector copies when B's rows
    // are contiguous and the panel is whole, else one element at a time with zeros past n.
    const wholeRowMajor = i32.and(i32.eq(p.sBj.get(), i32.const(1)), i32.le_s(i32.add(j0.get(), i32.const(NR)), p.n.get()));
    const srcOf = (ll: Code, col: Code) => i32.add(p.b.get(), bytes(i32.add(i32.add(i32.mul(bi.get(), p.bBatch.get()), i32.mul(ll, p.sBl.get())), i32.mul(col, p.sBj.get()))));
    const packPanel = ifThen(
      wholeRowMajor,
      forRange(l, i32.const(0), p.k.get(), seq(
        src.set(srcOf(l.get(), j0.get())),
        dst.set(i32.add(pack.get(), i32.mul(l.get(), i32.const(NR * 4)))),
        ...Array.from({ length: NV }, (_, q) => v128.store(dst.get(), v128.load(src.get(), 16 * q), 16 * q)),
      )),
      forRange(l, i32.const(0), p.k.get(), forRange(cc, i32.const(0), i32.const(NR), f32.store(
        i32.add(pack.get(), bytes(i32.add(i32.mul(l.get(), i32.const(NR)), cc.get()))),
        select(f32.load(srcOf(l.get(), i32.min_s(i32.add(j0.get(), cc.get()), i32.sub(p.n.get(), i32.const(1))))), f32.const(0), i32.lt_s(i32.add(j0.get(), cc.get()), p.n.get())),
      ))),
    );

    // One MR x NR block at rows [i0, i0+MR) of this panel. One step of k: NV panel loads, MR
    // broadcast loads of A (`aAt(r)`: row r), MR·NV multiply-adds.
    const step = (aAt: (rr: number) => Code) => seq(
      ...bv.map((b, q) => b.set(v128.load(pb.get(), 16 * q))),
      ...acc.flatMap((row, rr) => [av.set(aAt(rr)), ...row.map((a, q) => a.set(f32x4.madd(av.get(), bv[q].get(), a.get(), K.relaxed)))]),
    );
    // A stored [m, k] (sAl = 1): each row's k values are contiguous; rows past m repeat row m-1 (never written back).
    const alongK = seq(
      ...pa.map((ptr, rr) => ptr.set(i32.add(p.a.get(), bytes(i32.add(aBase.get(), i32.mul(i32.min_s(i32.add(i0.get(), i32.const(rr)), i32.sub(p.m.get(), i32.const(1))), p.sAi.get())))))),
      forRange(l, i32.const(0), p.k.get(), seq(
        step((rr) => v128.load32_splat(pa[rr].get())),
        ...pa.map((ptr) => ptr.set(i32.add(ptr.get(), i32.const(4)))),
        pb.set(i32.add(pb.get(), i32.const(NR * 4))),
      )),
    );
    // A stored [k, m] (transA, sAi = 1): the block's MR rows are adjacent, one pointer serves them
    // (a ragged block reads up to MR-1 values past A's end, inside the heap's guard, never written back).
    const adjacentRows = seq(
      pa[0].set(i32.add(p.a.get(), bytes(i32.add(aBase.get(), i0.get())))),
      forRange(l, i32.const(0), p.k.get(), seq(
        step((rr) => v128.load32_splat(pa[0].get(), 4 * rr)),
        pa[0].set(i32.add(pa[0].get(), stepA.get())),
        pb.set(i32.add(pb.get(), i32.const(NR * 4))),
      )),
    );
    const microKernel = seq(
      ...acc.flat().map((a) => a.set(zero)),
      pb.set(pack.get()),
      ifThen(i32.eq(p.sAl.get(), i32.const(1)), alongK, adjacentRows),
    );

    // Write the block: whole blocks with vector stores, ragged ones through `tmp`.
    const cAddr = (rr: Code, q: number) => i32.add(p.c.get(), bytes(i32.add(i32.add(cBase.get(), i32.mul(i32.add(i0.get(), rr), p.n.get())), i32.add(j0.get(), i32.const(4 * q)))));
    const whole = i32.and(i32.eq(rows.get(), i32.const(MR)), i32.eq(cols.get(), i32.const(NR)));
    const storeWhole = seq(...acc.flatMap((row, rr) => row.map((a, q) => seq(
      addr.set(cAddr(i32.const(rr), q)),
      v128.store(addr.get(), select(f32x4.add(v128.load(addr.get()), a.get()), a.get(), p.accumulate.get())),
    ))));
    const storeRagged = seq(
      ...acc.flatMap((row, rr) => row.map((a, q) => v128.store(tmp.get(), a.get(), (rr * NR + 4 * q) * 4))),
      forRange(r, i32.const(0), rows.get(), forRange(cc, i32.const(0), cols.get(), seq(
        addr.set(i32.add(p.c.get(), bytes(i32.add(i32.add(cBase.get(), i32.mul(i32.add(i0.get(), r.get()), p.n.get())), i32.add(j0.get(), cc.get()))))),
        val.set(f32.load(i32.add(tmp.get(), bytes(i32.add(i32.mul(r.get(), i32.const(NR)), cc.get()))))),
        f32.store(addr.get(), select(f32.add(f32.load(addr.get()), val.get()), val.get(), p.accumulate.get())),
      ))),
    );

    return seq(
      panels.set(i32.div_s(i32.add(p.n.get(), i32.const(NR - 1)), i32.const(NR))),
      K.share(i32.mul(p.batch.get(), panels.get()), us, ue),
      pack.set(i32.add(p.scratch.get(), i32.mul(K.tid.get(), p.scratchPerThread.get()))),
      tmp.set(i32.add(pack.get(), i32.mul(p.k.get(), i32.const(NR * 4)))),
      stepA.set(bytes(p.sAl.get())),
      forRange(u, us.get(), ue.get(), seq(
        bi.set(i32.div_s(u.get(), panels.get())),
        j0.set(i32.mul(i32.rem_s(u.get(), panels.get()), i32.const(NR))),
        cols.set(i32.min_s(i32.const(NR), i32.sub(p.n.get(), j0.get()))),
        aBase.set(i32.mul(bi.get(), p.aBatch.get())),
        cBase.set(i32.mul(bi.get(), i32.mul(p.m.get(), p.n.get()))),
        packPanel,
        forRange(i0, i32.const(0), p.m.get(), seq(
          rows.set(i32.min_s(i32.const(MR), i32.sub(p.m.get(), i0.get()))),
          microKernel,
          ifThen(whole, storeWhole, storeRagged),
        ), i32.const(MR)),
      )),
    );
  },
);

