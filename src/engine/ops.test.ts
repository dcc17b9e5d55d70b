/**
 * Every differentiable op, checked four ways on small seeded inputs with odd sizes:
 *  1. CPU backward (float64) against central finite differences of the CPU forward;
 *  2. WebGPU forward against the CPU forward;
 *  3. WebGPU backward against the CPU backward;
 *  4. the WebAssembly backend's forward and backward against the CPU (1 thread; 3 threads, every op split).
 * Tolerances (WebGPU and WebAssembly alike): |got - cpu| ≤ atol + rtol·|cpu| with f32 defaults atol 2e-5, rtol 2e-4 (per case where
 * reductions are long); finite differences atol 1e-6, rtol 1e-5 (h = 1e-6 in float64).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CpuBackend } from './cpu/backend.js';
import type { Tensor } from './tensor.js';
import { backward, scope } from './tensor.js';
import * as E from './index.js';
import { closeness, finiteDiff, gpuBackend, makeInputs, toTensors, weightedLoss, type InputSpec } from './testing.js';
import { WebGPUBackend } from './webgpu/backend.js';
import { WasmBackend } from './wasm/backend.js';
import { enableRelaxedSimd } from './wasm/node.js';

interface Case {
  name: string;
  inputs: InputSpec[];
  fn: (xs: Tensor[]) => Tensor | Tensor[];
  atol?: number;
  rtol?: number;
  /**
   * Skip the finite-difference check: ops with kinks where FD is ill-posed, and shapes sized for GPU
   * tiling whose FD takes minutes (the op's small cases check its backward against FD).
   */
  noFd?: boolean;
}

const f = (...shape: number[]): InputSpec => ({ shape });
const pos = (...shape: number[]): InputSpec => ({ shape, kind: 'positive' });

const unaryOps: [string, (x: Tensor) => Tensor, boolean][] = [
  ['neg', E.neg, false], ['exp', E.exp, false], ['log', E.log, true], ['sqrt', E.sqrt, true], ['rsqrt', E.rsqrt, true],
  ['silu', E.silu, false], ['gelu', E.gelu, false], ['relu', E.relu, false], ['abs', E.abs, false], ['square', E.square, false],
  ['sigmoid', E.sigmoid, false], ['tanh', E.tanh, false],
];

const cases: Case[] = [
  ...unaryOps.map(([name, op, positive]): Case => ({ name, inputs: [positive ? pos(300) : f(300)], fn: ([x]) => op(x) })),
  { name: 'add (broadcast)', inputs: [f(3, 5, 7), f(5, 1)], fn: ([a, b]) => E.add(a, b) },
  { name: 'sub (broadcast)', inputs: [f(4, 6), f(6)], fn: ([a, b]) => E.sub(a, b) },
  { name: 'mul (broadcast both)', inputs: [f(3, 1, 7), f(1, 5, 7)], fn: ([a, b]) => E.mul(a, b) },
  { name: 'div (broadcast)', inputs: [f(4, 5), pos(5)], fn: ([a, b]) => E.div(a, b) },
  { name: 'maximum', inputs: [f(5, 6), f(5, 6)], fn: ([a, b]) => E.maximum(a, b) },
  { name: 'affine', inputs: [f(7, 3)], fn: ([x]) => E.affine(x, -1.5, 0.25) },
  { name: 'pow 2.5', inputs: [pos(11)], fn: ([x]) => E.pow(x, 2.5) },
  { name: 'pow 3 (negative bases)', inputs: [f(11)], fn: ([x]) => E.pow(x, 3) },
  { name: 'matmul', inputs: [f(37, 29), f(29, 53)], fn: ([a, b]) => E.matmul(a, b) },
  { name: 'matmul transA', inputs: [f(29, 37), f(29, 53)], fn: ([a, b]) => E.matmul(a, b, { transA: true }) },
  { name: 'matmul transB', inputs: [f(37, 29), f(53, 29)], fn: ([a, b]) => E.matmul(a, b, { transB: true }) },
  { name: 'matmul transA transB', inputs: [f(29, 37), f(53, 29)], fn: ([a, b]) => E.matmul(a, b, { transA: true, transB: true }) },
  { name: 'matmul batched', inputs: [f(3, 9, 17), f(3, 17, 11)], fn: ([a, b]) => E.matmul(a, b) },
  { name: 'matmul shared weight (x Wᵀ)', inputs: [f(2, 13, 7), f(5, 7)], fn: ([a, b]) => E.matmul(a, b, { transB: true }) },
  { name: 'matmul shared left, batched transA', inputs: [f(7, 13), f(2, 7, 5)], fn: ([a, b]) => E.matmul(a, b, { transA: true }) },
  // Dimensions that are multiples of 4: the vec4 kernel reads [K, N] and [K, M] operands without packing.
  { name: 'matmul aligned (B as [K, N])', inputs: [f(12, 8), f(8, 20)], fn: ([a, b]) => E.matmul(a, b) },
  { name: 'matmul aligned transA, odd K (A as [K, M])', inputs: [f(7, 12), f(7, 20)], fn: ([a, b]) => E.matmul(a, b, { transA: true }) },
  { name: 'matmul aligned batched', inputs: [f(2, 12, 8), f(2, 8, 16)], fn: ([a, b]) => E.matmul(a, b) },
  { name: 'matmul aligned shared weight (x Wᵀ)', inputs: [f(2, 12, 8), f(20, 8)], fn: ([a, b]) => E.matmul(a, b, { transB: true }) },
  // Several workgroup tiles (32 rows x 64 columns) with ragged edges and a K tail.
  { name: 'matmul multi-tile shared weight (x Wᵀ)', inputs: [f(2, 41, 37), f(130, 37)], fn: ([a, b]) => E.matmul(a, b, { transB: true }), noFd: true },
  { name: 'matmul multi-tile batched transA', inputs: [f(2, 37, 70), f(2, 37, 66)], fn: ([a, b]) => E.matmul(a, b, { transA: true }), noFd: true },
  // Few rows or few columns: the subgroup kernel's other workgroup shapes (16, 8, 2 and 1 column groups).
  { name: 'matmul one row per sequence (decoding)', inputs: [f(2, 1, 24), f(130, 24)], fn: ([a, b]) => E.matmul(a, b, { transB: true }) },
  { name: 'matmul 4 rows, wide', inputs: [f(4, 20), f(100, 20)], fn: ([a, b]) => E.matmul(a, b, { transB: true }) },
  { name: 'matmul tall, 20 columns', inputs: [f(100, 9), f(9, 20)], fn: ([a, b]) => E.matmul(a, b) },
  { name: 'matmul tall, 10 columns', inputs: [f(70, 9), f(9, 10)], fn: ([a, b]) => E.matmul(a, b) },
  { name: 'sum axis 1', inputs: [f(4, 5, 6)], fn: ([x]) => E.sum(x, 1) },
  { name: 'sum all', inputs: [f(4, 300)], fn: ([x]) => E.sum(x) },
  { name: 'mean axes 0,2 keepdim', inputs: [f(4, 5, 6)], fn: ([x]) => E.mean(x, [0, 2], true) },
  { name: 'max last axis', inputs: [f(6, 270)], fn: ([x]) => E.max(x, -1) },
  { name: 'max axis 0', inputs: [f(6, 7)], fn: ([x]) => E.max(x, 0) },
  { name: 'reshape + permute', inputs: [f(2, 3, 4)], fn: ([x]) => E.permute(x.reshape([3, 2, 4]), [2, 0, 1]) },
  { name: 'transpose', inputs: [f(5, 3, 4)], fn: ([x]) => E.transpose(x, 0, 2) },
  { name: 'narrow', inputs: [f(5, 7)], fn: ([x]) => E.narrow(x, 1, 2, 3) },
  { name: 'concat', inputs: [f(2, 3), f(2, 5)], fn: ([a, b]) => E.concat([a, b], 1) },
  { name: 'broadcastTo', inputs: [f(3, 1)], fn: ([x]) => E.broadcastTo(x, [2, 3, 4]) },
  { name: 'indexSelect (repeats)', inputs: [f(6, 4), { shape: [9], kind: 'int', max: 6 }], fn: ([x, i]) => E.indexSelect(x, 0, i) },
  { name: 'indexSelect axis 1', inputs: [f(3, 6, 2), { shape: [4], kind: 'int', max: 6 }], fn: ([x, i]) => E.indexSelect(x, 1, i) },
  { name: 'softmax', inputs: [f(5, 300)], fn: ([x]) => E.softmax(x) },
  { name: 'softmax masked', inputs: [f(5, 33), { shape: [5, 33], kind: 'mask' }], fn: ([x, m]) => E.softmax(x, m) },
  { name: 'softmax broadcast mask', inputs: [f(2, 3, 9), { shape: [1, 1, 9], kind: 'mask' }], fn: ([x, m]) => E.softmax(x, m) },
  { name: 'rmsNorm', inputs: [f(6, 300), f(300)], fn: ([x, w]) => E.rmsNorm(x, w, 1e-5) },
  { name: 'layerNorm', inputs: [f(6, 77), f(77), f(77)], fn: ([x, w, b]) => E.layerNorm(x, w, b, 1e-5) },
  { name: 'rope', inputs: [f(2, 5, 3, 8), { shape: [2, 5], kind: 'int', max: 40 }], fn: ([x, p]) => E.rope(x, p, E.ropeTable(x.backend, 10000, 8, 48)) },
  { name: 'rope theta 1e6', inputs: [f(1, 4, 2, 16), { shape: [1, 4], kind: 'int', max: 4000 }], fn: ([x, p]) => E.rope(x, p, E.ropeTable(x.backend, 1e6, 16, 4096)) },
  { name: 'embedding', inputs: [f(11, 6), { shape: [2, 7], kind: 'int', max: 11 }], fn: ([w, i]) => E.embedding(w, i) },
  { name: 'attention causal GQA + padding mask', inputs: [f(2, 5, 4, 8), f(2, 5, 2, 8), f(2, 5, 2, 8), { shape: [2, 5], kind: 'mask' }], fn: ([q, k, v, m]) => E.attention(q, k, v, { causal: true, keyMask: m }) },
  // Keys in several 4-key blocks with a tail: the WebAssembly kernels mask, exponentiate and form ds 4 keys at a time.
  { name: 'attention causal GQA + padding mask, 13 keys', inputs: [f(2, 13, 4, 8), f(2, 13, 2, 8), f(2, 13, 2, 8), { shape: [2, 13], kind: 'mask' }], fn: ([q, k, v, m]) => E.attention(q, k, v, { causal: true, keyMask: m }) },
  { name: 'attention 37 keys (16-key score blocks, tails) + padding mask', inputs: [f(1, 37, 2, 4), f(1, 37, 1, 4), f(1, 37, 1, 4), { shape: [1, 37], kind: 'mask' }], fn: ([q, k, v, m]) => E.attention(q, k, v, { causal: true, keyMask: m }) },
  { name: 'attention full, MHA', inputs: [f(1, 7, 3, 12), f(1, 7, 3, 12), f(1, 7, 3, 12)], fn: ([q, k, v]) => E.attention(q, k, v) },
  { name: 'attention causal GQA 3, head_dim 64 + padding mask', inputs: [f(1, 6, 3, 64), f(1, 6, 1, 64), f(1, 6, 1, 64), { shape: [1, 6], kind: 'mask' }], fn: ([q, k, v, m]) => E.attention(q, k, v, { causal: true, keyMask: m }) },
  { name: 'attention head_dim 6 (scalar kernels)', inputs: [f(1, 5, 2, 6), f(1, 5, 2, 6), f(1, 5, 2, 6)], fn: ([q, k, v]) => E.attention(q, k, v, { causal: true }) },
  { name: 'attention decode step (T = 1: dot-product path on WebAssembly) + padding mask', inputs: [f(2, 1, 2, 8), f(2, 6, 2, 8), f(2, 6, 2, 8), { shape: [2, 6], kind: 'mask' }], fn: ([q, k, v, m]) => E.attention(q, k, v, { causal: true, keyMask: m }) },
  { name: 'attention causal, T < S (cached prefix)', inputs: [f(2, 3, 2, 4), f(2, 6, 1, 4), f(2, 6, 1, 4)], fn: ([q, k, v]) => E.attention(q, k, v, { causal: true }) },
  {
    name: 'tokenLogprobs (3 chunks, temperature 0.7)',
    inputs: [f(7, 16), f(50, 16), { shape: [7], kind: 'int', max: 50 }],
    fn: ([h, w, t]) => { const r = E.tokenLogprobs(h, w, t, { temperature: 0.7, chunkSize: 20 }); return [r.logprobs, r.entropy]; },
  },
  {
    name: 'tokenLogprobs, logits recomputed in the backward',
    inputs: [f(7, 16), f(50, 16), { shape: [7], kind: 'int', max: 50 }],
    fn: ([h, w, t]) => { const r = E.tokenLogprobs(h, w, t, { chunkSize: 20, keepLogits: false }); return [r.logprobs, r.entropy]; },
  },
  { name: 'patchify', inputs: [f(2, 3, 8, 12)], fn: ([x]) => E.patchify(x, 4) },
];

let gpu: WebGPUBackend;
/** The same device with the other kernel family (software / gpu), so that both stay tested on any adapter. */
let gpuAlt: WebGPUBackend;
/** Software kernels with the vec4 matmul and attention (what adapters without 4-lane subgroups use). */
let gpuVec4: WebGPUBackend;
/**
 * The WebAssembly backend single-threaded with plain SIMD, and on 3 threads with every op split however small with
 * relaxed SIMD's fused multiply-add (Node 20 validates it behind a V8 flag, set as the command-line tools set it:
 * wasm/node.ts; tests/engine-browser.test.ts checks relaxed SIMD in Chromium).
 */
let wasm1: WasmBackend;
let wasm3: WasmBackend;
const cpu = new CpuBackend();
beforeAll(async () => {
  expect(enableRelaxedSimd(), 'relaxed SIMD validates after enableRelaxedSimd()').toBe(true);
  wasm1 = await WasmBackend.create({ threads: 1, relaxedSimd: false });
  wasm3 = await WasmBackend.create({ threads: 3, minParallelWork: 0, relaxedSimd: true });
  gpu = await gpuBackend();
  gpuAlt = new WebGPUBackend(gpu.ctx.device, gpu.description, { kernels: gpu.kernels === 'software' ? 'gpu' : 'software' });
  gpuVec4 = new WebGPUBackend(gpu.ctx.device, gpu.description, { kernels: 'software', matmul: 'vec4' });
});

interface Run {
  out: Float32Array[];
  grads: (Float32Array | null)[];
}

async function run(be: E.Backend, c: Case, values: Float64Array[]): Promise<Run> {
  return scope(async () => {
    const xs = toTensors(be, c.inputs, values);
    const res = c.fn(xs);
    const outs = Array.isArray(res) ? res : [res];
    backward([weightedLoss(outs, 99)]);
    const out = await Promise.all(outs.map(async (o) => (await o.data()) as Float32Array));
    const grads = await Promise.all(xs.map(async (x) => (x.grad ? ((await x.grad.data()) as Float32Array) : null)));
    xs.forEach((x) => x.dispose());
    return { out, grads };
  });
}

describe.each(cases)('$name', (c) => {
  const values = makeInputs(c.inputs, 1234);
  const atol = c.atol ?? 2e-5, rtol = c.rtol ?? 2e-4;

  test.skipIf(c.noFd)('CPU backward matches central finite differences', () => {
    // Analytic grads in float64 (read as f64 from the CPU backend, not through f32 readback).
    const analytic = scope(() => {
      const xs = toTensors(cpu, c.inputs, values);
      const res = c.fn(xs);
      backward([weightedLoss(Array.isArray(res) ? res : [res], 99)]);
      const g = xs.map((x) => (x.grad ? cpu.readF64(x.grad.storage) : null));
      xs.forEach((x) => x.dispose());
      return g;
    });
    let checked = 0;
    c.inputs.forEach((s, i) => {
      if (!analytic[i]) return;
      const fd = finiteDiff(c.inputs, values, c.fn, i, 99);
      const { ratio, at } = closeness(analytic[i]!, fd, 1e-6, 1e-5);
      expect(ratio, `input ${i} element ${at}: analytic ${analytic[i]![at]} vs fd ${fd[at]}`).toBeLessThanOrEqual(1);
      checked++;
    });
    expect(checked).toBeGreaterThan(0);
  });

  const families = /^(matmul|attention)/.test(c.name) ? ['default', 'alternative', 'software with vec4 matmul and attention'] : ['default', 'alternative'];
  const check = async (be: E.Backend) => {
    const ref = await run(cpu, c, values);
    const got = await run(be, c, values);
    ref.out.forEach((r, k) => {
      const { ratio, at } = closeness(got.out[k], r, atol, rtol);
      expect(ratio, `output ${k} element ${at}: got ${got.out[k][at]} vs cpu ${r[at]}`).toBeLessThanOrEqual(1);
    });
    ref.grads.forEach((r, i) => {
      if (!r) return;
      expect(got.grads[i], `gradient of input ${i}`).not.toBeNull();
      const { ratio, at } = closeness(got.grads[i]!, r, atol, rtol);
      expect(ratio, `grad ${i} element ${at}: got ${got.grads[i]![at]} vs cpu ${r[at]}`).toBeLessThanOrEqual(1);
    });
  };
  test.each(families)('WebGPU forward and backward match the CPU reference (%s kernel family)', (which) =>
    check(which === 'default' ? gpu : which === 'alternative' ? gpuAlt : gpuVec4));
  test.each(['1 thread, plain SIMD', '3 threads, every op split, relaxed SIMD'])('WebAssembly forward and backward match the CPU reference (%s)', (which) =>
    check(which.startsWith('1 thread') ? wasm1 : wasm3));
});

afterAll(() => {
  wasm1?.destroy();
  wasm3?.destroy();
  gpu?.ctx.device.destroy();
});
