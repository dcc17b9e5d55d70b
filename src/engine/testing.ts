/**
 * Test helpers for the engine: a shared Dawn device per test file, seeded inputs, tolerance
 * comparisons, and central finite differences on the float64 CPU backend. Node-only (tests).
 */
import { CpuBackend } from './cpu/backend.js';
import type { Backend } from './backend.js';
import { numel } from './dtype.js';
import { fromArray } from './ops/creation.js';
import { Rng } from './random.js';
import { noGrad, scope, Tensor } from './tensor.js';
import { WebGPUBackend } from './webgpu/backend.js';
import { requestNodeDevice } from './webgpu/node.js';
import { add, mul } from './ops/elementwise.js';
import { sum } from './ops/reduce.js';

let gpu: Promise<WebGPUBackend> | undefined;

/** The WebGPU backend on Dawn (SwiftShader here). Rejects with what to install when no adapter exists: GPU tests never skip. */
export function gpuBackend(): Promise<WebGPUBackend> {
  gpu ??= requestNodeDevice().then(({ device, adapterName }) => new WebGPUBackend(device, adapterName));
  return gpu;
}

export interface InputSpec {
  shape: number[];
  /** 'float' (default, normal), 'positive' (in [0.5, 2]), 'int' (i32 in [0, max)), 'mask' (i32 0/1, mostly 1). */
  kind?: 'float' | 'positive' | 'int' | 'mask';
  max?: number;
  /** Whether the gradient of this input is checked (default: floats yes). */
  grad?: boolean;
  scale?: number;
}

/** Host values for each input, the same for every backend. */
export function makeInputs(specs: InputSpec[], seed: number): Float64Array[] {
  const rng = new Rng(seed);
  return specs.map((s) => {
    const n = numel(s.shape);
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (s.kind === 'int') a[i] = rng.int(s.max ?? 2);
      else if (s.kind === 'mask') a[i] = rng.next() < 0.8 ? 1 : 0;
      else if (s.kind === 'positive') a[i] = 0.5 + 1.5 * rng.next();
      else a[i] = rng.normal() * (s.scale ?? 1);
    }
    return a;
  });
}

/** Uploads inputs to a backend; float inputs with grad get requiresGrad. */
export function toTensors(be: Backend, specs: InputSpec[], values: Float64Array[]): Tensor[] {
  return specs.map((s, i) => {
    const isInt = s.kind === 'int' || s.kind === 'mask';
    const t = fromArray(be, be.name === 'cpu' ? values[i] : Float32Array.from(values[i]), s.shape, isInt ? 'i32' : 'f32');
    t.requiresGrad = !isInt && s.grad !== false;
    return t;
  });
}

/** L = Σ_k Σ_i out_k[i]·r_k[i] with fixed weights r (so dL/dout = r: a generic upstream gradient). */
export function weightedLoss(outs: Tensor[], seed: number): Tensor {
  const rng = new Rng(seed);
  let total: Tensor | null = null;
  for (const o of outs) {
    const r = fromArray(o.backend, Array.from({ length: o.size }, () => rng.normal()), o.shape);
    const l = sum(mul(o, r));
    total = total ? add(total, l) : l;
  }
  return total!;
}

/** Reads a CPU tensor as float64. */
export const f64 = (t: Tensor): Float64Array => (t.backend as CpuBackend).readF64(t.storage);

/**
 * Central finite differences of L = weightedLoss(fn(inputs)) with respect to input `which`, on the
 * float64 CPU backend: (L(x + h e_i) - L(x - h e_i)) / 2h for every element.
 */
export function finiteDiff(specs: InputSpec[], values: Float64Array[], fn: (xs: Tensor[]) => Tensor | Tensor[], which: number, lossSeed: number, h = 1e-6): Float64Array {
  const be = new CpuBackend();
  const loss = (vals: Float64Array[]) =>
    noGrad(() =>
      scope(() => {
        const xs = toTensors(be, specs, vals);
        const out = fn(xs);
        return f64(weightedLoss(Array.isArray(out) ? out : [out], lossSeed))[0];
      }),
    );
  const g = new Float64Array(values[which].length);
  for (let i = 0; i < g.length; i++) {
    const plus = values.map((v) => v.slice());
    const minus = values.map((v) => v.slice());
    plus[which][i] += h;
    minus[which][i] -= h;
    g[i] = (loss(plus) - loss(minus)) / (2 * h);
  }
  return g;
}

/** Max over i of |a - b| / (atol + rtol·|b|); ≤ 1 means within tolerance. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): { ratio: number; at: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const r = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (!(r <= worst)) {
      worst = Number.isNaN(r) ? Infinity : r;
      at = i;
    }
  }
  return { ratio: worst, at };
}
