/**
 * Index kernels: gather of rows by id (embedding lookup, indexSelect), its adjoint scatter-add
 * (threads own column ranges, so the sum per row keeps a fixed order), and rotary embedding (HF
 * `rotate_half`: pairs (i, i + D/2) rotated by the table's angle for the token's position).
 */
import { f32, forRange, i32, select, seq } from '../asm.js';
import { kernel } from '../kernel.js';
import { at } from './elementwise.js';

/** out[(a·n + j)·inner + c] = x[(a·dim + ids[j])·inner + c] (4-byte elements; ids checked by the host). */
export const gatherKernel = kernel('gather', { x: 'i32', ids: 'i32', out: 'i32', outer: 'i32', n: 'i32', dim: 'i32', inner: 'i32' }, (k) => {
  const { x, ids, out, outer, n, dim, inner } = k.p;
  const u = k.i32(), s = k.i32(), e = k.i32(), c = k.i32(), src = k.i32(), dst = k.i32();
  return seq(
    k.share(i32.mul(outer.get(), n.get()), s, e),
    forRange(u, s.get(), e.get(), seq(
      src.set(i32.mul(i32.add(i32.mul(i32.div_s(u.get(), n.get()), dim.get()), i32.load(at(ids, i32.rem_s(u.get(), n.get())))), inner.get())),
      dst.set(i32.mul(u.get(), inner.get())),
      forRange(c, i32.const(0), inner.get(), i32.store(at(out, i32.add(dst.get(), c.get())), i32.load(at(x, i32.add(src.get(), c.get()))))),
    )),
  );
});

/** out (zeroed) [(a·dim + ids[j])·inner + c] += dy[(a·n + j)·inner + c]; threads split c. */
export const scatterAddKernel = kernel('scatter_add', { dy: 'i32', ids: 'i32', out: 'i32', outer: 'i32', n: 'i32', dim: 'i32', inner: 'i32' }, (k) => {
  const { dy, ids, out, outer, n, dim, inner } = k.p;
  const a = k.i32(), j = k.i32(), c = k.i32(), s = k.i32(), e = k.i32(), src = k.i32(), dst = k.i32();
  return seq(
    k.share(inner.get(), s, e),
    forRange(a, i32.const(0), outer.get(), forRange(j, i32.const(0), n.get(), seq(
      src.set(i32.mul(i32.add(i32.mul(a.get(), n.get()), j.get()), inner.get())),
      dst.set(i32.mul(i32.add(i32.mul(a.get(), dim.get()), i32.load(at(ids, j.get()))), inner.get())),
      forRange(c, s.get(), e.get(), f32.store(at(out, i32.add(dst.get(), c.get())), f32.add(f32.load(at(out, i32.add(dst.get(), c.get()))), f32.load(at(dy, i32.add(src.get(), c.get())))))),
    ))),
  );
});

/** x, out [rows = B·T, h, d]; pos [rows] i32; table [maxPos, d/2, 2] (cos, sin); sign -1 rotates back. */
export const ropeKernel = kernel('rope', { x: 'i32', pos: 'i32', table: 'i32', out: 'i32', rows: 'i32', h: 'i32', d: 'i32', maxPos: 'i32', sign: 'f32' }, (k) => {
  const { x, pos, table, out, rows, h, d, maxPos, sign } = k.p;
  const r = k.i32(), s = k.i32(), e = k.i32(), hi = k.i32(), i = k.i32(), p = k.i32(), half = k.i32(), inTable = k.i32(), base = k.i32(), tb = k.i32();
  const cs = k.f32(), sn = k.f32(), x1 = k.f32(), x2 = k.f32();
  return seq(
    half.set(i32.shr_s(d.get(), i32.const(1))),
    k.share(rows.get(), s, e),
    forRange(r, s.get(), e.get(), seq(
      p.set(i32.load(at(pos, r.get()))),
      inTable.set(i32.and(i32.ge_s(p.get(), i32.const(0)), i32.lt_s(p.get(), maxPos.get()))),
      forRange(hi, i32.const(0), h.get(), seq(
        base.set(i32.mul(i32.add(i32.mul(r.get(), h.get()), hi.get()), d.get())),
        forRange(i, i32.const(0), half.get(), seq(
          tb.set(i32.shl(i32.add(i32.mul(select(p.get(), i32.const(0), inTable.get()), half.get()), i.get()), i32.const(1))),
          cs.set(select(f32.load(at(table, tb.get())), f32.const(1), inTable.get())),
          sn.set(select(f32.mul(sign.get(), f32.load(at(table, i32.add(tb.get(), i32.const(1))))), f32.const(0), inTable.get())),
          x1.set(f32.load(at(x, i32.add(base.get(), i.get())))),
          x2.set(f32.load(at(x, i32.add(i32.add(base.get(), i.get()), half.get())))),
          f32.store(at(out, i32.add(base.get(), i.get())), f32.sub(f32.mul(x1.get(), cs.get()), f32.mul(x2.get(), sn.get()))),
          f32.store(at(out, i32.add(i32.add(base.get(), i.get()), half.get())), f32.add(f32.mul(x2.get(), cs.get()), f32.mul(x1.get(), sn.get()))),
        )),
      )),
    )),
  );
});

export const INDEXING = [gatherKernel, scatterAddKernel, ropeKernel];
