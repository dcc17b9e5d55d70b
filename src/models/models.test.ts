/**
 * Policy models on fixture checkpoints (random weights in transformers' exact tensor names, written
 * by src/io/fixtures.ts): load from safetensors (BF16, F16, F32, sharded), WebGPU forward against the
 * float64 CPU reference, padding invariance, KV-cache decoding against full recompute, LoRA, and
 * save -> load round trips; bad checkpoints raise errors naming the tensor.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { closeness, gpuBackend } from '../engine/testing.js';
import type { WebGPUBackend } from '../engine/webgpu/backend.js';
import { buildFixtures, type FixtureRepo } from '../io/fixtures.js';
import { openSafetensorsBuffer, openShardedSafetensors, serializeSafetensors, type TensorSource } from '../io/safetensors.js';
import { pixelShuffle } from './idefics3.js';
import { applyLora, loadAdapter, loadPretrained, mergeLora, saveAdapter, saveModel, setAdapterEnabled, type PolicyModel } from './checkpoint.js';
import { DecodeSession } from './generate.js';
import { lastLogits, type TokenBatch } from './llama.js';

const fixtures = buildFixtures(3);
const json = (f: FixtureRepo, name: string) => JSON.parse(new TextDecoder().decode(f.files.get(name)!));

async function weightsOf(files: Map<string, Uint8Array>): Promise<TensorSource> {
  if (files.has('model.safetensors.index.json'))
    return openShardedSafetensors(new TextDecoder().decode(files.get('model.safetensors.index.json')!), (f) => openSafetensorsBuffer(files.get(f)!, f));
  return openSafetensorsBuffer(files.get('model.safetensors')!, 'model.safetensors');
}

const load = async (f: FixtureRepo, be: E.Backend) => loadPretrained(json(f, 'config.json'), await weightsOf(f.files), be);

/** Two rows: a 9-token prompt and a 5-token one left-padded to 9. For VLMs each holds one image. */
function batchFor(model: PolicyModel): { batch: TokenBatch; rows: number[][]; images?: (be: E.Backend) => E.Tensor } {
  const v = model.text.vocab_size;
  const isVlm = 'imageSeqLen' in model;
  const imageId = isVlm ? (model.config as { image_token_id: number }).image_token_id : -1;
  const img = isVlm ? Array<number>(model.imageSeqLen).fill(imageId) : [];
  const rows = [[5, ...img, 17, 3, 44, 8, 9, 60, 2, 11], [7, ...img, 30, 12, 4, 50]].map((r) => r.map((t) => (t === imageId ? t : t % (v - 1))));
  const len = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * len), mask = new Int32Array(rows.length * len);
  rows.forEach((r, i) => r.forEach((t, j) => ((ids[i * len + len - r.length + j] = t), (mask[i * len + len - r.length + j] = 1))));
  const images = isVlm
    ? (be: E.Backend) => {
        const size = (model.config as { vision: { image_size: number } }).vision.image_size;
        return E.randn(be, [rows.length, 3, size, size], new E.Rng(11));
      }
    : undefined;
  return { batch: { ids, batch: rows.length, length: len, mask }, rows, images };
}

async function logitsOf(model: PolicyModel, b: TokenBatch, images?: E.Tensor): Promise<Float32Array> {
  const out = E.noGrad(() => E.scope(() => lastLogits(model, model.forward(b, undefined, images)).keep()));
  const d = (await out.data()) as Float32Array;
  out.dispose();
  return d;
}

let gpu: WebGPUBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});
afterAll(() => gpu?.ctx.device.destroy());

describe.each(fixtures.map((f) => [f.repo, f] as const))('%s', (_name, fx) => {
  test('loads, and the WebGPU forward equals the CPU reference', async () => {
    const cpu = new E.CpuBackend();
    const mc = await load(fx, cpu), mg = await load(fx, gpu);
    expect(mg.numParameters()).toBe(fx.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0));
    expect(mg.parameterBytes()).toBe(4 * mg.numParameters());
    const { batch, images } = batchFor(mg);
    const ref = await logitsOf(mc, batch, images?.(cpu));
    const got = await logitsOf(mg, batch, images?.(gpu));
    const { ratio, at } = closeness(got, ref, 1e-4, 1e-3);
    expect(ratio, `logit ${at}: gpu ${got[at]} vs cpu ${ref[at]}`).toBeLessThanOrEqual(1);
    mc.dispose();
    mg.dispose();
  });

  test('a padded batch gives each row the logits it has alone', async () => {
    const m = await load(fx, gpu);
    const { batch, rows, images } = batchFor(m);
    const pix = images?.(gpu);
    const both = await logitsOf(m, batch, pix);
    const v = m.text.vocab_size;
    for (let r = 0; r < rows.length; r++) {
      const alone = await logitsOf(m, { ids: Int32Array.from(rows[r]), batch: 1, length: rows[r].length }, pix && E.narrow(pix, 0, r, 1));
      const { ratio } = closeness(both.subarray(r * v, (r + 1) * v), alone, 1e-4, 1e-3);
      expect(ratio, `row ${r}`).toBeLessThanOrEqual(1);
    }
    m.dispose();
  });

  test('greedy decoding with the KV cache equals recomputing the full forward each step', async () => {
    const m = await load(fx, gpu);
    const { rows, images } = batchFor(m);
    const pix = images?.(gpu);
    const session = new DecodeSession(m, rows.length, 64);
    await session.append(rows.map((r, i) => ({ ids: r, images: pix && E.narrow(pix, 0, i, 1) })));
    const { tokens } = await session.generate({ maxNewTokens: 6, sampling: { temperature: 0, rng: new E.Rng(0) } });
    // Then an inserted (not generated) segment of different length per row, and more decoding.
    await session.append([{ ids: [3, 4, 5] }, { ids: [6] }]);
    const more = await session.generate({ maxNewTokens: 3, sampling: { temperature: 0, rng: new E.Rng(0) } });
    for (let r = 0; r < rows.length; r++) {
      const seq = [...rows[r], ...tokens[r], ...(r === 0 ? [3, 4, 5] : [6]), ...more.tokens[r]];
      const start = rows[r].length;
      const cut = start + tokens[r].length;
      for (let i = 0; i < seq.length - start; i++) {
        const pos = start + i;
        if (pos >= cut && pos < cut + (r === 0 ? 3 : 1)) continue; // inserted tokens are not predicted
        const prefix = seq.slice(0, pos);
        const logits = await logitsOf(m, { ids: Int32Array.from(prefix), batch: 1, length: prefix.length }, pix && E.narrow(pix, 0, r, 1));
        let best = 0;
        for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
        expect(best, `row ${r}, token ${i}`).toBe(seq[pos]);
      }
    }
    session.dispose();
    m.dispose();
  });

  test('save -> load gives identical outputs', async () => {
    const m = await load(fx, gpu);
    const { batch, images } = batchFor(m);
    const pix = images?.(gpu);
    const before = await logitsOf(m, batch, pix);
    const files = await saveModel(m);
    const again = await loadPretrained(JSON.parse(new TextDecoder().decode(files.get('config.json')!)), await openSafetensorsBuffer(files.get('model.safetensors')!), gpu);
    expect(Array.from(await logitsOf(again, batch, pix))).toEqual(Array.from(before));
    m.dispose();
    again.dispose();
  });
});

describe('LoRA', () => {
  const fx = fixtures.find((f) => f.repo.endsWith('tiny-llama'))!;
  const target = '.*(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)';

  test('B = 0 leaves outputs unchanged; only adapters train; a step lowers the loss; disable = base', async () => {
    const m = await load(fx, gpu);
    const { batch } = batchFor(m);
    const base = await logitsOf(m, batch);
    const adapted = applyLora(m, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: target });
    expect(adapted).toHaveLength(2 * 7);
    expect(Array.from(await logitsOf(m, batch))).toEqual(Array.from(base));
    const trainable = m.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
    expect(trainable.length).toBe(2 * 7 * 2);
    expect(trainable.every((n) => /lora_[AB]\.weight$/.test(n))).toBe(true);

    const targets = E.fromArray(gpu, Array.from(batch.ids).map((t) => (t + 1) % m.text.vocab_size), [batch.ids.length], 'i32').keep();
    const lossOf = () => {
      const h = m.forward(batch);
      const { logprobs } = E.tokenLogprobs(h.reshape([batch.ids.length, m.text.hidden_size]), m.lmHeadWeight(), targets);
      return E.neg(E.mean(logprobs));
    };
    const params = m.parameters().filter((p) => p.requiresGrad);
    const opt = new E.AdamW(params, { lr: 1e-2, weightDecay: 0 });
    const l0 = await E.scope(() => {
      const l = lossOf();
      l.backward();
      return l;
    }).item();
    expect(m.parameters().filter((p) => !p.requiresGrad).every((p) => p.grad === null)).toBe(true);
    opt.step();
    const l1 = await E.noGrad(() => E.scope(() => lossOf().keep())).item();
    expect(l1).toBeLessThan(l0);

    setAdapterEnabled(m, false);
    expect(Array.from(await logitsOf(m, batch))).toEqual(Array.from(base));
    setAdapterEnabled(m, true);
    const tuned = await logitsOf(m, batch);
    expect(closeness(tuned, base, 1e-6, 0).ratio).toBeGreaterThan(1); // the adapter changed the outputs

    // PEFT adapter files round-trip onto a fresh base model.
    const files = await saveAdapter(m, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: target }, fx.repo);
    const names = (await openSafetensorsBuffer(files.get('adapter_model.safetensors')!)).names();
    expect(names).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(names).toContain('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight');
    const fresh = await load(fx, gpu);
    await loadAdapter(fresh, JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')!)), await openSafetensorsBuffer(files.get('adapter_model.safetensors')!));
    const reloaded = await logitsOf(fresh, batch);
    expect(closeness(reloaded, tuned, 1e-5, 1e-4).ratio).toBeLessThanOrEqual(1);
    // Merging gives the same function with plain weights.
    mergeLora(fresh);
    expect(fresh.namedParameters().some(([n]) => n.includes('lora'))).toBe(false);
    expect(closeness(await logitsOf(fresh, batch), tuned, 1e-4, 1e-3).ratio).toBeLessThanOrEqual(1);
    [m, fresh].forEach((x) => x.dispose());
    opt.dispose();
    targets.dispose();
  });
});

describe('malformed checkpoints raise errors naming the tensor', () => {
  const fx = fixtures.find((f) => f.repo.endsWith('tiny-llama'))!;
  const withTensors = (edit: (t: Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>) => void) => {
    const t = new Map(fx.tensors.map((s) => [s.name, { dtype: 'F32' as const, shape: s.shape, data: new Float32Array(s.shape.reduce((a, b) => a * b, 1)) }]));
    edit(t);
    return openSafetensorsBuffer(serializeSafetensors(t), 'broken.safetensors');
  };

  test('missing tensor', async () => {
    const src = await withTensors((t) => t.delete('model.layers.1.mlp.up_proj.weight'));
    await expect(loadPretrained(json(fx, 'config.json'), src, gpu)).rejects.toThrow(/broken\.safetensors.*model\.layers\.1\.mlp\.up_proj\.weight/);
  });

  test('wrong shape', async () => {
    const src = await withTensors((t) => t.set('model.norm.weight', { dtype: 'F32', shape: [31], data: new Float32Array(31) }));
    await expect(loadPretrained(json(fx, 'config.json'), src, gpu)).rejects.toThrow(/model\.norm\.weight.*\[32\]|\[31\].*model\.norm\.weight|model\.norm\.weight/);
  });

  test('invalid config fields and unknown architectures are named', async () => {
    const src = await weightsOf(fx.files);
    await expect(loadPretrained({ ...json(fx, 'config.json'), num_attention_heads: 0 }, src, gpu)).rejects.toThrow(/field "num_attention_heads"/);
    await expect(loadPretrained({ ...json(fx, 'config.json'), architectures: ['GPT2LMHeadModel'] }, src, gpu)).rejects.toThrow(/field "architectures".*GPT2LMHeadModel/);
  });

  test('a token id outside the vocabulary names its row and position', async () => {
    const m = await load(fx, gpu);
    expect(() => E.noGrad(() => E.scope(() => m.forward({ ids: Int32Array.from([1, 2, 999, 3]), batch: 2, length: 2 })))).toThrow(/id 999 at row 1, position 0/);
    m.dispose();
  });
});

test('pixel shuffle matches Idefics3Connector.pixel_shuffle index by index', async () => {
  // transformers: x.view(b, h, w, c).view(b, h, w/s, c·s).permute(0,2,1,3).reshape(b, w/s, h/s, c·s²).permute(0,2,1,3)
  // Output token (i, j) holds, for each (di, dj) in s×s, patch (s·i + dj?)… derived below by index arithmetic.
  const b = 1, side = 4, s = 2, c = 3;
  const x = Array.from({ length: b * side * side * c }, (_, i) => i);
  const cpu = new E.CpuBackend();
  const got = Array.from(await pixelShuffle(E.fromArray(cpu, x, [b, side * side, c]), s).data());
  // Independent index computation of the same chain of views/permutes on a plain array.
  const v1 = (h: number, w2: number, e: number) => x[(h * side + w2 * s + Math.floor(e / c)) * c + (e % c)]; // [h, w/s, c·s]
  const p1 = (w2: number, h: number, e: number) => v1(h, w2, e); // permute -> [w/s, h, c·s]
  const flat1 = (i: number) => p1(Math.floor(i / (side * c * s)), Math.floor(i / (c * s)) % side, i % (c * s));
  const r2 = (w2: number, h2: number, e2: number) => flat1((w2 * (side / s) + h2) * c * s * s + e2); // [w/s, h/s, c·s²]
  const expected: number[] = [];
  for (let h2 = 0; h2 < side / s; h2++) for (let w2 = 0; w2 < side / s; w2++) for (let e2 = 0; e2 < c * s * s; e2++) expected.push(r2(w2, h2, e2));
  expect(got).toEqual(expected);
});

test("sampling's token order is a stable comparison sort's: by logit, highest first, ties by id (-0 as +0, infinities, subnormals)", async () => {
  const { byLogitDescending } = await import('./generate.js');
  const rng = new E.Rng(11);
  const special = [0, -0, Infinity, -Infinity, 1e-45, -1e-45, 3.4e38, -3.4e38, 1, -1];
  for (const V of [1, 7, 1024, 4099]) {
    // Few distinct values, so most logits tie with others.
    const logits = Float32Array.from({ length: V }, (_, i) => (i % 5 === 0 ? special[Math.floor(rng.next() * special.length)] : Math.round((rng.next() - 0.5) * 8) / 2));
    const reference = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    expect(byLogitDescending(logits)).toEqual(reference);
  }
});

test('sampling: suppressed tokens are never drawn; top-k keeps the k best; greedy is the argmax', async () => {
  const { sampleToken } = await import('./generate.js');
  const logits = Float32Array.from([2, 5, 1, 4.9]);
  const rng = new E.Rng(3);
  for (let i = 0; i < 200; i++) {
    expect(sampleToken(logits, { temperature: 1, suppressTokens: [1], rng }).token).not.toBe(1);
    expect([1, 3]).toContain(sampleToken(logits, { temperature: 1, topK: 2, rng }).token);
  }
  const g = sampleToken(logits, { temperature: 0, rng });
  expect(g.token).toBe(1);
  // log-prob under log_softmax of the full vocabulary (temperature 1 for greedy)
  const z = Math.log([2, 5, 1, 4.9].reduce((a, v) => a + Math.exp(v), 0));
  expect(g.logprob).toBeCloseTo(5 - z, 5);
});
