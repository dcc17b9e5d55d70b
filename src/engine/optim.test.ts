/**
 * Optimizers, clipping and schedules against hand-computed values (worked out step by step in the
 * comments, following the torch.optim.AdamW / SGD update rules), on every backend.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/backend.js';
import * as E from './index.js';
import { gpuBackend } from './testing.js';
import { WebGPUBackend } from './webgpu/backend.js';
import { WasmBackend } from './wasm/backend.js';

let gpu: WebGPUBackend;
let wasm: WasmBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
  wasm = await WasmBackend.create({ threads: 2, minParallelWork: 0 });
});
afterAll(() => {
  wasm?.destroy();
  gpu?.ctx.device.destroy();
});

/** Sets p.grad to the given values (as backward would). */
function setGrad(p: E.Tensor, values: number[]): void {
  p.grad?.dispose();
  p.grad = E.fromArray(p.backend, values, p.shape).keep();
}

// Both WebGPU kernel families (software-adapter and GPU variants), whatever the adapter.
let gpuAlt: WebGPUBackend;
const backends = (): [string, () => Backend][] => [
  ['cpu', () => new CpuBackend()],
  ['webgpu', () => gpu],
  ['wasm', () => wasm],
  ['webgpu (other kernel family)', () => (gpuAlt ??= new WebGPUBackend(gpu.ctx.device, gpu.description, { kernels: gpu.kernels === 'software' ? 'gpu' : 'software' }))],
];

describe.each(backends())('%s', (_name, be) => {
  test('AdamW: two steps match the hand computation', async () => {
    const p = E.parameter(E.fromArray(be(), [1, -2], [2]));
    const opt = new E.AdamW([p], { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
    // Step 1, g = 0.5: p ← 1·(1 - 0.1·0.01) = 0.999; m = 0.05, v = 0.00025; m̂ = 0.05/0.1 = 0.5,
    // v̂ = 0.00025/0.001 = 0.25; p ← 0.999 - 0.1·0.5/(0.5 + 1e-8) = 0.899 (to 1e-8).
    // Second element, g = 0: p ← -2·0.999 = -1.998, m = v = 0 so no Adam step.
    setGrad(p, [0.5, 0]);
    opt.step();
    let d = await p.data();
    expect(d[0]).toBeCloseTo(0.899, 6);
    expect(d[1]).toBeCloseTo(-1.998, 6);
    // Step 2, g = -0.25: p ← 0.899·0.999 = 0.898101; m = 0.045 - 0.025 = 0.02; v = 0.00024975 + 0.0000625
    // = 0.00031225; m̂ = 0.02/0.19 = 0.10526316; v̂ = 0.00031225/0.001999 = 0.15620310, √ = 0.39522538;
    // p ← 0.898101 - 0.1·0.10526316/0.39522538 = 0.898101 - 0.02663371 = 0.87146729.
    setGrad(p, [-0.25, 0]);
    opt.step();
    d = await p.data();
    expect(d[0]).toBeCloseTo(0.87146729, 5);
    expect(opt.stepCount).toBe(2);
    opt.dispose();
    p.dispose();
  });

  test('AdamW state round-trips through state()/loadState()', async () => {
    const p = E.parameter(E.fromArray(be(), [1, 2, 3], [3]));
    const opt = new E.AdamW([p], { lr: 0.01 });
    setGrad(p, [0.1, -0.2, 0.3]);
    opt.step();
    const saved = await opt.state();
    const q = E.parameter(E.fromArray(be(), await be().read(p.storage, true), [3]));
    const opt2 = new E.AdamW([q], { lr: 0.01 });
    opt2.loadState(saved);
    setGrad(p, [0.5, 0.5, 0.5]);
    setGrad(q, [0.5, 0.5, 0.5]);
    opt.step();
    opt2.step();
    expect(Array.from(await q.data())).toEqual(Array.from(await p.data()));
    expect(() => opt2.loadState({ step: 1, slots: [] })).toThrow(/1 parameters|0 parameters/);
    [opt, opt2].forEach((o) => o.dispose());
    [p, q].forEach((t) => t.dispose());
  });

  test('SGD with momentum: two steps match the hand computation', async () => {
    const p = E.parameter(E.fromArray(be(), [1], [1]));
    const opt = new E.SGD([p], { lr: 0.1, momentum: 0.9 });
    setGrad(p, [0.5]); // buf = 0.5, p = 1 - 0.05 = 0.95
    opt.step();
    setGrad(p, [-0.25]); // buf = 0.45 - 0.25 = 0.2, p = 0.95 - 0.02 = 0.93
    opt.step();
    expect((await p.data())[0]).toBeCloseTo(0.93, 6);
    opt.dispose();
    p.dispose();
  });

  test('clipGradNorm: global norm over all parameters, coefficient scales the update', async () => {
    const a = E.parameter(E.fromArray(be(), [0, 0], [2]));
    const b = E.parameter(E.fromArray(be(), [0], [1]));
    setGrad(a, [3, 0]);
    setGrad(b, [4]); // ‖g‖ = 5
    const clip = E.clipGradNorm([a, b], 1);
    const [norm, coef] = await clip.data();
    expect(norm).toBeCloseTo(5, 5);
    expect(coef).toBeCloseTo(1 / (5 + 1e-6), 6);
    // SGD with lr 1 and the clip: a ← -(3·coef) = -0.6, b ← -0.8.
    new E.SGD([a, b], { lr: 1 }).step(clip);
    expect((await a.data())[0]).toBeCloseTo(-0.6, 5);
    expect((await b.data())[0]).toBeCloseTo(-0.8, 5);
    const small = E.clipGradNorm([a, b], 10);
    expect((await small.data())[1]).toBe(1); // under the threshold: no scaling
    [clip, small, a, b].forEach((t) => t.dispose());
  });
});

test('gradients accumulate across backward calls (micro-batches) until zeroGrad', async () => {
  for (const be of [new CpuBackend(), gpu] as Backend[]) {
    const w = E.parameter(E.fromArray(be, [1, 2, 3], [3]));
    const x1 = E.fromArray(be, [1, 0, 2], [3]).keep(), x2 = E.fromArray(be, [0, 5, 1], [3]).keep();
    E.scope(() => E.sum(E.mul(w, x1)).backward()); // d/dw = x1
    E.scope(() => E.sum(E.mul(w, x2)).backward()); // += x2
    expect(Array.from(await w.grad!.data()), be.name).toEqual([1, 5, 3]);
    E.zeroGrad([w]);
    expect(w.grad).toBeNull();
    [w, x1, x2].forEach((t) => t.dispose());
  }
});
