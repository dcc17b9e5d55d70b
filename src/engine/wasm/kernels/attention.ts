/**
 * Fused scaled-dot-product attention over q [B, T, Hq, D] and k/v [B, S_max, Hkv, D] (first S keys),
 * grouped-query (query head h reads key head h / (Hq/Hkv)), causal with the query at key index
 * t + qOffset, and an optional key mask [B, S_max] (nonzero = attend). Forward: one pass over the
 * keys with an online softmax (Milakov & Gimelshein 2018, as FlashAttention), accumulating straight
 * into the output row; saves lse. Backward from lse and o (Dao et al. 2022): p = exp(s - lse),
 * ds = p·(dO·v - dO·o)·scale. Threads split (b, h) in the forward and (b, kv head) in the backward,
 * so that every dk/dv row has one writer. Dot products and row updates are 4-lane SIMD plus a
 * scalar tail for D not a multiple of 4.
 */
import { f32, f32x4, forRange, i32, ifThen, select, seq, v128, type Code, type Local } from '../asm.js';
import { expf, kernel, logf, type KernelCtx } from '../kernel.js';
import { at } from './elementwise.js';

const ARGS = {
  q: 'i32', k: 'i32', v: 'i32', mask: 'i32', batch: 'i32', t: 'i32', s: 'i32', sMax: 'i32', hq: 'i32', hkv: 'i32', d: 'i32', scale: 'f32', causal: 'i32', qOffset: 'i32',
} as const;
type A = keyof typeof ARGS;

/** Row helpers over D floats: dot products and in-place updates, SIMD then scalar tail. */
function rowOps(K: KernelCtx<string>, d: Local) {
  const i = K.i32(), d4 = K.i32(), acc4 = K.v128(), acc = K.f32();
  const vec = (p: Local) => v128.load(at(p, i.get()));
  const sc = (p: Local) => f32.load(at(p, i.get()));
  return {
    init: d4.set(i32.and(d.get(), i32.const(-4))),
    /** Σ a[i]·b[i] -> out */
    dot: (a: Local, b: Local, out: Local): Code => seq(
      acc4.set(f32x4.splat(f32.const(0))),
      forRange(i, i32.const(0), d4.get(), acc4.set(f32x4.madd(vec(a), vec(b), acc4.get(), K.relaxed)), i32.const(4)),
      acc.set(f32.add(f32.add(f32x4.extract_lane(acc4.get(), 0), f32x4.extract_lane(acc4.get(), 1)), f32.add(f32x4.extract_lane(acc4.get(), 2), f32x4.extract_lane(acc4.get(), 3)))),
      forRange(i, d4.get(), d.get(), acc.set(f32.add(acc.get(), f32.mul(sc(a), sc(b))))),
      out.set(acc.get()),
    ),
    /** y = y·c + a·x (c omitted: y += a·x) */
    update: (y: Local, x: Local, a: Local, c?: Local): Code => seq(
      forRange(i, i32.const(0), d4.get(), v128.store(at(y, i.get()), f32x4.madd(f32x4.splat(a.get()), vec(x), c ? f32x4.mul(vec(y), f32x4.splat(c.get())) : vec(y), K.relaxed)), i32.const(4)),
      forRange(i, d4.get(), d.get(), f32.store(at(y, i.get()), f32.add(f32.mul(a.get(), sc(x)), c ? f32.mul(sc(y), c.get()) : sc(y)))),
    ),
    /** y = c·y */
    scaleRow: (y: Local, c: Local): Code => seq(
      forRange(i, i32.const(0), d4.get(), v128.store(at(y, i.get()), f32x4.mul(vec(y), f32x4.splat(c.get()))), i32.const(4)),
      forRange(i, d4.get(), d.get(), f32.store(at(y, i.get()), f32.mul(sc(y), c.get()))),
    ),
  };
}

/** Pointers and key range shared by both directions. */
function geometry(K: KernelCtx<A>) {
  const p = K.p;
  const sEnd = K.i32(), kp = K.i32(), vp = K.i32(), keyIdx = K.i32();
  const rowPtr = (base: Local, b: Code, t: Code, h: Code, tLen: Code, heads: Local) =>
    i32.add(base.get(), i32.shl(i32.mul(i32.add(i32.mul(i32.add(i32.mul(b, tLen), t), heads.get()), h), p.d.get()), i32.const(2)));
  return {
    sEnd, kp, vp, keyIdx, rowPtr,
    /** sEnd = causal ? min(S, t + qOffset + 1) : S */
    keyRange: (t: Local) => sEnd.set(select(i32.min_s(p.s.get(), i32.add(i32.add(t.get(), p.qOffset.get()), i32.const(1))), p.s.get(), p.causal.get())),
    /** For each attended key of row (b, ·, kh): kp, vp set; body */
    forKeys: (b: Local, kh: Local, body: Code) => forRange(keyIdx, i32.const(0), sEnd.get(), ifThen(
      i32.or(i32.eqz(p.mask.get()), i32.ne(i32.load(at(p.mask, i32.add(i32.mul(b.get(), p.sMax.get()), keyIdx.get()))), i32.const(0))),
      seq(
        kp.set(rowPtr(p.k, b.get(), keyIdx.get(), kh.get(), p.sMax.get(), p.hkv)),
        vp.set(rowPtr(p.v, b.get(), keyIdx.get(), kh.get(), p.sMax.get(), p.hkv)),
        body,
      ),
    )),
  };
}

export const attentionKernel = kernel('attention', { ...ARGS, o: 'i32', lse: 'i32', scratch: 'i32' }, (K) => {
  const p = K.p;
  const R = rowOps(K as unknown as KernelCtx<string>, p.d), G = geometry(K as unknown as KernelCtx<A>);
  const u = K.i32(), us = K.i32(), ue = K.i32(), b = K.i32(), h = K.i32(), kh = K.i32(), t = K.i32(), qp = K.i32(), op = K.i32(), li = K.i32();
  const mx = K.f32(), l = K.f32(), sc = K.f32(), diff = K.f32(), e = K.f32(), c = K.f32(), pr = K.f32(), zero = K.f32();
  return seq(
    R.init,
    zero.set(f32.const(0)),
    K.share(i32.mul(p.batch.get(), p.hq.get()), us, ue),
    forRange(u, us.get(), ue.get(), seq(
      b.set(i32.div_s(u.get(), p.hq.get())),
      h.set(i32.rem_s(u.get(), p.hq.get())),
      kh.set(i32.div_s(h.get(), i32.div_s(p.hq.get(), p.hkv.get()))),
      forRange(t, i32.const(0), p.t.get(), seq(
        qp.set(G.rowPtr(p.q, b.get(), t.get(), h.get(), p.t.get(), p.hq)),
        op.set(G.rowPtr(p.o, b.get(), t.get(), h.get(), p.t.get(), p.hq)),
        R.scaleRow(op, zero),
        mx.set(f32.const(-Infinity)),
        l.set(f32.const(0)),
        G.keyRange(t),
        G.forKeys(b, kh, seq(
          R.dot(qp, G.kp, sc),
          sc.set(f32.mul(sc.get(), p.scale.get())),
          // one exp per key: a new maximum rescales what came before (c), else the key is weighted (pr)
          diff.set(f32.sub(sc.get(), mx.get())),
          e.set(expf(f32.neg(f32.abs(diff.get())))),
          c.set(select(e.get(), f32.const(1), f32.gt(diff.get(), f32.const(0)))),
          pr.set(select(f32.const(1), e.get(), f32.gt(diff.get(), f32.const(0)))),
          mx.set(f32.max(mx.get(), sc.get())),
          l.set(f32.add(f32.mul(l.get(), c.get()), pr.get())),
          R.update(op, G.vp, pr, c),
        )),
        c.set(select(f32.div(f32.const(1), l.get()), f32.const(0), f32.gt(l.get(), f32.const(0)))),
        R.scaleRow(op, c),
        li.set(i32.add(i32.mul(i32.add(i32.mul(b.get(), p.t.get()), t.get()), p.hq.get()), h.get())),
        f32.store(at(p.lse, li.get()), select(f32.add(mx.get(), logf(l.get())), f32.const(-Infinity), f32.gt(l.get(), f32.const(0)))),
      )),
    )),
  );
});

export const attentionGradKernel = kernel('attention_grad', { ...ARGS, o: 'i32', lse: 'i32', dO: 'i32', dq: 'i32', dk: 'i32', dv: 'i32', scratch: 'i32' }, (K) => {
  const p = K.p;
  const R = rowOps(K as unknown as KernelCtx<string>, p.d), G = geometry(K as unknown as KernelCtx<A>);
  const u = K.i32(), us = K.i32(), ue = K.i32(), b = K.i32(), h = K.i32(), kh = K.i32(), t = K.i32(), grp = K.i32();
  const qp = K.i32(), op = K.i32(), gp = K.i32(), dqp = K.i32(), dkp = K.i32(), dvp = K.i32();
  const lse = K.f32(), D = K.f32(), sc = K.f32(), pr = K.f32(), dp = K.f32(), ds = K.f32(), zero = K.f32();
  return seq(
    R.init,
    zero.set(f32.const(0)),
    grp.set(i32.div_s(p.hq.get(), p.hkv.get())),
    K.share(i32.mul(p.batch.get(), p.hkv.get()), us, ue),
    forRange(u, us.get(), ue.get(), seq(
      b.set(i32.div_s(u.get(), p.hkv.get())),
      kh.set(i32.rem_s(u.get(), p.hkv.get())),
      forRange(h, i32.mul(kh.get(), grp.get()), i32.mul(i32.add(kh.get(), i32.const(1)), grp.get()), forRange(t, i32.const(0), p.t.get(), seq(
        qp.set(G.rowPtr(p.q, b.get(), t.get(), h.get(), p.t.get(), p.hq)),
        op.set(G.rowPtr(p.o, b.get(), t.get(), h.get(), p.t.get(), p.hq)),
        gp.set(G.rowPtr(p.dO, b.get(), t.get(), h.get(), p.t.get(), p.hq)),
        dqp.set(G.rowPtr(p.dq, b.get(), t.get(), h.get(), p.t.get(), p.hq)),
        R.scaleRow(dqp, zero),
        lse.set(f32.load(at(p.lse, i32.add(i32.mul(i32.add(i32.mul(b.get(), p.t.get()), t.get()), p.hq.get()), h.get())))),
        ifThen(f32.gt(lse.get(), f32.const(-Infinity)), seq(
          R.dot(gp, op, D),
          G.keyRange(t),
          G.forKeys(b, kh, seq(
            dkp.set(i32.add(p.dk.get(), i32.sub(G.kp.get(), p.k.get()))),
            dvp.set(i32.add(p.dv.get(), i32.sub(G.vp.get(), p.v.get()))),
            R.dot(qp, G.kp, sc),
            pr.set(expf(f32.sub(f32.mul(sc.get(), p.scale.get()), lse.get()))),
            R.dot(gp, G.vp, dp),
            ds.set(f32.mul(f32.mul(pr.get(), f32.sub(dp.get(), D.get())), p.scale.get())),
            R.update(dqp, G.kp, ds),
            R.update(dkp, qp, ds),
            R.update(dvp, gp, pr),
          )),
        )),
      ))),
    )),
  );
});
