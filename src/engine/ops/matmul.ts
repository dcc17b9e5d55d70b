/**
 * Batched matrix multiply with transpose flags and its gradient.
 */
import type { MatmulParams } from '../backend.js';
import { numel } from '../dtype.js';
import { record, Tensor } from '../tensor.js';
import { sumTo, wrap } from './shape.js';

export interface MatmulOptions {
  /** Treat a's last two dims as transposed (a stored [..., K, M]). */
  transA?: boolean;
  /** Treat b's last two dims as transposed (b stored [..., N, K]), e.g. x @ W^T for a Linear weight [out, in]. */
  transB?: boolean;
}

/**
 * C = op(a) · op(b). a [..., M, K] (or [..., K, M] with transA), b [..., K, N] (or [..., N, K] with
 * transB). Leading (batch) dims must be equal, or one side has none (a plain matrix shared over the
 * batch). Output [...batch, M, N]. f32 in and out.
 * @throws naming both shapes when inner dims or batch dims disagree.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  a.assertAlive();
  b.assertAlive();
  const transA = !!opts.transA, transB = !!opts.transB;
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul needs matrices, got ${a.describe()} and ${b.describe()}`);
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar, k = transA ? ar : ac;
  const kb = transB ? bc : br, n = transB ? br : bc;
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  const describe = () => `${a.describe()}${transA ? 'ᵀ' : ''} @ ${b.describe()}${transB ? 'ᵀ' : ''}`;
  if (k !== kb) throw new Error(`matmul: inner dims differ (${k} vs ${kb}) in ${describe()}`);
  if (aBatch.length && bBatch.length && aBatch.join() !== bBatch.join()) throw new Error(`matmul: batch dims differ in ${describe()}`);
  const batchShape = aBatch.length ? aBatch : bBatch;
  const batch = numel(batchShape);
  // A shared right operand (x·W over [B, T, K]): one [B·T, K] product instead of B small ones, whose
  // few rows (one per sequence when decoding) would leave most of each kernel's row block idle.
  if (aBatch.length && !bBatch.length && !transA && batch > 1) return matmul(a.reshape([batch * m, k]), b, opts).reshape([...batchShape, m, n]);
  const p: MatmulParams = {
    batch, m, n, k, transA, transB,
    aBatchStride: aBatch.length ? m * k : 0,
    bBatchStride: bBatch.length ? k * n : 0,
  };
  const out = wrap(a.backend.matmul(a.storage, b.storage, p), [...batchShape, m, n]);
  record('matmul', [a, b], [out], ([g]) => {
    if (!g) return [null, null];
    // d op(A) = G op(B)ᵀ, d op(B) = op(A)ᵀ G; transposed operands take the transposed form.
    let da: Tensor | null = null, db: Tensor | null = null;
    if (a.requiresGrad) {
      da = transA ? matmul(b, g, { transA: transB, transB: true }) : matmul(g, b, { transB: !transB });
      if (!aBatch.length && batch > 1) da = sumTo(da, a.shape);
    }
    if (b.requiresGrad) {
      if (!bBatch.length && aBatch.length && !transA) {
        // Shared weight: fold the batch into rows, one matmul instead of a batched one plus a sum.
        const a2 = a.reshape([batch * m, k]), g2 = g.reshape([batch * m, n]);
        db = transB ? matmul(g2, a2, { transA: true }) : matmul(a2, g2, { transA: true });
      } else {
        db = transB ? matmul(g, a, { transA: true, transB: transA }) : matmul(a, g, { transA: !transA });
        if (!bBatch.length && batch > 1) db = sumTo(db, b.shape);
      }
    }
    return [da, db];
  });
  return out;
}
