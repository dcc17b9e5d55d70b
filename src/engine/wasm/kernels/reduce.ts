/**
 * Reductions over the middle axis of [outer, n, inner], and softmax over rows (optional keep-mask,
 * fully masked rows give 0) with its backward dx = y·(dy - Σ y·dy).
 */
import type { ReduceOp } from '../../backend.js';
import { f32, forRange, i32, ifThen, select, seq, type Code } from '../asm.js';
import { kernel, type KernelDef } from '../kernel.js';
import { expf } from './math.js';
import { at } from './elementwise.js';

const combine: Record<ReduceOp, { init: number; op: (a: Code, b: Code) => Code }> = {
  sum: { init: 0, op: f32.add },
  max: { init: -Infinity, op: f32.max },
};

export const reduceKernels = Object.fromEntries(
  (Object.keys(combine) as ReduceOp[]).map((op) => [
    op,
    kernel(`reduce_${op}`, { x: 'i32', out: 'i32', outer: 'i32', n: 'i32', inner: 'i32' }, (k) => {
      const { x, out, outer, n, inner } = k.p;
      const u = k.i32(), s = k.i32(), e = k.i32(), j = k.i32(), base = k.i32(), acc = k.f32();
      // unit u = (o, c): elements x[(o·n + j)·inner + c], j < n
      return seq(
        k.share(i32.mul(outer.get(), inner.get()), s, e),
        forRange(u, s.get(), e.get(), seq(
          base.set(i32.add(i32.mul(i32.mul(i32.div_s(u.get(), inner.get()), n.get()), inner.get()), i32.rem_s(u.get(), inner.get()))),
          acc.set(f32.const(combine[op].init)),
          forRange(j, i32.const(0), n.get(), acc.set(combine[op].op(acc.get(), f32.load(at(x, i32.add(base.get(), i32.mul(j.get(), inner.get()))))))),
          f32.store(at(out, u.get()), acc.get()),
        )),
      );
    }),
  ]),
) as Record<ReduceOp, KernelDef>;

export const softmaxKernel = kernel('softmax', { x: 'i32', mask: 'i32', out: 'i32', rows: 'i32', n: 'i32' }, (k) => {
  const { x, mask, out, rows, n } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), j = k.i32(), idx = k.i32(), mx = k.f32(), sum = k.f32(), v = k.f32();
  const keep = (i: Code) => i32.or(i32.eqz(mask.get()), i32.ne(i32.load(at(mask, i)), i32.const(0)));
  const row = (body: Code) => forRange(j, i32.const(0), n.get(), seq(idx.set(i32.add(i32.mul(r.get(), n.get()), j.get())), body));
  return seq(
    k.share(rows.get(), s, e),
    forRange(r, s.get(), e.get(), seq(
      mx.set(f32.const(-Infinity)),
      row(ifThen(keep(idx.get()), mx.set(f32.max(mx.get(), f32.load(at(x, idx.get())))))),
      sum.set(f32.const(0)),
      row(seq(
        v.set(select(expf(f32.sub(f32.load(at(x, idx.get())), mx.get())), f32.const(0), i32.and(keep(idx.get()), f32.gt(mx.get(), f32.const(-Infinity))))),
        f32.store(at(out, idx.get()), v.get()),
        sum.set(f32.add(sum.get(), v.get())),
      )),
      sum.set(select(f32.div(f32.const(1), sum.get()), f32.const(0), f32.gt(sum.get(), f32.const(0)))),
      row(f32.store(at(out, idx.get()), f32.mul(f32.load(at(out, idx.get())), sum.get()))),
    )),
  );
});

export const softmaxGradKernel = kernel('softmax_grad', { y: 'i32', dy: 'i32', out: 'i32', rows: 'i32', n: 'i32' }, (k) => {
  const { y, dy, out, rows, n } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), j = k.i32(), idx = k.i32(), dot = k.f32();
  const row = (body: Code) => forRange(j, i32.const(0), n.get(), seq(idx.set(i32.add(i32.mul(r.get(), n.get()), j.get())), body));
  return seq(
    k.share(rows.get(), s, e),
    forRange(r, s.get(), e.get(), seq(
      dot.set(f32.const(0)),
      row(dot.set(f32.add(dot.get(), f32.mul(f32.load(at(y, idx.get())), f32.load(at(dy, idx.get())))))),
      row(f32.store(at(out, idx.get()), f32.mul(f32.load(at(y, idx.get())), f32.sub(f32.load(at(dy, idx.get())), dot.get())))),
    )),
  );
});

export const REDUCE = [...Object.values(reduceKernels), softmaxKernel, softmaxGradKernel];
