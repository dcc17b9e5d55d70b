/**
 * Relaxed SIMD in Node. Node-only: never import from browser code (Chrome 114+ validates relaxed SIMD by default).
 * Node 20's V8 (11.3) validates WebAssembly relaxed SIMD (`f32x4.relaxed_madd`, the kernels' fused multiply-add) only
 * behind `--experimental-wasm-relaxed-simd`; V8 11.4 (Node 22) has it by default. The flag must be set before the
 * kernels compile: the WebAssembly backend created afterwards emits fused multiply-adds (about 1.2x an SFT step here,
 * docs/performance.md).
 */
import v8 from 'node:v8';
import { hasRelaxedSimd } from './asm.js';

/** Sets V8's relaxed-SIMD flag where this runtime lacks relaxed SIMD; returns whether relaxed SIMD now validates. */
export function enableRelaxedSimd(): boolean {
  if (!hasRelaxedSimd()) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return hasRelaxedSimd();
}
