/**
 * Optimizer kernels: Σx² into a slot (global grad norm), the clip coefficient, and in-place AdamW
 * (Loshchilov & Hutter 2019, torch.optim.AdamW) and SGD with momentum (torch.optim.SGD, dampening
 * 0). 1 - β and the bias corrections arrive computed in float64 (1 - 0.999 in f32 loses digits). `coef` (0 = none) points at [norm, clip coefficient] from clipCoef, scaling the gradient.
 */
import { f32, f32x4, forRange, i32, ifThen, select, seq, type Local } from '../asm.js';
import { kernel, type KernelCtx } from '../kernel.js';
import { at, lanesLoop } from './elementwise.js';

/** out[0] += Σ x² (single-threaded: one partial per parameter tensor keeps the order fixed). */
export const sumSquaresKernel = kernel('sum_squares', { x: 'i32', n: 'i32', out: 'i32' }, (k) => {
  const { x, n, out } = k.p;
  const i = k.i32(), acc = k.f32(), v = k.f32();
  return seq(
    acc.set(f32.const(0)),
    forRange(i, i32.const(0), n.get(), seq(v.set(f32.load(at(x, i.get()))), acc.set(f32.add(acc.get(), f32.mul(v.get(), v.get()))))),
    f32.store(out.get(), f32.add(f32.load(out.get()), acc.get())),
  );
});

/** out = [norm, min(1, maxNorm / (norm + 1e-6))] with norm = sqrt(Σ partial[0..k)). */
export const clipCoefKernel = kernel('clip_coef', { partial: 'i32', k: 'i32', maxNorm: 'f32', out: 'i32' }, (K) => {
  const { partial, k, maxNorm, out } = K.p;
  const i = K.i32(), acc = K.f32();
  return seq(
    acc.set(f32.const(0)),
    forRange(i, i32.const(0), k.get(), acc.set(f32.add(acc.get(), f32.load(at(partial, i.get()))))),
    acc.set(f32.sqrt(acc.get())),
    f32.store(out.get(), acc.get()),
    f32.store(out.get(), f32.min(f32.const(1), f32.div(maxNorm.get(), f32.add(acc.get(), f32.const(1e-6)))), 4),
  );
});

const coefOf = (coef: Local) => select(f32.load(coef.get(), 4), f32.const(1), coef.get());

export const adamwKernel = kernel('adamw', {
  p: 'i32', g: 'i32', m: 'i32', v: 'i32', n: 'i32', lr: 'f32', beta1: 'f32', beta2: 'f32', omb1: 'f32', omb2: 'f32', eps: 'f32', decay: 'f32', bc1: 'f32', bc2: 'f32', coef: 'i32',
}, (k) => {
  const { p, g, m, v, n, lr, beta1, beta2, omb1, omb2, eps, decay, bc1, bc2, coef } = k.p;
  const c = k.f32();
  const K = k as unknown as KernelCtx<string>;
  return seq(
    c.set(coefOf(coef)),
    lanesLoop(K, n, (L, i) => {
      const s = (x: Local) => (L.type === 'f32' ? x.get() : f32x4.splat(x.get()));
      const gi = L.type === 'f32' ? K.f32() : K.v128(), mi = L.type === 'f32' ? K.f32() : K.v128(), vi = L.type === 'f32' ? K.f32() : K.v128();
      return seq(
        gi.set(L.mul(L.load(at(g, i.get())), s(c))),
        mi.set(L.add(L.mul(s(beta1), L.load(at(m, i.get()))), L.mul(s(omb1), gi.get()))),
        vi.set(L.add(L.mul(s(beta2), L.load(at(v, i.get()))), L.mul(L.mul(s(omb2), gi.get()), gi.get()))),
        L.store(at(m, i.get()), mi.get()),
        L.store(at(v, i.get()), vi.get()),
        L.store(at(p, i.get()), L.sub(
          L.mul(L.load(at(p, i.get())), s(decay)),
          L.div(L.mul(s(lr), L.div(mi.get(), s(bc1))), L.add(L.sqrt(L.div(vi.get(), s(bc2))), s(eps))),
        )),
      );
    }),
  );
});

export const sgdKernel = kernel('sgd', { p: 'i32', g: 'i32', buf: 'i32', n: 'i32', lr: 'f32', momentum: 'f32', decay: 'f32', coef: 'i32' }, (k) => {
  const { p, g, buf, n, lr, momentum, decay, coef } = k.p;
  const i = k.i32(), s = k.i32(), e = k.i32(), c = k.f32(), gi = k.f32();
  return seq(
    c.set(coefOf(coef)),
    k.share(n.get(), s, e),
    forRange(i, s.get(), e.get(), seq(
      gi.set(f32.add(f32.mul(f32.load(at(g, i.get())), c.get()), f32.mul(decay.get(), f32.load(at(p, i.get()))))),
      // with a momentum buffer: buf = momentum·buf + g, step along buf
      gi.set(select(f32.add(f32.mul(momentum.get(), f32.load(at(buf, i.get()))), gi.get()), gi.get(), buf.get())),
      ifThen(buf.get(), f32.store(at(buf, i.get()), gi.get())),
      f32.store(at(p, i.get()), f32.sub(f32.load(at(p, i.get())), f32.mul(lr.get(), gi.get()))),
    )),
  );
});

export const OPTIM = [sumSquaresKernel, clipCoefKernel, adamwKernel, sgdKernel];
