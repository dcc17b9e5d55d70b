/**
 * Fused scaled-dot-product attention over q [B, T, Hq, D] and k/v [B, S_max, Hkv, D] (first S keys),
 * grouped-query (query head h reads key head h / (Hq/Hkv)), causal with the query at key index
 * t + qOffset, and an optional key mask [B, S_max] (nonzero = attend); no [T x S] matrix is kept.
 *
 * Threads split the (batch, kv head) pairs, so every dk/dv row has one writer. A pair's keys (and
 * values, for the backward) are first transposed into the thread's scratch as [D, S4] (S4 = S
 * rounded up to 4): a query's scores for 4 consecutive keys are then D vector multiply-adds of the
 * broadcast q[i] with Kᵀ[i, s..s+3], with no horizontal sums. Per query row: scores -> masked
 * row max -> p = exp(score - max), Σp -> o = Σ p·v / Σp (4-lane SIMD over D), lse = max + log Σp.
 * Backward from lse and o (Dao et al. 2022): p = exp(score - lse), dp = dO·v (transposed V, 4 keys
 * at a time), ds = p·(dp - dO·o)·scale, dq = Σ ds·k, dk += ds·q, dv += p·dO.
 * Scores come 16 keys at a time (4 independent accumulators sharing each broadcast query value).
 * The mask, the max, exp and ds run over 4 keys at a time as well (a lane mask of the attended keys):
 * a scalar exp per score was a third of the kernels' time in a tiny-vlm SFT step. With the transposes,
 * o = Σ p·v and dq = Σ ds·k are dot products along the keys (Vᵀ, Kᵀ rows against the p / ds row, 4 dims
 * at a time) instead of a row update per key, and dk, dv accumulate transposed in scratch (dKᵀ[i, s] +=
 * q[i]·ds[s], 16 keys at a time) and are copied out once per pair. Decoding (no transpose) keeps a row
 * update per key for dq, dk and dv.
 */
import { f32, f32x4, forRange, i32, i32x4, ifThen, select, seq, v128, type Code, type Local } from '../asm.js';
import { kernel, type KernelCtx } from '../kernel.js';
import { hmax, hsum, logf, vector } from './math.js';
import { at } from './elementwise.js';

const ARGS = {
  q: 'i32', k: 'i32', v: 'i32', mask: 'i32', batch: 'i32', t: 'i32', s: 'i32', sMax: 'i32', hq: 'i32', hkv: 'i32', d: 'i32', scale: 'f32', causal: 'i32', qOffset: 'i32',
  scratch: 'i32', scratchPerThread: 'i32',
} as const;
type A = keyof typeof ARGS;
type Ctx = KernelCtx<A>;

/** Scratch bytes one thread needs: Kᵀ and Vᵀ [D, S4], two rows of S4 (scores/p, dp), and for the backward dKᵀ and dVᵀ [D, S4]. */
export const attentionScratchBytes = (d: number, s: number, backward: boolean): number => ((backward ? 4 : 2) * d + 2) * (Math.ceil(s / 4) * 4) * 4 + 64;

/** SIMD-over-D row updates, scalar tail for D not a multiple of 4. */
function rowOps(K: Ctx) {
  const i = K.i32(), d4 = K.i32(), acc4 = K.v128(), acc = K.f32();
  const d = K.p.d;
  const vec = (p: Local) => v128.load(at(p, i.get()));
  const sc = (p: Local) => f32.load(at(p, i.get()));
  return {
    init: d4.set(i32.and(d.get(), i32.const(-4))),
    /** out = Σ a[i]·b[i] */
    dot: (a: Local, b: Local, out: Local): Code => seq(
      acc4.set(f32x4.splat(f32.const(0))),
      forRange(i, i32.const(0), d4.get(), acc4.set(f32x4.madd(vec(a), vec(b), acc4.get(), K.relaxed)), i32.const(4)),
      acc.set(hsum(acc4.get(), acc4)),
      forRange(i, d4.get(), d.get(), acc.set(f32.add(acc.get(), f32.mul(sc(a), sc(b))))),
      out.set(acc.get()),
    ),
    /** y += a·x */
    axpy: (y: Local, x: Local, a: Local): Code => seq(
      forRange(i, i32.const(0), d4.get(), v128.store(at(y, i.get()), f32x4.madd(f32x4.splat(a.get()), vec(x), vec(y), K.relaxed)), i32.const(4)),
      forRange(i, d4.get(), d.get(), f32.store(at(y, i.get()), f32.add(f32.mul(a.get(), sc(x)), sc(y)))),
    ),
    /** y = 0 (a fresh row may hold anything, even inf: 0·inf is NaN) */
    zero: (y: Local): Code => seq(
      forRange(i, i32.const(0), d4.get(), v128.store(at(y, i.get()), f32x4.splat(f32.const(0))), i32.const(4)),
      forRange(i, d4.get(), d.get(), f32.store(at(y, i.get()), f32.const(0))),
    ),
    /** y = c·y */
    scale: (y: Local, c: Code): Code => seq(
      acc.set(c),
      forRange(i, i32.const(0), d4.get(), v128.store(at(y, i.get()), f32x4.mul(vec(y), f32x4.splat(acc.get()))), i32.const(4)),
      forRange(i, d4.get(), d.get(), f32.store(at(y, i.get()), f32.mul(sc(y), acc.get()))),
    ),
  };
}

/**
 * The per-(b, kv head) frame shared by both directions: row pointers, the key range of a query,
 * whether a key is attended, the transposes into scratch, and the 4-keys-at-a-time products.
 */
function frame(K: Ctx) {
  const p = K.p;
  const u = K.i32(), us = K.i32(), ue = K.i32(), b = K.i32(), kh = K.i32(), h = K.i32(), t = K.i32(), grp = K.i32();
  const s4 = K.i32(), sEnd = K.i32(), sEnd4 = K.i32(), key = K.i32(), i = K.i32(), src = K.i32();
  const kt = K.i32(), vt = K.i32(), row = K.i32(), row2 = K.i32(), dkt = K.i32(), dvt = K.i32(), transposed = K.i32();
  const ALL = i32x4.const([-1, -1, -1, -1]), IOTA = i32x4.const([0, 1, 2, 3]);
  const rowPtr = (base: Local, bb: Code, tt: Code, hh: Code, tLen: Code, heads: Local) =>
    i32.add(base.get(), i32.shl(i32.mul(i32.add(i32.mul(i32.add(i32.mul(bb, tLen), tt), heads.get()), hh), p.d.get()), i32.const(2)));
  /** dst[i·S4 + s] = rows[(b, s, kh)][i] for s < S, and 0 for S <= s < S4 (timesT multiplies those columns by 0: no stale NaN) */
  const transpose = (base: Local, dst: Local) => seq(
    forRange(key, i32.const(0), p.s.get(), seq(
      src.set(rowPtr(base, b.get(), key.get(), kh.get(), p.sMax.get(), p.hkv)),
      forRange(i, i32.const(0), p.d.get(), f32.store(at(dst, i32.add(i32.mul(i.get(), s4.get()), key.get())), f32.load(at(src, i.get())))),
    )),
    forRange(key, p.s.get(), s4.get(), forRange(i, i32.const(0), p.d.get(), f32.store(at(dst, i32.add(i32.mul(i.get(), s4.get()), key.get())), f32.const(0)))),
  );
  const d4 = K.i32(), dim = K.i32(), xv = K.v128(), ht = K.v128(), sEnd16 = K.i32(), xp = K.i32(), tp = K.i32();
  const ys = [K.v128(), K.v128(), K.v128(), K.v128()];
  const accs = [K.v128(), K.v128(), K.v128(), K.v128()], trRows = [K.i32(), K.i32(), K.i32(), K.i32()];
  /** out[dim + j] = Σ_{s < sEnd4} x[s]·Tᵀ[dim + j, s] for j < n: n dims at a time, each x vector loaded once for them. */
  const dimsTimes = (x: Local, tr: Local, out: Local, n: number) => seq(
    ...trRows.slice(0, n).map((r, j) => r.set(at(tr, i32.mul(i32.add(dim.get(), i32.const(j)), s4.get())))),
    ...accs.slice(0, n).map((a) => a.set(f32x4.splat(f32.const(0)))),
    forRange(key, i32.const(0), sEnd4.get(), seq(
      xv.set(v128.load(at(x, key.get()))),
      ...accs.slice(0, n).map((a, j) => a.set(f32x4.madd(xv.get(), v128.load(at(trRows[j], key.get())), a.get(), K.relaxed))),
    ), i32.const(4)),
    ...accs.slice(0, n).map((a, j) => f32.store(at(out, i32.add(dim.get(), i32.const(j))), hsum(a.get(), ht))),
  );
  /** out[s] = Σ_i x[i]·Tᵀ[i, s] for s in [from, to), n·4 keys at a time: n accumulators share each broadcast x[i]. */
  const scoreBlocks = (x: Local, tr: Local, out: Local, from: Code, to: Code, n: number) => forRange(key, from, to, seq(
    ...accs.slice(0, n).map((a) => a.set(f32x4.splat(f32.const(0)))),
    xp.set(x.get()),
    tp.set(at(tr, key.get())),
    forRange(i, i32.const(0), p.d.get(), seq(
      xv.set(v128.load32_splat(xp.get())),
      ...accs.slice(0, n).map((a, j) => a.set(f32x4.madd(xv.get(), v128.load(tp.get(), 16 * j), a.get(), K.relaxed))),
      xp.set(i32.add(xp.get(), i32.const(4))),
      tp.set(i32.add(tp.get(), i32.shl(s4.get(), i32.const(2)))),
    )),
    ...accs.slice(0, n).map((a, j) => v128.store(at(out, key.get()), a.get(), 16 * j)),
  ), i32.const(4 * n));
  /** Tᵀ[i, s] += x[i]·y[s] for s in [from, to), n·4 keys at a time: the y vectors stay in registers, Tᵀ is loaded and stored once per madd. */
  const outerBlocks = (x: Local, y: Local, tr: Local, from: Code, to: Code, n: number) => forRange(key, from, to, seq(
    ...ys.slice(0, n).map((v, j) => v.set(v128.load(at(y, key.get()), 16 * j))),
    xp.set(x.get()),
    tp.set(at(tr, key.get())),
    forRange(i, i32.const(0), p.d.get(), seq(
      xv.set(v128.load32_splat(xp.get())),
      ...ys.slice(0, n).map((v, j) => v128.store(tp.get(), f32x4.madd(xv.get(), v.get(), v128.load(tp.get(), 16 * j), K.relaxed), 16 * j)),
      xp.set(i32.add(xp.get(), i32.const(4))),
      tp.set(i32.add(tp.get(), i32.shl(s4.get(), i32.const(2)))),
    )),
  ), i32.const(4 * n));
  /** rows[(b, s, kh)][i] = Tᵀ[i, s] for s < S: the inverse of `transpose`. */
  const untranspose = (src: Local, base: Local) => forRange(key, i32.const(0), p.s.get(), seq(
    tp.set(rowPtr(base, b.get(), key.get(), kh.get(), p.sMax.get(), p.hkv)),
    forRange(i, i32.const(0), p.d.get(), f32.store(at(tp, i.get()), f32.load(at(src, i32.add(i32.mul(i.get(), s4.get()), key.get()))))),
  ));
  return {
    b, kh, h, t, sEnd, sEnd4, key, kt, vt, row, row2, dkt, dvt, rowPtr, transposed,
    keyRow: (base: Local) => rowPtr(base, b.get(), key.get(), kh.get(), p.sMax.get(), p.hkv),
    qRow: (base: Local) => rowPtr(base, b.get(), t.get(), h.get(), p.t.get(), p.hq),
    lseIndex: () => i32.add(i32.mul(i32.add(i32.mul(b.get(), p.t.get()), t.get()), p.hq.get()), h.get()),
    attended: () => i32.and(
      i32.lt_s(key.get(), sEnd.get()),
      i32.or(i32.eqz(p.mask.get()), i32.ne(i32.load(at(p.mask, i32.add(i32.mul(b.get(), p.sMax.get()), key.get()))), i32.const(0))),
    ),
    /**
     * Lane mask (all ones = attended) of keys key..key+3: below sEnd, and set in the key mask if there is one.
     * Reads up to 3 mask words past a row's end (the heap's guard keeps them in memory; the sEnd test drops them).
     */
    attended4: () => v128.and(
      i32x4.lt_s(i32x4.add(i32x4.splat(key.get()), IOTA), i32x4.splat(sEnd.get())),
      select(ALL, v128.not(i32x4.eq(v128.load(at(p.mask, i32.add(i32.mul(b.get(), p.sMax.get()), key.get()))), i32x4.splat(i32.const(0)))), i32.eqz(p.mask.get())),
    ),
    /**
     * out[s] = Σ_i x[i]·Tᵀ[i, s] for s < sEnd rounded up to 4 (T transposed in scratch; see `transposed`):
     * 16 keys at a time, then 4. The 16-key blocks keep 4 independent accumulators that share each broadcast
     * x[i]: one accumulator alone is a chain of dependent adds, which held the scores to a third of matmul's speed.
     */
    rowTimes: (x: Local, tr: Local, out: Local) => seq(
      sEnd16.set(i32.and(sEnd4.get(), i32.const(-16))),
      scoreBlocks(x, tr, out, i32.const(0), sEnd16.get(), 4),
      scoreBlocks(x, tr, out, sEnd16.get(), sEnd4.get(), 1),
    ),
    /**
     * out[i] = Σ_s x[s]·Tᵀ[i, s] over the keys below sEnd rounded up to 4, for every i < D (T transposed in scratch):
     * a row of p or ds times V or K with no store per key, where the per-key y += a·x form stores a row every key.
     * Lanes of x past the attended keys must be 0.
     */
    timesT: (x: Local, tr: Local, out: Local) => seq(
      d4.set(i32.and(p.d.get(), i32.const(-4))),
      forRange(dim, i32.const(0), d4.get(), dimsTimes(x, tr, out, 4), i32.const(4)),
      forRange(dim, d4.get(), p.d.get(), dimsTimes(x, tr, out, 1)),
    ),
    /**
     * Tᵀ[i, s] += x[i]·y[s] for the keys below sEnd rounded up to 4 (16 keys at a time, then 4): dKᵀ += q·ds and
     * dVᵀ += dO·p in scratch, where a row update per key loads and stores a whole dk / dv row for every key.
     * Lanes of y past the attended keys must be 0.
     */
    outerAdd: (x: Local, y: Local, tr: Local) => seq(
      sEnd16.set(i32.and(sEnd4.get(), i32.const(-16))),
      outerBlocks(x, y, tr, i32.const(0), sEnd16.get(), 4),
      outerBlocks(x, y, tr, sEnd16.get(), sEnd4.get(), 1),
    ),
    /**
     * Loops every (b, kh) pair of this thread, transposing K (and V) first, then every query (h, t) of it.
     * `grads` (backward): dKᵀ and dVᵀ are zeroed in scratch before the queries and copied into dk and dv after them.
     */
    forPairs: (withV: boolean, body: Code, grads?: { dk: Local; dv: Local }) => seq(
      s4.set(i32.and(i32.add(p.s.get(), i32.const(3)), i32.const(-4))),
      grp.set(i32.div_s(p.hq.get(), p.hkv.get())),
      // Few queries per key head (decoding: T = 1) do not repay the transpose: dot products instead.
      transposed.set(i32.ge_s(i32.mul(p.t.get(), grp.get()), i32.const(4))),
      kt.set(i32.add(p.scratch.get(), i32.mul(K.tid.get(), p.scratchPerThread.get()))),
      vt.set(i32.add(kt.get(), i32.shl(i32.mul(p.d.get(), s4.get()), i32.const(2)))),
      row.set(i32.add(vt.get(), i32.shl(i32.mul(p.d.get(), s4.get()), i32.const(2)))),
      row2.set(i32.add(row.get(), i32.shl(s4.get(), i32.const(2)))),
      dkt.set(i32.add(row2.get(), i32.shl(s4.get(), i32.const(2)))),
      dvt.set(i32.add(dkt.get(), i32.shl(i32.mul(p.d.get(), s4.get()), i32.const(2)))),
      K.share(i32.mul(p.batch.get(), p.hkv.get()), us, ue),
      forRange(u, us.get(), ue.get(), seq(
        b.set(i32.div_s(u.get(), p.hkv.get())),
        kh.set(i32.rem_s(u.get(), p.hkv.get())),
        ifThen(transposed.get(), seq(
          transpose(p.k, kt),
          withV ? transpose(p.v, vt) : [],
          grads ? forRange(i, i32.const(0), i32.mul(i32.mul(p.d.get(), s4.get()), i32.const(2)), v128.store(at(dkt, i.get()), f32x4.splat(f32.const(0))), i32.const(4)) : [],
        )),
        forRange(h, i32.mul(kh.get(), grp.get()), i32.mul(i32.add(kh.get(), i32.const(1)), grp.get()), forRange(t, i32.const(0), p.t.get(), seq(
          sEnd.set(select(i32.min_s(p.s.get(), i32.add(i32.add(t.get(), p.qOffset.get()), i32.const(1))), p.s.get(), p.causal.get())),
          sEnd4.set(i32.and(i32.add(sEnd.get(), i32.const(3)), i32.const(-4))),
          body,
        ))),
        grads ? ifThen(transposed.get(), seq(untranspose(dkt, grads.dk), untranspose(dvt, grads.dv))) : [],
      )),
    ),
  };
}

/** out[s] = x·rows[(b, s, kh)] for the keys of this query: from the transpose, or one dot product each. */
function rowScores(K: Ctx, R: ReturnType<typeof rowOps>, F: ReturnType<typeof frame>) {
  const kp = K.i32(), v = K.f32();
  return (x: Local, base: Local, tr: Local, out: Local): Code => ifThen(
    F.transposed.get(),
    F.rowTimes(x, tr, out),
    forRange(F.key, i32.const(0), F.sEnd.get(), seq(kp.set(F.keyRow(base)), R.dot(x, kp, v), f32.store(at(out, F.key.get()), v.get()))),
  );
}

export const attentionKernel = kernel('attention', { ...ARGS, o: 'i32', lse: 'i32' }, (K) => {
  const p = K.p;
  const R = rowOps(K as unknown as Ctx), F = frame(K as unknown as Ctx);
  const qp = K.i32(), op = K.i32(), kp = K.i32(), mx = K.f32(), sum = K.f32(), pr = K.f32(), v4 = K.v128(), acc4 = K.v128(), t4 = K.v128();
  const scores = rowScores(K as unknown as Ctx, R, F);
  const row4 = () => at(F.row, F.key.get());
  const keys4 = (body: Code) => forRange(F.key, i32.const(0), F.sEnd4.get(), body, i32.const(4));
  return seq(
    R.init,
    F.forPairs(true, seq(
      qp.set(F.qRow(p.q)),
      op.set(F.qRow(p.o)),
      scores(qp, p.k, F.kt, F.row),
      // scaled scores, -inf where not attended, and the row max
      acc4.set(f32x4.splat(f32.const(-Infinity))),
      keys4(seq(
        v4.set(v128.bitselect(f32x4.mul(v128.load(row4()), f32x4.splat(p.scale.get())), f32x4.splat(f32.const(-Infinity)), F.attended4())),
        v128.store(row4(), v4.get()),
        acc4.set(f32x4.max(acc4.get(), v4.get())),
      )),
      mx.set(hmax(acc4.get(), t4)),
      R.zero(op),
      sum.set(f32.const(0)),
      ifThen(f32.gt(mx.get(), f32.const(-Infinity)), seq(
        // p = exp(score - max) in place (0 where not attended), Σp
        acc4.set(f32x4.splat(f32.const(0))),
        keys4(seq(
          v4.set(vector.exp(f32x4.sub(v128.load(row4()), f32x4.splat(mx.get())))),
          v128.store(row4(), v4.get()),
          acc4.set(f32x4.add(acc4.get(), v4.get())),
        )),
        sum.set(hsum(acc4.get(), t4)),
        // o = Σ p·v: through Vᵀ, or one row update per key when there is no transpose (decoding)
        ifThen(F.transposed.get(), F.timesT(F.row, F.vt, op), forRange(F.key, i32.const(0), F.sEnd.get(), seq(
          pr.set(f32.load(at(F.row, F.key.get()))),
          ifThen(f32.gt(pr.get(), f32.const(0)), seq(kp.set(F.keyRow(p.v)), R.axpy(op, kp, pr))),
        ))),
      )),
      R.scale(op, select(f32.div(f32.const(1), sum.get()), f32.const(0), f32.gt(sum.get(), f32.const(0)))),
      f32.store(at(p.lse, F.lseIndex()), select(f32.add(mx.get(), logf(sum.get())), f32.const(-Infinity), f32.gt(sum.get(), f32.const(0)))),
    )),
  );
});

export const attentionGradKernel = kernel('attention_grad', { ...ARGS, o: 'i32', lse: 'i32', dO: 'i32', dq: 'i32', dk: 'i32', dv: 'i32' }, (K) => {
  const p = K.p;
  const R = rowOps(K as unknown as Ctx), F = frame(K as unknown as Ctx);
  const qp = K.i32(), op = K.i32(), gp = K.i32(), dqp = K.i32(), kp = K.i32(), dkp = K.i32(), dvp = K.i32();
  const lse = K.f32(), D = K.f32(), pr = K.f32(), ds = K.f32(), att4 = K.v128(), p4 = K.v128();
  const scores = rowScores(K as unknown as Ctx, R, F);
  const at4 = (r: Local) => at(r, F.key.get());
  const zero4 = f32x4.splat(f32.const(0));
  return seq(
    R.init,
    F.forPairs(true, seq(
      qp.set(F.qRow(p.q)),
      op.set(F.qRow(p.o)),
      gp.set(F.qRow(p.dO)),
      dqp.set(F.qRow(p.dq)),
      R.zero(dqp),
      lse.set(f32.load(at(p.lse, F.lseIndex()))),
      ifThen(f32.gt(lse.get(), f32.const(-Infinity)), seq(
        R.dot(gp, op, D),
        scores(qp, p.k, F.kt, F.row),
        scores(gp, p.v, F.vt, F.row2),
        // p (in row) and ds (in row2) for 4 keys at a time, 0 where not attended
        forRange(F.key, i32.const(0), F.sEnd4.get(), seq(
          att4.set(F.attended4()),
          p4.set(v128.bitselect(vector.exp(f32x4.sub(f32x4.mul(v128.load(at4(F.row)), f32x4.splat(p.scale.get())), f32x4.splat(lse.get()))), zero4, att4.get())),
          v128.store(at4(F.row), p4.get()),
          v128.store(at4(F.row2), v128.bitselect(f32x4.mul(f32x4.mul(p4.get(), f32x4.sub(v128.load(at4(F.row2)), f32x4.splat(D.get()))), f32x4.splat(p.scale.get())), zero4, att4.get())),
        ), i32.const(4)),
        ifThen(F.transposed.get(), seq(
          // dq = Σ ds·k through Kᵀ; dKᵀ += q·ds, dVᵀ += dO·p (ds and p are 0 past the attended keys)
          F.timesT(F.row2, F.kt, dqp),
          F.outerAdd(qp, F.row2, F.dkt),
          F.outerAdd(gp, F.row, F.dvt),
        ), forRange(F.key, i32.const(0), F.sEnd.get(), ifThen(F.attended(), seq(
          pr.set(f32.load(at4(F.row))),
          ds.set(f32.load(at4(F.row2))),
          dkp.set(F.keyRow(p.dk)),
          dvp.set(F.keyRow(p.dv)),
          kp.set(F.keyRow(p.k)),
          R.axpy(dqp, kp, ds),
          R.axpy(dkp, qp, ds),
          R.axpy(dvp, gp, pr),
        )))),
      )),
    ), { dk: p.dk, dv: p.dv }),
  );
});
