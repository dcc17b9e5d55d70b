/**
 * The engine benchmark suite: matmul GFLOP/s at transformer shapes (including the chunked
 * 49k-vocabulary LM head), attention forward and forward+backward, and one training step of a
 * SmolLM2-135M-shaped decoder layer (dispatches and submits per step, peak bytes).
 * Each row: one warm-up, then the median of `runs` timed runs, each ended by a device sync.
 */
import * as E from '../src/engine/index.js';
import { layerShapes, llamaLayer, type LayerConfig } from './llama-layer.js';

export interface BenchRow {
  suite: string;
  name: string;
  adapter: string;
  ms: number;
  gflops?: number;
  tokensPerS?: number;
  dispatches?: number;
  submits?: number;
  peakBytes?: number;
}

async function time(be: E.Backend, runs: number, fn: () => void): Promise<{ ms: number; dispatches: number; submits: number }> {
  E.scope(fn);
  await be.sync();
  const times: number[] = [];
  const c0 = be.counters();
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    E.scope(fn);
    await be.sync();
    times.push(performance.now() - t0);
  }
  const c1 = be.counters();
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], dispatches: (c1.dispatches - c0.dispatches) / runs, submits: (c1.submits - c0.submits) / runs };
}

/** Runs the engine suite on `be`; `quick` shrinks the largest shapes (for software adapters). */
export async function engineSuite(be: E.Backend, opts: { quick?: boolean; runs?: number; log?: (row: BenchRow) => void } = {}): Promise<BenchRow[]> {
  const runs = opts.runs ?? 5;
  const rows: BenchRow[] = [];
  const push = (row: BenchRow) => {
    rows.push(row);
    opts.log?.(row);
  };
  const rng = new E.Rng(0);
  const adapter = be.description;

  const matmuls: [number, number, number][] = opts.quick ? [[256, 576, 512], [256, 512, 576]] : [[512, 576, 1536], [512, 1536, 576], [2048, 576, 576]];
  for (const [m, k, n] of matmuls) {
    const a = E.randn(be, [m, k], rng).keep(), b = E.randn(be, [n, k], rng).keep();
    const t = await time(be, runs, () => void E.matmul(a, b, { transB: true }));
    push({ suite: 'engine', name: `matmul ${m}x${k}x${n} (x·Wᵀ)`, adapter, ms: t.ms, gflops: (2 * m * k * n) / t.ms / 1e6 });
    a.dispose();
    b.dispose();
  }

  const [nTok, vocab] = opts.quick ? [512, 8192] : [4096, 49280];
  {
    const h = E.randn(be, [nTok, 576], rng, 0.1).keep(), w = E.randn(be, [vocab, 576], rng, 0.05).keep();
    const tg = E.fromArray(be, Array.from({ length: nTok }, (_, i) => (i * 7919) % vocab), [nTok], 'i32').keep();
    const t = await time(be, Math.min(runs, 3), () => void E.tokenLogprobs(h, w, tg, { chunkSize: 8192 }));
    push({ suite: 'engine', name: `lm-head log-probs ${nTok}x576x${vocab} (chunked 8192)`, adapter, ms: t.ms, gflops: (2 * nTok * 576 * vocab) / t.ms / 1e6 });
    [h, w, tg].forEach((x) => x.dispose());
  }

  const [B, T] = opts.quick ? [1, 128] : [4, 256];
  const cfg: LayerConfig = { hidden: 576, heads: 9, kvHeads: 3, ffn: 1536, eps: 1e-5 };
  {
    const q = E.randn(be, [B, T, 9, 64], rng).keep(), k = E.randn(be, [B, T, 3, 64], rng).keep(), v = E.randn(be, [B, T, 3, 64], rng).keep();
    const flops = 2 * 2 * B * 9 * ((T * (T + 1)) / 2) * 64;
    const fwd = await time(be, runs, () => void E.attention(q, k, v, { causal: true }));
    push({ suite: 'engine', name: `attention fwd B${B} T${T} 9/3 heads d64 causal`, adapter, ms: fwd.ms, gflops: flops / fwd.ms / 1e6 });
    [q, k, v].forEach((x) => (x.requiresGrad = true));
    const bwd = await time(be, runs, () => {
      const o = E.attention(q, k, v, { causal: true });
      E.sum(o).backward();
      [q, k, v].forEach((x) => E.zeroGrad([x]));
    });
    push({ suite: 'engine', name: `attention fwd+bwd B${B} T${T} 9/3 heads d64 causal`, adapter, ms: bwd.ms, gflops: (3.5 * flops) / bwd.ms / 1e6 });
    [q, k, v].forEach((x) => x.dispose());
  }

  {
    const params = new Map(layerShapes(cfg, 0).map(([name, shape]) => [name, E.parameter(E.randn(be, shape, rng, name.includes('layernorm') ? 0 : 0.02), name)] as const));
    for (const [name, p] of params) if (name.includes('layernorm')) { p.dispose(); params.set(name, E.parameter(E.ones(be, p.shape), name)); }
    const x = E.randn(be, [B, T, cfg.hidden], rng).keep();
    const pos = E.fromArray(be, Array.from({ length: B * T }, (_, i) => i % T), [B, T], 'i32').keep();
    const mask = E.ones(be, [B, T], 'i32').keep();
    const table = E.ropeTable(be, 10000, 64, T).keep();
    const opt = new E.AdamW([...params.values()], { lr: 1e-4 });
    const stepFlops = 6 * B * T * [...params.values()].reduce((a, p) => a + p.size, 0);
    be.resetPeak();
    const t = await time(be, runs, () => {
      const out = llamaLayer(cfg, 0, (n) => params.get(n)!, x, pos, mask, table);
      E.mean(E.square(out)).backward();
      opt.step(E.clipGradNorm([...params.values()], 1));
      E.zeroGrad(params.values());
    });
    push({ suite: 'engine', name: `decoder layer train step (576/1536, 9/3 heads) B${B} T${T}`, adapter, ms: t.ms, gflops: stepFlops / t.ms / 1e6, tokensPerS: (B * T) / (t.ms / 1000), dispatches: t.dispatches, submits: t.submits, peakBytes: be.memory().peakBytes });
    opt.dispose();
    [...params.values(), x, pos, mask, table].forEach((p) => p.dispose());
  }
  return rows;
}
