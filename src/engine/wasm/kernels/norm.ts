/**
 * RMSNorm (Zhang & Sennrich 2019; HF LlamaRMSNorm) and LayerNorm (Ba et al. 2016; torch biased
 * variance) over rows, and their backward. Rows are split between threads; each thread adds its
 * rows' weight (and bias) gradient into its own partial row, which the host then sums.
 */
import { f32, forRange, i32, seq, type Code, type Local } from '../asm.js';
import { kernel } from '../kernel.js';
import { at } from './elementwise.js';

/** for j < n: idx = r·n + j; body */
const rowLoop = (j: Local, idx: Local, r: Local, n: Local, body: Code) => forRange(j, i32.const(0), n.get(), seq(idx.set(i32.add(i32.mul(r.get(), n.get()), j.get())), body));

export const rmsnormKernel = kernel('rmsnorm', { x: 'i32', w: 'i32', y: 'i32', rstd: 'i32', rows: 'i32', n: 'i32', eps: 'f32' }, (k) => {
  const { x, w, y, rstd, rows, n, eps } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), j = k.i32(), idx = k.i32(), ss = k.f32(), v = k.f32();
  return seq(
    k.share(rows.get(), s, e),
    forRange(r, s.get(), e.get(), seq(
      ss.set(f32.const(0)),
      rowLoop(j, idx, r, n, seq(v.set(f32.load(at(x, idx.get()))), ss.set(f32.add(ss.get(), f32.mul(v.get(), v.get()))))),
      ss.set(f32.div(f32.const(1), f32.sqrt(f32.add(f32.div(ss.get(), f32.convert_i32_s(n.get())), eps.get())))),
      f32.store(at(rstd, r.get()), ss.get()),
      rowLoop(j, idx, r, n, f32.store(at(y, idx.get()), f32.mul(f32.mul(f32.load(at(x, idx.get())), ss.get()), f32.load(at(w, j.get()))))),
    )),
  );
});

/** dx = rstd·(g·w - x̂·Σ(g·w·x̂)/n); dw (partial row of this thread) += g·x̂. */
export const rmsnormGradKernel = kernel('rmsnorm_grad', { x: 'i32', w: 'i32', rstd: 'i32', dy: 'i32', dx: 'i32', dw: 'i32', rows: 'i32', n: 'i32' }, (k) => {
  const { x, w, rstd, dy, dx, dw, rows, n } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), j = k.i32(), idx = k.i32(), pdw = k.i32(), rs = k.f32(), dot = k.f32(), xh = k.f32(), g = k.f32();
  return seq(
    k.share(rows.get(), s, e),
    pdw.set(i32.add(dw.get(), i32.shl(i32.mul(k.tid.get(), n.get()), i32.const(2)))),
    forRange(r, s.get(), e.get(), seq(
      rs.set(f32.load(at(rstd, r.get()))),
      dot.set(f32.const(0)),
      rowLoop(j, idx, r, n, dot.set(f32.add(dot.get(), f32.mul(f32.mul(f32.load(at(dy, idx.get())), f32.load(at(w, j.get()))), f32.mul(f32.load(at(x, idx.get())), rs.get()))))),
      rowLoop(j, idx, r, n, seq(
        xh.set(f32.mul(f32.load(at(x, idx.get())), rs.get())),
        g.set(f32.load(at(dy, idx.get()))),
        f32.store(at(dx, idx.get()), f32.mul(rs.get(), f32.sub(f32.mul(g.get(), f32.load(at(w, j.get()))), f32.div(f32.mul(xh.get(), dot.get()), f32.convert_i32_s(n.get()))))),
        f32.store(at(pdw, j.get()), f32.add(f32.load(at(pdw, j.get())), f32.mul(g.get(), xh.get()))),
      )),
    )),
  );
});

export const layernormKernel = kernel('layernorm', { x: 'i32', w: 'i32', b: 'i32', y: 'i32', mean: 'i32', rstd: 'i32', rows: 'i32', n: 'i32', eps: 'f32' }, (k) => {
  const { x, w, b, y, mean, rstd, rows, n, eps } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), j = k.i32(), idx = k.i32(), mu = k.f32(), vr = k.f32(), d = k.f32();
  const nf = f32.convert_i32_s(n.get());
  return seq(
    k.share(rows.get(), s, e),
    forRange(r, s.get(), e.get(), seq(
      mu.set(f32.const(0)),
      rowLoop(j, idx, r, n, mu.set(f32.add(mu.get(), f32.load(at(x, idx.get()))))),
      mu.set(f32.div(mu.get(), nf)),
      vr.set(f32.const(0)),
      rowLoop(j, idx, r, n, seq(d.set(f32.sub(f32.load(at(x, idx.get())), mu.get())), vr.set(f32.add(vr.get(), f32.mul(d.get(), d.get()))))),
      vr.set(f32.div(f32.const(1), f32.sqrt(f32.add(f32.div(vr.get(), nf), eps.get())))),
      f32.store(at(mean, r.get()), mu.get()),
      f32.store(at(rstd, r.get()), vr.get()),
      rowLoop(j, idx, r, n, f32.store(at(y, idx.get()), f32.add(f32.mul(f32.mul(f32.sub(f32.load(at(x, idx.get())), mu.get()), vr.get()), f32.load(at(w, j.get()))), f32.load(at(b, j.get()))))),
    )),
  );
});

/** dx = rstd·(g·w - Σ(g·w)/n - x̂·Σ(g·w·x̂)/n); partial rows [dw; db] of this thread += [g·x̂; g]. */
export const layernormGradKernel = kernel('layernorm_grad', { x: 'i32', w: 'i32', mean: 'i32', rstd: 'i32', dy: 'i32', dx: 'i32', dwb: 'i32', rows: 'i32', n: 'i32' }, (k) => {
  const { x, w, mean, rstd, dy, dx, dwb, rows, n } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), j = k.i32(), idx = k.i32(), pdw = k.i32(), pdb = k.i32();
  const mu = k.f32(), rs = k.f32(), s1 = k.f32(), s2 = k.f32(), xh = k.f32(), g = k.f32(), gw = k.f32();
  const nf = f32.convert_i32_s(n.get());
  const load = seq(
    xh.set(f32.mul(f32.sub(f32.load(at(x, idx.get())), mu.get()), rs.get())),
    g.set(f32.load(at(dy, idx.get()))),
    gw.set(f32.mul(g.get(), f32.load(at(w, j.get())))),
  );
  return seq(
    k.share(rows.get(), s, e),
    pdw.set(i32.add(dwb.get(), i32.shl(i32.mul(i32.mul(k.tid.get(), n.get()), i32.const(2)), i32.const(2)))),
    pdb.set(i32.add(pdw.get(), i32.shl(n.get(), i32.const(2)))),
    forRange(r, s.get(), e.get(), seq(
      mu.set(f32.load(at(mean, r.get()))),
      rs.set(f32.load(at(rstd, r.get()))),
      s1.set(f32.const(0)),
      s2.set(f32.const(0)),
      rowLoop(j, idx, r, n, seq(
        load,
        s1.set(f32.add(s1.get(), gw.get())),
        s2.set(f32.add(s2.get(), f32.mul(gw.get(), xh.get()))),
        f32.store(at(pdw, j.get()), f32.add(f32.load(at(pdw, j.get())), f32.mul(g.get(), xh.get()))),
        f32.store(at(pdb, j.get()), f32.add(f32.load(at(pdb, j.get())), g.get())),
      )),
      rowLoop(j, idx, r, n, seq(
        load,
        f32.store(at(dx, idx.get()), f32.mul(rs.get(), f32.sub(f32.sub(gw.get(), f32.div(s1.get(), nf)), f32.div(f32.mul(xh.get(), s2.get()), nf)))),
      )),
    )),
  );
});

export const NORMS = [rmsnormKernel, rmsnormGradKernel, layernormKernel, layernormGradKernel];
