/**
 * Reductions along axes: sum, mean, max (keepdim optional), with gradients.
 */
import { numel } from '../dtype.js';
import { record, Tensor } from '../tensor.js';
import { broadcastTo, wrap } from './shape.js';
import { div, equal, mul, affine } from './elementwise.js';

function normAxes(x: Tensor, axes: number | readonly number[] | undefined): number[] {
  const list = axes === undefined ? [...x.shape.keys()] : typeof axes === 'number' ? [axes] : [...axes];
  return [...new Set(list.map((a) => {
    const r = a < 0 ? a + x.rank : a;
    if (r < 0 || r >= x.rank) throw new Error(`reduction axis ${a} out of range for ${x.describe()}`);
    return r;
  }))].sort((a, b) => b - a);
}

function reduceRaw(x: Tensor, op: 'sum' | 'max', axes: number[]): Tensor {
  let cur = x;
  const shape = [...x.shape];
  for (const a of axes) {
    const outer = numel(shape.slice(0, a)), n = shape[a], inner = numel(shape.slice(a + 1));
    shape[a] = 1;
    cur = wrap(x.backend.reduce(op, cur.storage, outer, n, inner), shape);
  }
  return cur;
}

const dropAxes = (shape: readonly number[], axes: number[]) => shape.filter((_, i) => !axes.includes(i));

/** Σ over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  x.assertAlive();
  const ax = normAxes(x, axes);
  const kept = reduceRaw(x, 'sum', ax);
  const out = keepdim ? kept : kept.reshape(dropAxes(x.shape, ax));
  record('sum', [x], [out], ([g]) => [g && broadcastTo(g.reshape(kept.shape), x.shape)]);
  return out;
}

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  const ax = normAxes(x, axes);
  const n = ax.reduce((acc, a) => acc * x.shape[a], 1);
  return affine(sum(x, axes, keepdim), 1 / n);
}

/** Max over `axes`; the gradient is shared equally among tied maxima (as torch.amax). */
export function max(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  x.assertAlive();
  const ax = normAxes(x, axes);
  const kept = reduceRaw(x, 'max', ax);
  const out = keepdim ? kept : kept.reshape(dropAxes(x.shape, ax));
  record('max', [x], [out], ([g]) => {
    if (!g) return [null];
    const isMax = equal(x, kept);
    const count = reduceRaw(isMax, 'sum', ax);
    return [mul(isMax, broadcastTo(div(g.reshape(kept.shape), count), x.shape))];
  });
  return out;
}
