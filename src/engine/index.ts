/**
 * The MMSearch Lab tensor engine: tensors on WebGPU (or the CPU reference), reverse-mode autograd,
 * fused transformer ops, optimizers. See README "Engine" for a tour.
 */
export type { Backend, Storage } from './backend.js';
export { CpuBackend } from './cpu/backend.js';
export { WebGPUBackend } from './webgpu/backend.js';
export { requestDevice } from './webgpu/device.js';
export * from './dtype.js';
export { Rng } from './random.js';
export { Tensor, backward, noGrad, scope, zeroGrad, isGradEnabled } from './tensor.js';
export * from './ops/creation.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/matmul.js';
export * from './ops/nn.js';
export { broadcastTo, permute, transpose, narrow, concat, indexSelect, patchify, cast, clone, writeSlice } from './ops/shape.js';
export * from './optim.js';

import { CpuBackend } from './cpu/backend.js';
import type { Backend } from './backend.js';
import { WebGPUBackend } from './webgpu/backend.js';
import { requestDevice } from './webgpu/device.js';

/**
 * The backend to run on: WebGPU when the environment has it, else the CPU reference with `warning`
 * set so the UI can say, plainly, that training will be slow.
 */
export async function createBackend(gpu?: GPU): Promise<{ backend: Backend; warning?: string }> {
  try {
    const { device, adapterName } = await requestDevice(gpu);
    return { backend: new WebGPUBackend(device, adapterName) };
  } catch (e) {
    return { backend: new CpuBackend(), warning: `${(e as Error).message} Falling back to the CPU backend: correct but very slow.` };
  }
}
