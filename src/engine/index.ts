/**
 * The MMSearch Lab tensor engine: tensors on WebGPU, WebAssembly SIMD (CPU) or the float64 CPU
 * reference, reverse-mode autograd, fused transformer ops, optimizers; createBackend picks the backend. See README "Engine" for a tour.
 */
export type { Backend, Storage } from './backend.js';
export { CpuBackend } from './cpu/backend.js';
export { WebGPUBackend } from './webgpu/backend.js';
export { WasmBackend } from './wasm/backend.js';
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

export { createBackend, probeSeconds, type BackendChoice, type CreatedBackend } from './select.js';
