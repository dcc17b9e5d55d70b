/**
 * The WebAssembly backend's exp and log (polynomials: WebAssembly has no such instructions) against
 * Math.exp / Math.log in float64, over their whole f32 range and at the edges (0, denormals, ±inf,
 * NaN, overflow), on both the 4-lane vector path and the scalar tail (9 values: 2 quads + 1). And
 * the ops built on exp at extreme inputs: saturating, never NaN.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { WasmBackend } from './backend.js';

let be: WasmBackend;
beforeAll(async () => {
  be = await WasmBackend.create({ threads: 1 });
});
afterAll(() => be?.destroy());

const apply = (op: 'exp' | 'log' | 'tanh' | 'sigmoid' | 'silu' | 'gelu_tanh', xs: number[]) => {
  const x = be.upload(Float32Array.from(xs), 'f32');
  const y = be.unary(op, x);
  const out = Array.from(be.readSync(y));
  be.free(x);
  be.free(y);
  return out;
};

/** Relative error in units of f32 epsilon (2^-23). */
const ulps = (got: number, want: number) => Math.abs(got - want) / Math.max(Math.abs(want), 1e-300) / 2 ** -23;

test('exp is within 4 ulp of Math.exp over [-87, 88], on vector lanes and the scalar tail', () => {
  const xs = Array.from({ length: 9001 }, (_, i) => Math.fround(-87 + (175 * i) / 9000));
  const got = apply('exp', xs);
  const worst = Math.max(...xs.map((x, i) => ulps(got[i], Math.exp(x))));
  expect(worst).toBeLessThan(4);
});

test('log is within 4 ulp of Math.log from the smallest normal to the largest float', () => {
  const xs = Array.from({ length: 9001 }, (_, i) => Math.fround(2 ** (-126 + (253.9 * i) / 9000)));
  const got = apply('log', xs);
  const worst = Math.max(...xs.map((x, i) => Math.abs(got[i] - Math.log(x)) / Math.max(Math.abs(Math.log(x)), 1) / 2 ** -23));
  expect(worst).toBeLessThan(4);
});

test('exp and log edges: overflow, underflow, 0, denormals, ±inf, NaN (vector and scalar lanes alike)', () => {
  const ex = [100, 88.8, -88, -1000, Infinity, -Infinity, NaN, 0, 1];
  expect(apply('exp', ex)).toEqual([Infinity, Infinity, 0, 0, Infinity, 0, NaN, 1, Math.fround(Math.E)]);
  const lx = [0, 1e-40, -1, Infinity, NaN, 1, -Infinity, -0, Math.E];
  const got = apply('log', lx);
  expect(got.slice(0, 8)).toEqual([-Infinity, -Infinity, NaN, Infinity, NaN, 0, NaN, -Infinity]);
  expect(got[8]).toBeCloseTo(1, 6);
});

test('tanh, sigmoid, SiLU and GELU saturate at extreme inputs without NaN', () => {
  const xs = [-1e30, -1000, -90, -20, 0, 20, 90, 1000, 1e30];
  for (const op of ['tanh', 'sigmoid', 'silu', 'gelu_tanh'] as const) {
    const got = apply(op, xs);
    expect(got.some(Number.isNaN), op).toBe(false);
  }
  expect(apply('tanh', xs)).toEqual([-1, -1, -1, -1, 0, 1, 1, 1, 1]);
  expect(apply('sigmoid', xs)).toEqual([0, 0, 0, Math.fround(1 / (1 + Math.exp(20))), 0.5, Math.fround(1 / (1 + Math.exp(-20))), 1, 1, 1]);
});
