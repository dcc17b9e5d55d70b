/**
 * Runs a few engine ops forward and backward on the environment's WebGPU (page or worker), on the
 * WebAssembly backend (relaxed SIMD and threads where the browser gives them; every op split between
 * threads) and on the CPU reference, and reports the worst deviation of each (≤ 1 means within
 * atol 2e-5 + rtol 2e-4).
 */
import * as E from '../../src/engine/index.js';

type Fn = (xs: E.Tensor[]) => E.Tensor | E.Tensor[];
const checks: [string, number[][], Fn][] = [
  ['matmul transB', [[33, 27], [45, 27]], ([a, b]) => E.matmul(a, b, { transB: true })],
  ['attention causal GQA', [[2, 7, 4, 8], [2, 7, 2, 8], [2, 7, 2, 8]], ([q, k, v]) => E.attention(q, k, v, { causal: true })],
  ['rmsNorm + silu', [[5, 40], [40]], ([x, w]) => E.silu(E.rmsNorm(x, w, 1e-6))],
];

async function runOn(be: E.Backend, shapes: number[][], fn: Fn, seed: number): Promise<Float32Array[]> {
  return E.scope(async () => {
    const rng = new E.Rng(seed);
    const xs = shapes.map((s) => {
      const t = E.randn(be, s, rng);
      t.requiresGrad = true;
      return t;
    });
    const out = fn(xs);
    const outs = Array.isArray(out) ? out : [out];
    const r = E.randn(be, outs[0].shape, new E.Rng(seed + 1));
    E.sum(E.mul(outs[0], r)).backward();
    const res = [(await outs[0].data()) as Float32Array];
    for (const x of xs) res.push((await x.grad!.data()) as Float32Array);
    return res;
  });
}

export async function engineCheck(gpu: GPU): Promise<{ adapter: string; wasm: string; results: Record<string, number> }> {
  const { device, adapterName } = await E.requestDevice(gpu);
  const webgpu = new E.WebGPUBackend(device, adapterName);
  const wasm = await E.WasmBackend.create({ minParallelWork: 0 });
  const cpu = new E.CpuBackend();
  const results: Record<string, number> = {};
  for (const [name, shapes, fn] of checks) {
    const ref = await runOn(cpu, shapes, fn, 5);
    for (const be of [webgpu, wasm]) {
      const got = await runOn(be, shapes, fn, 5);
      let worst = 0;
      ref.forEach((r, k) => r.forEach((v, i) => (worst = Math.max(worst, Math.abs(got[k][i] - v) / (2e-5 + 2e-4 * Math.abs(v))))));
      results[`${be.name}: ${name}`] = worst;
    }
  }
  device.destroy();
  wasm.destroy();
  return { adapter: adapterName, wasm: wasm.description, results };
}
