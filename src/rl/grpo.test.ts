/**
 * GRPO advantages and loss against hand computation (arithmetic in the comments), on the float64 CPU
 * backend; one comparison of the loss on WebGPU (Dawn) against the CPU.
 */
import { afterAll, describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { f64, gpuBackend, closeness } from '../engine/testing.js';
import type { Backend, Tensor } from '../engine/index.js';
import { computeAdvantages, grpoLoss, LOSS_TYPES, readMetrics, type GRPOLossOptions, type LossType } from './grpo.js';

const cpu = new E.CpuBackend();
const mat = (be: Backend, rows: number[][]) => E.fromArray(be, Float64Array.from(rows.flat()), [rows.length, rows[0].length]);
const leaf = (be: Backend, rows: number[][]) => E.parameter(mat(be, rows));
const num = (t: Tensor) => f64(t)[0];
/** -0 → +0, so exact comparisons do not trip over the sign of a masked zero. */
const plain = (a: ArrayLike<number>) => Array.from(a, (v) => v + 0);

describe('computeAdvantages', () => {
  const rewards = [1, 0.91, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1];

  test("scale_rewards 'group': unbiased group std + 1e-4, as TRL", () => {
    const r = computeAdvantages(rewards, 4);
    // Group 0: mean = 2.11/4 = 0.5275; deviations 0.4725, 0.3825, -0.4275, -0.4275;
    // Σdev² = 0.22325625 + 0.14630625 + 2·0.18275625 = 0.735075; unbiased var = 0.735075/3 = 0.245025,
    // std = 0.495; A = dev / 0.4951.
    const want = [0.4725, 0.3825, -0.4275, -0.4275].map((d) => d / 0.4951);
    want.forEach((w, i) => expect(r.advantages[i]).toBeCloseTo(w, 12));
    // Group 1: all 0.1, std 0, A = 0.
    expect(Array.from(r.advantages.slice(4))).toEqual([0, 0, 0, 0]);
    expect(r.stdRewards[0]).toBeCloseTo(0.495, 12);
    expect(r.isStdZero).toEqual([false, true]);
    // One of two groups (4 of 8 rollouts) has zero std.
    expect(r.metrics.frac_reward_zero_std).toBe(0.5);
    // Batch mean = 2.51/8 = 0.31375.
    expect(r.metrics.reward).toBeCloseTo(0.31375, 12);
  });

  test('two rewards 0 and 1: the unbiased std √0.5, not the biased 0.5', () => {
    // mean 0.5, Σdev² = 0.5, var = 0.5/(2-1) = 0.5; A = ±0.5/(√0.5 + 1e-4) ≈ ±0.7070 (biased std would give ≈ ±1).
    const r = computeAdvantages([0, 1], 2);
    expect(r.advantages[1]).toBeCloseTo(0.5 / (Math.SQRT1_2 + 1e-4), 12);
    expect(r.advantages[0]).toBeCloseTo(-0.5 / (Math.SQRT1_2 + 1e-4), 12);
  });

  test("scale_rewards 'none' (Dr. GRPO): deviations only", () => {
    const r = computeAdvantages(rewards, 4, 'none');
    [0.4725, 0.3825, -0.4275, -0.4275, 0, 0, 0, 0].forEach((w, i) => expect(r.advantages[i]).toBeCloseTo(w, 12));
    expect(r.metrics.frac_reward_zero_std).toBe(0.5);
  });

  test("scale_rewards 'batch': group mean, batch std", () => {
    const r = computeAdvantages(rewards, 4, 'batch');
    // Batch: mean 0.31375; deviations 0.68625, 0.59625, -0.21375 (×6);
    // Σdev² = 0.4709390625 + 0.3555140625 + 6·0.0456890625 = 1.1005875; std = √(1.1005875/7).
    const std = Math.sqrt(1.1005875 / 7);
    expect(r.advantages[0]).toBeCloseTo(0.4725 / (std + 1e-4), 12);
    expect(r.advantages[5]).toBeCloseTo(0, 12);
    expect(r.metrics.reward_std).toBeCloseTo(std, 12);
    // TRL takes isclose(batch std, 0) per rollout: the batch std is not 0, so no rollout counts.
    expect(r.metrics.frac_reward_zero_std).toBe(0);
  });

  test('errors', () => {
    expect(() => computeAdvantages([1, 2, 3], 2)).toThrow(/multiple of num_generations/);
    expect(() => computeAdvantages([1, 2], 1)).toThrow(/num_generations/);
    expect(() => computeAdvantages([1, NaN], 2)).toThrow(/rewards\[1\]/);
  });
});

/** The aggregation example: B = 2, T = 3, ratio 1 (no old log-probs), beta 0. */
function aggregationCase(loss_type: LossType, extra: Partial<GRPOLossOptions> = {}) {
  return E.scope(() => {
    const logp = leaf(cpu, [[-1, -2, -0.5], [-0.3, -1.2, -0.7]]);
    const { loss } = grpoLoss(
      { per_token_logps: logp, advantages: [0.5, -2], completion_mask: mat(cpu, [[1, 1, 0], [1, 0, 0]]) },
      { loss_type, beta: 0, epsilon: 0.2, max_completion_length: 4, num_items_in_batch: 5, ...extra },
    );
    loss.backward();
    return { loss: num(loss), grad: plain(f64(logp.grad!)) };
  });
}

describe('loss types against hand computation', () => {
  // With r = 1 the per-token loss is -A: row 0 (A = 0.5, 2 tokens) gives -0.5, -0.5; row 1 (A = -2,
  // 1 token) gives 2. The gradient w.r.t. logp of an unmasked token is -A·r·w, w its weight in the sum.
  test('grpo: mean over sequences of per-sequence token means', () => {
    // (-1/2 + 2/1)/2 = 0.75; w = 1/(2·len): row 0 -0.5/4 = -0.125, row 1 2/2 = 1.
    const r = aggregationCase('grpo');
    expect(r.loss).toBeCloseTo(0.75, 12);
    [-0.125, -0.125, 0, 1, 0, 0].forEach((w, i) => expect(r.grad[i]).toBeCloseTo(w, 12));
  });
  test('bnpo: token mean over the micro-batch', () => {
    // (-0.5 - 0.5 + 2)/3 = 1/3; grads -0.5/3, 2/3.
    const r = aggregationCase('bnpo');
    expect(r.loss).toBeCloseTo(1 / 3, 12);
    [-0.5 / 3, -0.5 / 3, 0, 2 / 3, 0, 0].forEach((w, i) => expect(r.grad[i]).toBeCloseTo(w, 12));
  });
  test('dr_grpo: token sum / (B · max_completion_length)', () => {
    // 1/(2·4) = 0.125; grads -0.5/8 = -0.0625, 2/8 = 0.25.
    const r = aggregationCase('dr_grpo');
    expect(r.loss).toBeCloseTo(0.125, 12);
    [-0.0625, -0.0625, 0, 0.25, 0, 0].forEach((w, i) => expect(r.grad[i]).toBeCloseTo(w, 12));
  });
  test('dapo: token sum / active tokens of the generation batch', () => {
    // num_items_in_batch = 5: 1/5 = 0.2; grads -0.5/5 = -0.1, 2/5 = 0.4.
    const r = aggregationCase('dapo');
    expect(r.loss).toBeCloseTo(0.2, 12);
    [-0.1, -0.1, 0, 0.4, 0, 0].forEach((w, i) => expect(r.grad[i]).toBeCloseTo(w, 12));
  });
  test('gradient_accumulation_steps divides grpo / bnpo / dr_grpo, not dapo', () => {
    for (const t of LOSS_TYPES) {
      const one = aggregationCase(t), two = aggregationCase(t, { gradient_accumulation_steps: 2 });
      expect(two.loss).toBeCloseTo(t === 'dapo' ? one.loss : one.loss / 2, 12);
    }
  });
});

describe('clipping', () => {
  test('r outside [1 - ε, 1 + ε_high] on the side A pushes it gets the clipped value and no gradient', () => {
    E.scope(() => {
      const logp = leaf(cpu, [[0], [0], [0], [0]]);
      // old = -ln r so that r = exp(0 - old) = 1.5, 1.5, 0.5, 0.5; A = 1, -1, -1, 1; ε = 0.2, ε_high = 0.3.
      const old = mat(cpu, [[-Math.log(1.5)], [-Math.log(1.5)], [-Math.log(0.5)], [-Math.log(0.5)]]);
      const { loss, metrics } = grpoLoss(
        { per_token_logps: logp, old_per_token_logps: old, advantages: [1, -1, -1, 1], completion_mask: mat(cpu, [[1], [1], [1], [1]]) },
        { loss_type: 'bnpo', beta: 0, epsilon: 0.2, epsilon_high: 0.3 },
      );
      loss.backward();
      // 0: -min(1.5·1, 1.3·1) = -1.3 (clipped high)    1: -min(-1.5, -1.3) = 1.5
      // 2: -min(-0.5, -0.8) = 0.8 (clipped low)         3: -min(0.5, 0.8) = -0.5
      // bnpo: (-1.3 + 1.5 + 0.8 - 0.5)/4 = 0.125
      expect(num(loss)).toBeCloseTo(0.125, 12);
      // d/dlogp = -A·r/4 where unclipped: [0, 1.5/4, 0, -0.5/4]
      [0, 0.375, 0, -0.125].forEach((w, i) => expect(f64(logp.grad!)[i]).toBeCloseTo(w, 12));
      expect(num(metrics['clip_ratio/low_mean']!)).toBe(0.25);
      expect(num(metrics['clip_ratio/high_mean']!)).toBe(0.25);
      expect(num(metrics['clip_ratio/region_mean']!)).toBe(0.5);
    });
  });
});

describe('k3 KL estimator', () => {
  test('equals exp(d) - d - 1 with d = ref - logp, its masked mean is `kl`, its gradient 1 - exp(d)', () => {
    E.scope(() => {
      const lp = [[-1, -2, -0.5], [-0.3, -1.2, -0.7]], ref = [[-1.5, -1, -0.5], [-0.2, -3, -0.1]];
      const mask = [[1, 1, 1], [1, 1, 0]];
      const logp = leaf(cpu, lp);
      const beta = 0.04;
      const { loss, metrics } = grpoLoss(
        { per_token_logps: logp, ref_per_token_logps: mat(cpu, ref), advantages: [0, 0], completion_mask: mat(cpu, mask) },
        { loss_type: 'bnpo', beta, epsilon: 0.2 },
      );
      loss.backward();
      // With A = 0 only beta·k3 remains; bnpo averages it over the 5 masked tokens.
      const d = lp.flat().map((x, i) => ref.flat()[i] - x);
      const k3 = d.map((v) => Math.exp(v) - v - 1);
      const m = mask.flat();
      const kl = k3.reduce((s, v, i) => s + v * m[i], 0) / 5;
      expect(k3.every((v) => v >= 0)).toBe(true);
      expect(k3[2]).toBe(0); // logp = ref
      expect(num(metrics.kl!)).toBeCloseTo(kl, 12);
      expect(num(loss)).toBeCloseTo(beta * kl, 12);
      // d k3 / d logp = -exp(d) + 1
      d.forEach((v, i) => expect(f64(logp.grad!)[i]).toBeCloseTo((beta * (1 - Math.exp(v)) * m[i]) / 5, 12));
    });
  });
});

/** Seeded [B, T] inputs with some masked positions. */
function randomCase(seed: number, b = 4, t = 5) {
  const rng = new E.Rng(seed);
  const rows = (f: () => number) => Array.from({ length: b }, () => Array.from({ length: t }, f));
  const logp = rows(() => -2 * rng.next() - 0.05);
  const old = logp.map((r) => r.map((v) => v + 0.4 * (rng.next() - 0.5)));
  const ref = logp.map((r) => r.map((v) => v + 0.6 * (rng.next() - 0.5)));
  // Ragged completions: row i has t - i generated tokens, and one tool-result token (mask 0) inside.
  const mask = rows(() => 1).map((r, i) => r.map((_, j): number => (j < t - (i % t) && j !== 1 ? 1 : 0)));
  const entropy = rows(() => 3 * rng.next());
  const adv = Array.from({ length: b }, () => rng.normal());
  return { logp, old, ref, mask, entropy, adv };
}
type Case = ReturnType<typeof randomCase>;

/** Loss, gradient w.r.t. the log-probs, and metrics (outside any scope: the tests read them afterwards). */
function runLoss(be: Backend, c: Case, opts: GRPOLossOptions) {
  const logp = leaf(be, c.logp);
  const out = grpoLoss(
    { per_token_logps: logp, old_per_token_logps: mat(be, c.old), ref_per_token_logps: mat(be, c.ref), advantages: c.adv, completion_mask: mat(be, c.mask), entropies: mat(be, c.entropy) },
    opts,
  );
  out.loss.backward();
  return { loss: out.loss, grad: logp.grad!, metrics: out.metrics };
}

const optsFor = (loss_type: LossType, c: Case): GRPOLossOptions => ({
  loss_type,
  beta: 0.1,
  epsilon: 0.1,
  epsilon_high: 0.15,
  max_completion_length: 6,
  num_items_in_batch: c.mask.flat().reduce((a, b) => a + b, 0),
});

describe.each(LOSS_TYPES)('%s', (lossType) => {
  test('masking: a masked-out log-prob changes neither the loss nor the gradient', () => {
    const c = randomCase(7);
    const base = runLoss(cpu, c, optsFor(lossType, c));
    const poke = (m: number[][]) => m.map((r, i) => r.map((v, j) => (c.mask[i][j] ? v : v - 5)));
    const changed = runLoss(cpu, { ...c, logp: poke(c.logp), old: poke(c.old), ref: poke(c.ref) }, optsFor(lossType, c));
    expect(num(changed.loss)).toBe(num(base.loss));
    expect(plain(f64(changed.grad))).toEqual(plain(f64(base.grad)));
    const g = f64(base.grad);
    c.mask.flat().forEach((m, i) => {
      if (!m) expect(g[i] + 0).toBe(0);
    });
  });

  test('tool_mask: the loss, gradient and metrics on completion_mask and tool_mask equal those on their product', () => {
    const c = randomCase(5);
    // Split the case's mask as a rollout does: the completion (ragged ends) and the tool-result column 1.
    const completion = c.mask.map((r, i) => r.map((_, j) => +(j < 5 - (i % 5))));
    const tool = c.mask.map((r) => r.map((_, j) => +(j !== 1)));
    const both = (() => {
      const logp = leaf(cpu, c.logp);
      const out = grpoLoss(
        { per_token_logps: logp, old_per_token_logps: mat(cpu, c.old), ref_per_token_logps: mat(cpu, c.ref), advantages: c.adv, completion_mask: mat(cpu, completion), tool_mask: mat(cpu, tool), entropies: mat(cpu, c.entropy) },
        optsFor(lossType, c),
      );
      out.loss.backward();
      return { loss: out.loss, grad: logp.grad!, metrics: out.metrics };
    })();
    const product = runLoss(cpu, c, optsFor(lossType, c));
    expect(num(both.loss)).toBe(num(product.loss));
    expect(plain(f64(both.grad))).toEqual(plain(f64(product.grad)));
    for (const k of Object.keys(product.metrics) as (keyof typeof product.metrics)[]) expect(num(both.metrics[k]!)).toBe(num(product.metrics[k]!));
  });

  test('micro-batches: two halves accumulate to the full batch where TRL says they do', () => {
    const c = randomCase(11);
    const full = runLoss(cpu, c, optsFor(lossType, c));
    const theta = leaf(cpu, c.logp);
    let total = 0;
    E.scope(() => {
      for (const start of [0, 2]) {
        const part = (m: number[][]) => mat(cpu, m.slice(start, start + 2));
        const { loss } = grpoLoss(
          {
            per_token_logps: E.narrow(theta, 0, start, 2),
            old_per_token_logps: part(c.old),
            ref_per_token_logps: part(c.ref),
            advantages: c.adv.slice(start, start + 2),
            completion_mask: part(c.mask),
          },
          { ...optsFor(lossType, c), gradient_accumulation_steps: 2 },
        );
        loss.backward();
        total += num(loss);
      }
    });
    const same = closeness(f64(theta.grad!), f64(full.grad), 1e-14, 1e-12).ratio <= 1 && Math.abs(total - num(full.loss)) < 1e-12;
    // bnpo divides by the micro-batch's own token count (TRL documents that it varies with the local batch size).
    expect(same).toBe(lossType !== 'bnpo');
  });
});

describe('metrics', () => {
  test('entropy is the masked token mean; readMetrics returns numbers', async () => {
    const c = randomCase(3);
    const { metrics } = runLoss(cpu, c, optsFor('dapo', c));
    const m = c.mask.flat();
    const want = c.entropy.flat().reduce((s, v, i) => s + v * m[i], 0) / m.reduce((a, b) => a + b, 0);
    expect(num(metrics.entropy!)).toBeCloseTo(want, 12);
    const read = await readMetrics(metrics);
    expect(Object.keys(read).sort()).toEqual(['clip_ratio/high_mean', 'clip_ratio/low_mean', 'clip_ratio/region_mean', 'entropy', 'kl']);
    expect(read.entropy).toBeCloseTo(want, 5);
  });
});

describe('errors', () => {
  const c = randomCase(5);
  const call = (opts: Partial<GRPOLossOptions>, drop: Partial<Record<'ref' | 'adv', true>> = {}) =>
    E.scope(() =>
      grpoLoss(
        {
          per_token_logps: leaf(cpu, c.logp),
          ref_per_token_logps: drop.ref ? undefined : mat(cpu, c.ref),
          advantages: drop.adv ? [1] : c.adv,
          completion_mask: mat(cpu, c.mask),
        },
        { ...optsFor('dapo', c), ...opts },
      ),
    );
  test('name what is missing or wrong', () => {
    expect(() => call({ num_items_in_batch: undefined })).toThrow(/num_items_in_batch/);
    expect(() => call({ loss_type: 'dr_grpo', max_completion_length: undefined })).toThrow(/max_completion_length/);
    expect(() => call({}, { ref: true })).toThrow(/ref_per_token_logps/);
    expect(() => call({}, { adv: true })).toThrow(/advantages must be \[4\]/);
    expect(() => call({ loss_type: 'ppo' as LossType })).toThrow(/unknown loss_type/);
  });
});

describe('two-armed bandit', () => {
  test('GRPO steps move probability toward the rewarded arm', () => {
    // The policy is one logits parameter [2]; arm 0 pays 1, arm 1 pays 0. Each step samples a group of
    // G = 8 arms with a seeded Rng, scores them, and takes one SGD step on the dapo loss.
    const logits = E.parameter(E.fromArray(cpu, Float64Array.from([0.5, 0]), [2]), 'logits');
    const opt = new E.SGD([logits], { lr: 0.5 });
    const rng = new E.Rng(2024);
    const g = 8;
    const p0 = () => E.noGrad(() => E.scope(() => f64(E.softmax(logits))[0]));
    const history = [p0()];
    for (let step = 0; step < 10; step++) {
      E.scope(() => {
        const arms = Array.from({ length: g }, () => (rng.next() < history[history.length - 1] ? 0 : 1));
        const { advantages } = computeAdvantages(arms.map((a) => (a === 0 ? 1 : 0)), g);
        const ids = E.fromArray(cpu, arms, [g], 'i32');
        const logp = E.indexSelect(E.log(E.softmax(logits)), 0, ids).reshape([g, 1]);
        const { loss } = grpoLoss(
          { per_token_logps: logp, advantages, completion_mask: E.ones(cpu, [g, 1]) },
          { loss_type: 'dapo', beta: 0, epsilon: 0.2, num_items_in_batch: g },
        );
        E.zeroGrad([logits]);
        loss.backward();
        opt.step();
      });
      history.push(p0());
    }
    // Never away from arm 0 (a zero-variance group leaves it unchanged), and clearly toward it overall.
    history.slice(1).forEach((p, i) => expect(p).toBeGreaterThanOrEqual(history[i]));
    expect(history[history.length - 1]).toBeGreaterThan(history[0] + 0.2);
  });
});

describe('WebGPU', () => {
  afterAll(async () => (await gpuBackend()).ctx.device.destroy());
  test('the loss, its gradient and the metrics match the CPU for every loss type', async () => {
    const gpu = await gpuBackend();
    const c = randomCase(19);
    for (const lossType of LOSS_TYPES) {
      const want = runLoss(cpu, c, optsFor(lossType, c));
      const got = runLoss(gpu, c, optsFor(lossType, c));
      expect(closeness(await got.loss.data(), f64(want.loss), 1e-6, 1e-5).ratio).toBeLessThanOrEqual(1);
      expect(closeness(await got.grad.data(), f64(want.grad), 1e-6, 1e-5).ratio).toBeLessThanOrEqual(1);
      for (const k of Object.keys(want.metrics) as (keyof typeof want.metrics)[])
        expect(closeness(await got.metrics[k]!.data(), f64(want.metrics[k]!), 1e-6, 1e-5).ratio).toBeLessThanOrEqual(1);
    }
  });
});
