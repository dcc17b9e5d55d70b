/**
 * Which backend to run on. A hardware WebGPU adapter wins outright. On a software adapter
 * (SwiftShader, llvmpipe) or none, the WebAssembly backend and the software adapter are both timed
 * on the same small training step and the faster is kept: which one wins depends on the machine's
 * cores and SIMD width, so it is measured rather than assumed. The float64 CPU reference is used
 * only when asked for, or when neither of the others can start.
 */
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/backend.js';
import { fromArray } from './ops/creation.js';
import { gelu } from './ops/elementwise.js';
import { matmul } from './ops/matmul.js';
import { mean } from './ops/reduce.js';
import { Rng } from './random.js';
import { scope } from './tensor.js';
import { WasmBackend, type WasmBackendOptions } from './wasm/backend.js';
import { WebGPUBackend } from './webgpu/backend.js';
import { requestDevice } from './webgpu/device.js';

export type BackendChoice = 'auto' | 'webgpu' | 'wasm' | 'cpu';

export interface CreatedBackend {
  backend: Backend;
  /** Set when the result is not what was asked for, or is slow: say it to the user. */
  warning?: string;
  /** Why this backend, in one sentence (shown in Setup). */
  reason: string;
}

const isSoftwareAdapter = (name: string) => /swiftshader|llvmpipe|lavapipe|software/i.test(name);

/**
 * Seconds of one small training step (x·Wᵀ, GELU, mean, backward: 2·256³ multiply-adds each way),
 * median of 3 after a warm-up, read back each time so that queued GPU work is counted.
 */
export async function probeSeconds(be: Backend): Promise<number> {
  const rng = new Rng(7);
  const n = 256;
  const host = () => Float32Array.from({ length: n * n }, () => rng.normal() * 0.05);
  const x = fromArray(be, host(), [n, n]).keep();
  const w = fromArray(be, host(), [n, n]).keep();
  w.requiresGrad = true;
  const step = async () => {
    const t = performance.now();
    const l = scope(() => {
      const loss = mean(gelu(matmul(x, w, { transB: true })));
      loss.backward();
      return loss;
    });
    await l.item();
    l.dispose();
    w.grad?.dispose();
    w.grad = null;
    return (performance.now() - t) / 1000;
  };
  await step();
  const times = [await step(), await step(), await step()].sort((a, b) => a - b);
  x.dispose();
  w.dispose();
  return times[1];
}

/**
 * Creates the backend for `choice` (default 'auto', see the module comment).
 * @throws only when an explicit choice cannot start (e.g. 'webgpu' without an adapter).
 */
export async function createBackend(opts: { choice?: BackendChoice; gpu?: GPU; wasm?: WasmBackendOptions } = {}): Promise<CreatedBackend> {
  const choice = opts.choice ?? 'auto';
  if (choice === 'cpu') return { backend: new CpuBackend(), reason: 'the float64 CPU reference, as chosen', warning: 'The CPU reference backend is correct but very slow.' };
  if (choice === 'wasm') {
    const backend = await WasmBackend.create(opts.wasm);
    return { backend, reason: 'WebAssembly, as chosen', warning: backend.notice };
  }
  let gpu: WebGPUBackend | undefined;
  let gpuProblem = '';
  try {
    const { device, adapterName } = await requestDevice(opts.gpu);
    gpu = new WebGPUBackend(device, adapterName);
  } catch (e) {
    gpuProblem = (e as Error).message;
    if (choice === 'webgpu') throw e;
  }
  if (gpu && (choice === 'webgpu' || !isSoftwareAdapter(gpu.description))) return { backend: gpu, reason: choice === 'webgpu' ? 'WebGPU, as chosen' : 'a hardware WebGPU adapter' };
  let wasm: WasmBackend;
  try {
    wasm = await WasmBackend.create(opts.wasm);
  } catch (e) {
    if (gpu) return { backend: gpu, reason: `software WebGPU (the WebAssembly backend could not start: ${(e as Error).message})` };
    return { backend: new CpuBackend(), reason: 'no WebGPU and no WebAssembly SIMD', warning: `${gpuProblem} WebAssembly SIMD is unavailable too (${(e as Error).message}): falling back to the CPU reference backend, correct but very slow.` };
  }
  if (!gpu) return { backend: wasm, reason: `no WebGPU adapter (${gpuProblem})`, warning: wasm.notice };
  const [tw, tg] = [await probeSeconds(wasm), await probeSeconds(gpu)];
  const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
  if (tw <= tg) {
    gpu.ctx.device.destroy();
    return { backend: wasm, reason: `software WebGPU adapter (${gpu.description}): WebAssembly measured faster on a training step (${ms(tw)} vs ${ms(tg)})`, warning: wasm.notice };
  }
  wasm.destroy();
  return { backend: gpu, reason: `software WebGPU adapter measured faster than WebAssembly on a training step (${ms(tg)} vs ${ms(tw)})` };
}
