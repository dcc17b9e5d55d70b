/**
 * Tensor creation. Every tensor lives on one backend; host data is uploaded once.
 */
import type { Backend } from '../backend.js';
import { numel, type DType } from '../dtype.js';
import type { Rng } from '../random.js';
import { Tensor } from '../tensor.js';

/**
 * Uploads host data as a tensor of `shape`.
 * @param data numbers or a typed array with numel(shape) values
 * @throws when the data length does not match the shape
 */
export function fromArray(
  backend: Backend,
  data: ArrayLike<number>,
  shape: readonly number[],
  dtype: DType = 'f32',
  name?: string,
): Tensor {
  const n = numel(shape);
  if (data.length !== n) throw new Error(`${name ?? 'fromArray'}: ${data.length} values for shape [${shape.join(', ')}] (${n} elements)`);
  const arr =
    dtype === 'i32' ? Int32Array.from(data) : dtype === 'u32' ? Uint32Array.from(data) : data instanceof Float64Array ? data : Float32Array.from(data);
  return new Tensor(backend.upload(arr, dtype, name), shape, name);
}

export function full(backend: Backend, shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  return new Tensor(backend.fill(numel(shape), value, dtype), shape);
}

export const zeros = (backend: Backend, shape: readonly number[], dtype: DType = 'f32') => full(backend, shape, 0, dtype);
export const ones = (backend: Backend, shape: readonly number[], dtype: DType = 'f32') => full(backend, shape, 1, dtype);

/** Normal(0, std²) values from a seeded generator (host-side, so every backend gets the same numbers). */
export function randn(backend: Backend, shape: readonly number[], rng: Rng, std = 1, name?: string): Tensor {
  const a = new Float32Array(numel(shape));
  for (let i = 0; i < a.length; i++) a[i] = rng.normal() * std;
  return fromArray(backend, a, shape, 'f32', name);
}

/** Uniform values in [lo, hi) from a seeded generator. */
export function rand(backend: Backend, shape: readonly number[], rng: Rng, lo = 0, hi = 1): Tensor {
  const a = new Float32Array(numel(shape));
  for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * rng.next();
  return fromArray(backend, a, shape);
}

/**
 * A trainable leaf: requiresGrad, kept outside scopes, named (the module path, e.g.
 * `model.layers.0.self_attn.q_proj.weight`) so that errors and checkpoints name it.
 */
export function parameter(t: Tensor, name?: string): Tensor {
  t.requiresGrad = true;
  if (name) t.name = name;
  return t.keep();
}
