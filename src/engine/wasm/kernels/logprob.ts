/**
 * The fused token log-prob over vocabulary chunks (logits of a large vocabulary are never held
 * whole): per row, a running (max m, Σe^{z-m}, Σe^{z-m}·z, target z) with z = logit/temperature,
 * finished into (log p(target), entropy), and the chunk's gradient
 * dz_j = dlogp·(1[j=target] - p_j) - dent·p_j·(log p_j + H), divided by the temperature.
 */
import { f32, forRange, i32, select, seq } from '../asm.js';
import { kernel } from '../kernel.js';
import { expf, logf } from './math.js';
import { at } from './elementwise.js';

/** stats [n, 4] updated in place from logits [n, vc] of vocabulary ids [v0, v0 + vc). */
export const logprobChunkKernel = kernel('logprob_chunk', { logits: 'i32', targets: 'i32', stats: 'i32', n: 'i32', vc: 'i32', v0: 'i32', invT: 'f32' }, (k) => {
  const { logits, targets, stats, n, vc, v0, invT } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), j = k.i32(), st = k.i32(), tj = k.i32();
  const m = k.f32(), sum = k.f32(), sz = k.f32(), z = k.f32(), c = k.f32(), ez = k.f32(), tz = k.f32();
  return seq(
    k.share(n.get(), s, e),
    forRange(r, s.get(), e.get(), seq(
      st.set(i32.add(stats.get(), i32.shl(r.get(), i32.const(4)))),
      m.set(f32.load(st.get())),
      sum.set(f32.load(st.get(), 4)),
      sz.set(f32.load(st.get(), 8)),
      tz.set(f32.load(st.get(), 12)),
      tj.set(i32.sub(i32.load(at(targets, r.get())), v0.get())),
      forRange(j, i32.const(0), vc.get(), seq(
        z.set(f32.mul(f32.load(at(logits, i32.add(i32.mul(r.get(), vc.get()), j.get()))), invT.get())),
        // a new maximum rescales the sums (m = -inf at the start: c = 0 on empty sums)
        c.set(select(expf(f32.sub(m.get(), z.get())), f32.const(1), f32.gt(z.get(), m.get()))),
        sum.set(f32.mul(sum.get(), c.get())),
        sz.set(f32.mul(sz.get(), c.get())),
        m.set(f32.max(m.get(), z.get())),
        ez.set(expf(f32.sub(z.get(), m.get()))),
        sum.set(f32.add(sum.get(), ez.get())),
        sz.set(f32.add(sz.get(), f32.mul(ez.get(), z.get()))),
        tz.set(select(z.get(), tz.get(), i32.eq(j.get(), tj.get()))),
      )),
      f32.store(st.get(), m.get()),
      f32.store(st.get(), sum.get(), 4),
      f32.store(st.get(), sz.get(), 8),
      f32.store(st.get(), tz.get(), 12),
    )),
  );
});

/** out [n, 2] = (target z - logZ, logZ - Σe·z/Σe); stats[:, 0] = logZ. */
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

export const logprobChunkGradKernel = kernel('logprob_chunk_grad', {
  logits: 'i32', targets: 'i32', out: 'i32', stats: 'i32', dlogp: 'i32', dent: 'i32', dz: 'i32', n: 'i32', vc: 'i32', v0: 'i32', invT: 'f32',
}, (k) => {
  const { logits, targets, out, stats, dlogp, dent, dz, n, vc, v0, invT } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), j = k.i32(), idx = k.i32(), tj = k.i32();
  const logZ = k.f32(), H = k.f32(), gl = k.f32(), ge = k.f32(), lp = k.f32(), pj = k.f32();
  return seq(
    k.share(n.get(), s, e),
    forRange(r, s.get(), e.get(), seq(
      logZ.set(f32.load(at(stats, i32.shl(r.get(), i32.const(2))))),
      H.set(f32.load(at(out, i32.shl(r.get(), i32.const(1))), 4)),
      gl.set(f32.load(at(dlogp, r.get()))),
      ge.set(f32.load(at(dent, r.get()))),
      tj.set(i32.sub(i32.load(at(targets, r.get())), v0.get())),
      forRange(j, i32.const(0), vc.get(), seq(
        idx.set(i32.add(i32.mul(r.get(), vc.get()), j.get())),
        lp.set(f32.sub(f32.mul(f32.load(at(logits, idx.get())), invT.get()), logZ.get())),
        pj.set(expf(lp.get())),
        f32.store(at(dz, idx.get()), f32.mul(invT.get(), f32.sub(
          f32.mul(gl.get(), f32.sub(select(f32.const(1), f32.const(0), i32.eq(j.get(), tj.get())), pj.get())),
          f32.mul(f32.mul(ge.get(), pj.get()), f32.add(lp.get(), H.get())),
        ))),
      )),
    )),
  );
});

export const LOGPROB = [logprobChunkKernel, logprobFinishKernel, logprobChunkGradKernel];
