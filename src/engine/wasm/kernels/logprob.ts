/**
 * The fused token log-prob over vocabulary chunks (logits of a large vocabulary are never held
 * whole): per row, running statistics (max m, Σe^{z-m}, Σe^{z-m}·z, target z) with z = logit /
 * temperature, finished into (log p(target), entropy), and the chunk's gradient
 * dz_j = dlogp·(1[j=target] - p_j) - dent·p_j·(log p_j + H), divided by the temperature.
 * A chunk updates a row in two passes, 4 lanes at a time: its maximum (rescaling the running sums
 * once), then the exponential sums.
 */
import { f32, f32x4, forRange, i32, ifThen, select, seq, v128, type Code, type Local } from '../asm.js';
import { kernel, type KernelCtx } from '../kernel.js';
import { at } from './elementwise.js';
import { expf, hmax, hsum, logf, scalar, vector, type Lanes } from './math.js';

/** Over j < vc of one row: `body(L, j)` 4 lanes at a time, then with scalar lanes for the tail. */
function rowLanes(K: KernelCtx<string>, vc: Local, body: (L: Lanes, j: Local) => Code): Code {
  const j = K.i32(), v4 = K.i32();
  return seq(
    v4.set(i32.and(vc.get(), i32.const(-4))),
    forRange(j, i32.const(0), v4.get(), body(vector, j), i32.const(4)),
    forRange(j, v4.get(), vc.get(), body(scalar, j)),
  );
}

/** stats [n, 4] updated in place from logits [n, vc] of vocabulary ids [v0, v0 + vc). */
export const logprobChunkKernel = kernel('logprob_chunk', { logits: 'i32', targets: 'i32', stats: 'i32', n: 'i32', vc: 'i32', v0: 'i32', invT: 'f32' }, (k) => {
  const K = k as unknown as KernelCtx<string>;
  const { logits, targets, stats, n, vc, v0, invT } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), st = k.i32(), tj = k.i32(), row = k.i32();
  const m = k.f32(), cm = k.f32(), c = k.f32(), sum = k.f32(), sz = k.f32(), tz = k.f32();
  const mx4 = k.v128(), s4 = k.v128(), z4 = k.v128(), e4 = k.v128(), sz4 = k.v128(), t = k.v128();
  const zs = k.f32(), es = k.f32();
  const splat = (L: Lanes, x: Local) => (L.type === 'f32' ? x.get() : f32x4.splat(x.get()));
  return seq(
    k.share(n.get(), s, e),
    forRange(r, s.get(), e.get(), seq(
      st.set(i32.add(stats.get(), i32.shl(r.get(), i32.const(4)))),
      row.set(i32.add(logits.get(), i32.shl(i32.mul(r.get(), vc.get()), i32.const(2)))),
      // pass 1: the chunk's max of z
      mx4.set(f32x4.splat(f32.const(-Infinity))),
      cm.set(f32.const(-Infinity)),
      rowLanes(K, vc, (L, j) => (L.type === 'v128'
        ? mx4.set(f32x4.max(mx4.get(), v128.load(at(row, j.get()))))
        : cm.set(f32.max(cm.get(), f32.load(at(row, j.get())))))),
      cm.set(f32.mul(f32.max(cm.get(), hmax(mx4.get(), t)), invT.get())),
      // new running max; the sums so far rescale once
      m.set(f32.load(st.get())),
      c.set(select(expf(f32.sub(m.get(), cm.get())), f32.const(1), f32.gt(cm.get(), m.get()))),
      m.set(f32.max(m.get(), cm.get())),
      sum.set(f32.mul(f32.load(st.get(), 4), c.get())),
      sz.set(f32.mul(f32.load(st.get(), 8), c.get())),
      // pass 2: Σ e^{z-m} and Σ e^{z-m}·z
      s4.set(f32x4.splat(f32.const(0))),
      sz4.set(f32x4.splat(f32.const(0))),
      rowLanes(K, vc, (L, j) => {
        const zl = L.type === 'v128' ? z4 : zs, el = L.type === 'v128' ? e4 : es;
        const acc = (a: Local, x: Code) => (L.type === 'v128' ? a.set(f32x4.add(a.get(), x)) : []);
        return seq(
          zl.set(L.mul(L.load(at(row, j.get())), splat(L, invT))),
          el.set(L.exp(L.sub(zl.get(), splat(L, m)))),
          L.type === 'v128' ? seq(acc(s4, el.get()), acc(sz4, f32x4.mul(el.get(), zl.get()))) : seq(sum.set(f32.add(sum.get(), el.get())), sz.set(f32.add(sz.get(), f32.mul(el.get(), zl.get())))),
        );
      }),
      f32.store(st.get(), m.get()),
      f32.store(st.get(), f32.add(sum.get(), hsum(s4.get(), t)), 4),
      f32.store(st.get(), f32.add(sz.get(), hsum(sz4.get(), t)), 8),
      // the target's z when it falls in this chunk
      tj.set(i32.sub(i32.load(at(targets, r.get())), v0.get())),
      tz.set(select(f32.mul(f32.load(at(row, i32.min_s(i32.max_s(tj.get(), i32.const(0)), i32.sub(vc.get(), i32.const(1))))), invT.get()), f32.load(st.get(), 12), i32.and(i32.ge_s(tj.get(), i32.const(0)), i32.lt_s(tj.get(), vc.get())))),
      f32.store(st.get(), tz.get(), 12),
    )),
  );
});

/** out [n, 2] = (target z - logZ, logZ - Σe·z/Σe); stats[:, 0] = logZ. Single-threaded (it rewrites stats in place). */
export const logprobFinishKernel = kernel('logprob_finish', { stats: 'i32', out: 'i32', n: 'i32' }, (k) => {
  const { stats, out, n } = k.p;
  const r = k.i32(), st = k.i32(), logZ = k.f32();
  return forRange(r, i32.const(0), n.get(), seq(
    st.set(i32.add(stats.get(), i32.shl(r.get(), i32.const(4)))),
    logZ.set(f32.add(f32.load(st.get()), logf(f32.load(st.get(), 4)))),
    f32.store(at(out, i32.shl(r.get(), i32.const(1))), f32.sub(f32.load(st.get(), 12), logZ.get())),
    f32.store(at(out, i32.shl(r.get(), i32.const(1))), f32.sub(logZ.get(), f32.div(f32.load(st.get(), 8), f32.load(st.get(), 4))), 4),
    f32.store(st.get(), logZ.get()),
  ));
});

/** dz [n, vc]: every element from p = e^{z - logZ}, then the target's 1[j = target]·dlogp added. */
export const logprobChunkGradKernel = kernel('logprob_chunk_grad', {
  logits: 'i32', targets: 'i32', out: 'i32', stats: 'i32', dlogp: 'i32', dent: 'i32', dz: 'i32', n: 'i32', vc: 'i32', v0: 'i32', invT: 'f32',
}, (k) => {
  const K = k as unknown as KernelCtx<string>;
  const { logits, targets, out, stats, dlogp, dent, dz, n, vc, v0, invT } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), tj = k.i32(), row = k.i32(), drow = k.i32();
  const logZ = k.f32(), H = k.f32(), gl = k.f32(), ge = k.f32();
  const lp4 = k.v128(), p4 = k.v128(), lps = k.f32(), ps = k.f32();
  const splat = (L: Lanes, x: Local) => (L.type === 'f32' ? x.get() : f32x4.splat(x.get()));
  return seq(
    k.share(n.get(), s, e),
    forRange(r, s.get(), e.get(), seq(
      logZ.set(f32.load(at(stats, i32.shl(r.get(), i32.const(2))))),
      H.set(f32.load(at(out, i32.shl(r.get(), i32.const(1))), 4)),
      gl.set(f32.load(at(dlogp, r.get()))),
      ge.set(f32.load(at(dent, r.get()))),
      row.set(i32.add(logits.get(), i32.shl(i32.mul(r.get(), vc.get()), i32.const(2)))),
      drow.set(i32.add(dz.get(), i32.shl(i32.mul(r.get(), vc.get()), i32.const(2)))),
      rowLanes(K, vc, (L, j) => {
        const lp = L.type === 'v128' ? lp4 : lps, p = L.type === 'v128' ? p4 : ps;
        return seq(
          lp.set(L.sub(L.mul(L.load(at(row, j.get())), splat(L, invT)), splat(L, logZ))),
          p.set(L.exp(lp.get())),
          // invT·(-dlogp·p - dent·p·(log p + H))
          L.store(at(drow, j.get()), L.mul(splat(L, invT), L.neg(L.mul(p.get(), L.add(splat(L, gl), L.mul(splat(L, ge), L.add(lp.get(), splat(L, H)))))))),
        );
      }),
      tj.set(i32.sub(i32.load(at(targets, r.get())), v0.get())),
      ifTargetIn(tj, vc, f32.store(at(drow, tj.get()), f32.add(f32.load(at(drow, tj.get())), f32.mul(gl.get(), invT.get())))),
    )),
  );
});

const ifTargetIn = (tj: Local, vc: Local, then: Code): Code => ifThen(i32.and(i32.ge_s(tj.get(), i32.const(0)), i32.lt_s(tj.get(), vc.get())), then);

export const LOGPROB = [logprobChunkKernel, logprobFinishKernel, logprobChunkGradKernel];
