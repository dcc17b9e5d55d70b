/**
 * Memory discipline and error reporting on the WebGPU backend: a 10,000-step training loop holds
 * live bytes constant (and the WebAssembly backend's heap too); bad shapes, disposed tensors, over-limit tensors and a lost device raise
 * errors that name what is wrong.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import * as E from './index.js';
import { gpuBackend } from './testing.js';
import type { WebGPUBackend } from './webgpu/backend.js';
import { requestNodeDevice } from './webgpu/node.js';
import { WasmBackend } from './wasm/backend.js';

let gpu: WebGPUBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});
afterAll(() => gpu?.ctx.device.destroy());

test.each(['webgpu', 'wasm'])('10,000 training steps hold live bytes constant (%s)', async (which) => {
  const wasm = which === 'wasm' ? await WasmBackend.create({ threads: 2 }) : undefined;
  const be: E.Backend = wasm ?? gpu;
  const rng = new E.Rng(1);
  const w = E.parameter(E.randn(be, [8, 8], rng, 0.1), 'w');
  const b = E.parameter(E.zeros(be, [8]), 'b');
  const x = E.randn(be, [4, 8], rng).keep();
  const y = E.randn(be, [4, 8], rng).keep();
  const opt = new E.AdamW([w, b], { lr: 1e-3 });
  const step = () =>
    E.scope(() => {
      const pred = E.add(E.matmul(x, w, { transB: true }), b);
      const loss = E.mean(E.square(E.sub(pred, y)));
      loss.backward();
      opt.step(E.clipGradNorm([w, b], 1));
      E.zeroGrad([w, b]);
      return loss;
    });
  const first = step();
  const firstLoss = await first.item();
  first.dispose();
  for (let i = 0; i < 10; i++) step().dispose();
  await (await x.data()); // settle
  const after10 = be.memory().liveBytes;
  const heapAfter10 = be.memory().pooledBytes + after10; // the wasm heap does not grow either
  for (let i = 0; i < 9_990; i++) step().dispose();
  const last = step();
  const lastLoss = await last.item();
  last.dispose();
  expect(be.memory().liveBytes).toBe(after10);
  if (wasm) expect(wasm.memory().pooledBytes + wasm.memory().liveBytes).toBe(heapAfter10);
  expect(lastLoss).toBeLessThan(firstLoss); // it trained
  opt.dispose();
  [w, b, x, y].forEach((t) => t.dispose());
  wasm?.destroy();
}, 900_000); // 10,000 steps take about a minute on 2 cores; a loaded machine may need several

test('shape errors name both operands', () => {
  E.scope(() => {
    const a = E.zeros(gpu, [3, 4]);
    const b = E.zeros(gpu, [5, 6]);
    expect(() => E.matmul(a, b)).toThrow(/inner dims differ \(4 vs 5\).*\[3, 4\].*\[5, 6\]/);
    expect(() => E.add(a, b)).toThrow(/\[3, 4\] and \[5, 6\] cannot be broadcast/);
    expect(() => a.reshape([5])).toThrow(/cannot reshape .*\[3, 4\].* to \[5\]/);
    expect(() => E.fromArray(gpu, [1, 2, 3], [2, 2])).toThrow(/3 values for shape \[2, 2\]/);
  });
});

test('using a tensor after its scope ended raises a clear error', () => {
  const w = E.parameter(E.zeros(gpu, [2, 2]), 'w');
  const loss = E.scope(() => {
    const h = E.mul(w, w);
    return { loss: E.sum(h), h };
  });
  // `h` was returned, so it lives; the intermediate inside sum's graph is fine, but a disposed input is not:
  const inner = E.scope(() => E.exp(w));
  E.scope(() => {
    const t = E.exp(w);
    t.dispose();
    expect(() => E.add(t, t)).toThrow(/was disposed/);
  });
  loss.loss.backward();
  expect(w.grad).not.toBeNull();
  [loss.loss, loss.h, inner, w].forEach((t) => t.dispose());
});

test('a tensor above the adapter limit names its size and the limit', () => {
  const limit = gpu.ctx.limits.maxStorageBufferBindingSize;
  const n = Math.floor(limit / 4) + 1024;
  expect(() => E.zeros(gpu, [n])).toThrow(new RegExp(`fill \\(${n} × f32\\) needs .* above this adapter's maxStorageBufferBindingSize`));
});

test('a lost device is reported on the next op, not silently ignored', async () => {
  const { device } = await requestNodeDevice();
  const be = new E.WebGPUBackend(device, 'temporary');
  const t = E.ones(be, [4]);
  expect(Array.from(await t.data())).toEqual([1, 1, 1, 1]);
  device.destroy();
  await device.lost;
  expect(() => E.exp(t)).toThrow(/GPU device lost/);
});

test('f16 storage: f32 -> f16 -> f32 rounds as IEEE binary16 on both backends', async () => {
  // Spec examples of binary16 encodings.
  expect(E.f16Bits(1)).toBe(0x3c00);
  expect(E.f16Bits(-2)).toBe(0xc000);
  expect(E.f16Bits(65504)).toBe(0x7bff);
  expect(E.f16Bits(2 ** -24)).toBe(0x0001);
  expect(E.f16Bits(0.1)).toBe(0x2e66);
  expect(E.f16FromBits(0x3555)).toBeCloseTo(0.33325195, 8);
  const values = [0, 1, -2.5, 0.1, 1 / 3, 65504, 1e-7, -3e-5, 12345.678, 0.000061];
  const expected = values.map(E.roundToF16);
  const wasm = await WasmBackend.create({ threads: 1 });
  for (const be of [gpu, new E.CpuBackend(), wasm]) {
    const got = E.scope(() => E.cast(E.cast(E.fromArray(be, values, [values.length]), 'f16'), 'f32').keep());
    expect(Array.from(await got.data()), be.name).toEqual(expected.map((v) => Math.fround(v)));
    const half = E.scope(() => E.cast(E.fromArray(be, values.slice(0, 7), [7]), 'f16').keep());
    expect(half.dtype).toBe('f16');
    expect(Array.from(await half.data())).toEqual(expected.slice(0, 7).map((v) => Math.fround(v)));
    got.dispose();
    half.dispose();
  }
});
