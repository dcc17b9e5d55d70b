/**
 * Backend selection: on this machine's software adapter (SwiftShader through Dawn) "auto" times the
 * WebAssembly backend and software WebGPU on the same training step and keeps the faster, saying so;
 * an explicit choice gives that backend.
 */
import { expect, test } from 'vitest';
import { CpuBackend } from './cpu/backend.js';
import { createBackend, probeSeconds } from './select.js';
import { WasmBackend } from './wasm/backend.js';
import { WebGPUBackend } from './webgpu/backend.js';
import { nodeGpu } from './webgpu/node.js';

const release = (b: unknown) => {
  if (b instanceof WasmBackend) b.destroy();
  if (b instanceof WebGPUBackend) b.ctx.device.destroy();
};

test('auto on a software adapter keeps the faster of WebAssembly and WebGPU, with both times in the reason', async () => {
  const r = await createBackend({ gpu: nodeGpu() });
  const m = /software WebGPU adapter.*(WebAssembly measured faster|measured faster than WebAssembly).*\(([\d.]+) ms vs ([\d.]+) ms\)/.exec(r.reason);
  expect(m, r.reason).not.toBeNull();
  expect(Number(m![2])).toBeLessThanOrEqual(Number(m![3]));
  expect(r.backend.name).toBe(m![1].startsWith('WebAssembly') ? 'wasm' : 'webgpu');
  release(r.backend);
});

test('an explicit choice gives that backend', async () => {
  for (const [choice, cls] of [['wasm', WasmBackend], ['webgpu', WebGPUBackend], ['cpu', CpuBackend]] as const) {
    const r = await createBackend({ choice, gpu: nodeGpu() });
    expect(r.backend).toBeInstanceOf(cls);
    release(r.backend);
  }
});

test('the probe is a real training step: it takes time and leaves no live tensors behind', async () => {
  const be = await WasmBackend.create({ threads: 1 });
  const before = be.memory().liveBytes;
  const s = await probeSeconds(be);
  expect(s).toBeGreaterThan(0);
  expect(be.memory().liveBytes).toBe(before);
  be.destroy();
});
