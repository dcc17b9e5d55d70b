/**
 * A 2-layer Llama-style decoder (RMSNorm, RoPE, GQA causal attention with a padding mask, SwiGLU,
 * tied embedding + fused token log-probs) written with engine ops: every parameter's gradient on
 * WebGPU must match the float64 CPU reference, and the CPU gradient must match finite differences
 * at sampled elements.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/backend.js';
import * as E from './index.js';
import { closeness, gpuBackend } from './testing.js';
import { WasmBackend } from './wasm/backend.js';
import { layerShapes, llamaLayer } from '../../bench/llama-layer.js';
import type { WebGPUBackend } from './webgpu/backend.js';

const cfg = { vocab: 23, d: 16, layers: 2, heads: 4, kvHeads: 2, ffn: 24, b: 2, t: 6, theta: 10000, eps: 1e-5 };
const headDim = cfg.d / cfg.heads;
const layerCfg = { hidden: cfg.d, heads: cfg.heads, kvHeads: cfg.kvHeads, ffn: cfg.ffn, eps: cfg.eps };

/** Parameter shapes by Hugging Face name. */
function shapes(): [string, number[]][] {
  const layers = Array.from({ length: cfg.layers }, (_, l) => layerShapes(layerCfg, l)).flat();
  return [['model.embed_tokens.weight', [cfg.vocab, cfg.d]], ...layers, ['model.norm.weight', [cfg.d]]];
}

function initValues(): Map<string, Float64Array> {
  const rng = new E.Rng(7);
  const m = new Map<string, Float64Array>();
  for (const [name, shape] of shapes()) {
    const n = shape.reduce((a, b) => a * b, 1);
    m.set(name, Float64Array.from({ length: n }, () => (name.endsWith('layernorm.weight') || name === 'model.norm.weight' ? 1 + 0.1 * rng.normal() : 0.3 * rng.normal())));
  }
  return m;
}

const ids = [3, 7, 1, 22, 5, 9, 0, 0, 4, 4, 18, 2];
const mask = [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]; // second row left-padded by 2
const positions = [0, 1, 2, 3, 4, 5, 0, 0, 0, 1, 2, 3];
const targets = [7, 1, 22, 5, 9, 11, 0, 4, 4, 18, 2, 13];

/** Mean negative log-likelihood of targets over unpadded positions. */
function loss(be: Backend, params: Map<string, E.Tensor>): E.Tensor {
  const P = (n: string) => params.get(n)!;
  const idT = E.fromArray(be, ids, [cfg.b, cfg.t], 'i32');
  const maskT = E.fromArray(be, mask, [cfg.b, cfg.t], 'i32');
  const posT = E.fromArray(be, positions, [cfg.b, cfg.t], 'i32');
  const table = E.ropeTable(be, cfg.theta, headDim, 16);
  let h = E.embedding(P('model.embed_tokens.weight'), idT); // [B, T, D]
  for (let l = 0; l < cfg.layers; l++) h = llamaLayer(layerCfg, l, P, h, posT, maskT, table);
  h = E.rmsNorm(h, P('model.norm.weight'), cfg.eps);
  const { logprobs } = E.tokenLogprobs(h.reshape([cfg.b * cfg.t, cfg.d]), P('model.embed_tokens.weight'), E.fromArray(be, targets, [cfg.b * cfg.t], 'i32'), { chunkSize: 8 });
  const w = E.fromArray(be, mask.map((m) => -m / mask.reduce((a, b) => a + b)), [cfg.b * cfg.t]);
  return E.sum(E.mul(logprobs, w));
}

function makeParams(be: Backend, values: Map<string, Float64Array>): Map<string, E.Tensor> {
  const m = new Map<string, E.Tensor>();
  for (const [name, shape] of shapes()) {
    const v = values.get(name)!;
    m.set(name, E.parameter(E.fromArray(be, be.name === 'cpu' ? v : Float32Array.from(v), shape), name));
  }
  return m;
}

let gpu: WebGPUBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});
afterAll(() => gpu?.ctx.device.destroy());

test.each(['webgpu', 'wasm'])('2-layer transformer: every parameter gradient on %s matches the CPU reference', async (which) => {
  const values = initValues();
  const cpu = new CpuBackend();
  const grads = async (be: Backend) => {
    const params = makeParams(be, values);
    const l = E.scope(() => {
      const l = loss(be, params);
      l.backward();
      return l;
    });
    const out = new Map<string, Float32Array>();
    for (const [name, p] of params) out.set(name, (await p.grad!.data()) as Float32Array);
    const value = await l.item();
    l.dispose();
    params.forEach((p) => p.dispose());
    return { value, out };
  };
  const ref = await grads(cpu);
  const wasm = which === 'wasm' ? await WasmBackend.create({ threads: 2 }) : undefined;
  const got = await grads(wasm ?? gpu);
  wasm?.destroy();
  expect(got.value).toBeCloseTo(ref.value, 4);
  expect(ref.value).toBeGreaterThan(0);
  for (const [name, r] of ref.out) {
    const { ratio, at } = closeness(got.out.get(name)!, r, 1e-5, 1e-3);
    expect(ratio, `${name}[${at}]: ${which} ${got.out.get(name)![at]} vs cpu ${r[at]}`).toBeLessThanOrEqual(1);
    expect(r.some((v) => v !== 0), `${name} got a gradient`).toBe(true);
  }
});

test('2-layer transformer: CPU gradient matches finite differences at sampled elements', () => {
  const values = initValues();
  const cpu = new CpuBackend();
  const evalLoss = (vals: Map<string, Float64Array>) =>
    E.noGrad(() => E.scope(() => {
      const params = makeParams(cpu, vals);
      const v = cpu.readF64(loss(cpu, params).storage)[0];
      params.forEach((p) => p.dispose());
      return v;
    }));
  const params = makeParams(cpu, values);
  E.scope(() => loss(cpu, params).backward());
  const rng = new E.Rng(3);
  const h = 1e-6;
  for (const name of ['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.1.mlp.down_proj.weight', 'model.layers.0.input_layernorm.weight']) {
    const g = cpu.readF64(params.get(name)!.grad!.storage);
    for (let s = 0; s < 4; s++) {
      const i = rng.int(g.length);
      const plus = new Map(values), minus = new Map(values);
      plus.set(name, values.get(name)!.slice());
      minus.set(name, values.get(name)!.slice());
      plus.get(name)![i] += h;
      minus.get(name)![i] -= h;
      const fd = (evalLoss(plus) - evalLoss(minus)) / (2 * h);
      expect(Math.abs(g[i] - fd), `${name}[${i}] analytic ${g[i]} vs fd ${fd}`).toBeLessThan(1e-6 + 1e-5 * Math.abs(fd));
    }
  }
  params.forEach((p) => p.dispose());
});
