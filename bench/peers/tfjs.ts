/**
 * The workloads in TensorFlow.js (`@tensorflow/tfjs-core` with `@tensorflow/tfjs-backend-webgpu` as
 * `tfjs`, or with `@tensorflow/tfjs-backend-wasm` as `tfjs-wasm`; default flags), written as TF.js
 * code usually is: ops under `tf.tidy`, trainable weights as
 * `tf.Variable`s, gradients from `tf.variableGrads` / `tf.grads`. TF.js has no fused attention, so
 * attention is matmul -> mask -> softmax -> matmul with the KV heads repeated for GQA; there is no
 * AdamW (tf.train.adam has no decoupled weight decay), so AdamW is written out with tf ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import type { EngineImpl, MemoryMeter, Prepared, TextSpec, VisionSpec, Workload } from '../harness.js';
import { ADAMW, LR, grpoChecked, lmChecked } from '../ours.js';
import { hostData, ropeRows, ropeTable, type HostData } from '../workloads.js';
import { argmaxRows } from './jax.js';

type T = tf.Tensor;
type Vars = Record<string, tf.Variable>;
const { beta1: B1, beta2: B2, eps: EPS, weightDecay: WD } = ADAMW;
const NEG = -1e9;

const host = async (x: T): Promise<Float32Array> => Float32Array.from((await x.data()) as Float32Array);

/** x·Wᵀ over the last axis (nn.Linear). */
function lin(x: T, w: T): T {
  const shape = x.shape;
  const y = tf.matMul(x.reshape([-1, shape[shape.length - 1]]), w, false, true);
  return y.reshape([...shape.slice(0, -1), w.shape[0]]);
}
const rmsNorm = (x: T, w: T, eps: number) => x.mul(tf.rsqrt(tf.mean(tf.square(x), -1, true).add(eps))).mul(w);
function layerNorm(x: T, w: T, b: T, eps: number): T {
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(w).add(b);
}
const geluTanh = (x: T) => x.mul(0.5).mul(tf.tanh(x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI))).add(1));
const silu = (x: T) => x.mul(tf.sigmoid(x));
/** HF rotate_half RoPE: x [B, T, H, D], cos/sin [B or 1, T, 1, D/2]. */
function rope(x: T, cos: T, sin: T): T {
  const [x1, x2] = tf.split(x, 2, 3);
  return tf.concat([x1.mul(cos).sub(x2.mul(sin)), x2.mul(cos).add(x1.mul(sin))], 3);
}
/** Gradient stop (TF.js has no stop_gradient op). */
const stopGradient = tf.customGrad(((x: T) => ({ value: x.clone(), gradFunc: (dy: T) => tf.zerosLike(dy) })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: T) => T;

/**
 * Softmax attention over q [B, T, H, D], k/v [B, S, Hkv, D] with an additive bias broadcastable to
 * [B, H, T, S] (0 where visible, -1e9 elsewhere); KV heads repeated for GQA.
 */
function attention(q: T, k: T, v: T, bias?: T): T {
  const [b, t, h, d] = q.shape, [, s, hkv] = k.shape;
  // Query head i reads KV head floor(i / group) (gather: TF.js has no gradient for rank-5 tile).
  const group = Int32Array.from({ length: h }, (_, i) => Math.floor(i / (h / hkv)));
  const heads = (x: T) => {
    const xh = x.transpose([0, 2, 1, 3]);
    return hkv === h ? xh : tf.gather(xh, tf.tensor1d(group, 'int32'), 1);
  };
  let scores = tf.matMul(q.transpose([0, 2, 1, 3]), heads(k), false, true).mul(1 / Math.sqrt(d));
  if (bias) scores = scores.add(bias);
  return tf.matMul(tf.softmax(scores), heads(v)).transpose([0, 2, 1, 3]);
}
/** Additive causal bias [T, S] for queries at slots s - T .. s - 1. */
const causalBias = (t: number, s: number) => tf.tensor2d(Float32Array.from({ length: t * s }, (_, i) => (i % s <= Math.floor(i / s) + s - t ? 0 : NEG)), [t, s]);

/** cos and sin [rows, T, 1, D/2] of positions [rows·T] from the host table. */
function ropeInputs(table: Float32Array, headDim: number, positions: Int32Array, rows: number): [T, T] {
  const half = headDim / 2, t = positions.length / rows;
  const { cos, sin } = ropeRows(table, headDim, positions);
  return [tf.tensor4d(cos, [rows, t, 1, half]), tf.tensor4d(sin, [rows, t, 1, half])];
}

type Cache = { k: T[]; v: T[] };

/** One Llama decoder layer; with `cache`, K/V are appended to the layer's cache (kept in `out`). */
function decoderLayer(W: (n: string) => T, p: string, t: TextSpec, h: T, cos: T, sin: T, bias?: T, kv?: { cache?: Cache; l: number; out: Cache }): T {
  const [b, n] = h.shape;
  const H = t.num_attention_heads, Hkv = t.num_key_value_heads, hd = t.hidden_size / H;
  const w = (name: string) => W(p + name);
  const x = rmsNorm(h, w('input_layernorm.weight'), t.rms_norm_eps);
  const q = rope(lin(x, w('self_attn.q_proj.weight')).reshape([b, n, H, hd]), cos, sin);
  let k = rope(lin(x, w('self_attn.k_proj.weight')).reshape([b, n, Hkv, hd]), cos, sin);
  let v = lin(x, w('self_attn.v_proj.weight')).reshape([b, n, Hkv, hd]);
  if (kv) {
    if (kv.cache) {
      k = tf.concat([kv.cache.k[kv.l], k], 1);
      v = tf.concat([kv.cache.v[kv.l], v], 1);
    }
    kv.out.k.push(tf.keep(k));
    kv.out.v.push(tf.keep(v));
  }
  const a = attention(q, k, v, bias);
  const h2 = h.add(lin(a.reshape([b, n, H * hd]), w('self_attn.o_proj.weight')));
  const y = rmsNorm(h2, w('post_attention_layernorm.weight'), t.rms_norm_eps);
  return h2.add(lin(silu(lin(y, w('mlp.gate_proj.weight'))).mul(lin(y, w('mlp.up_proj.weight'))), w('mlp.down_proj.weight')));
}

function textModel(W: (n: string) => T, prefix: string, t: TextSpec, h: T, cos: T, sin: T, kv?: { cache?: Cache; bias?: T; out: Cache }): T {
  const bias = kv ? kv.bias : causalBias(h.shape[1]!, h.shape[1]!);
  for (let l = 0; l < t.num_hidden_layers; l++) h = decoderLayer(W, `${prefix}layers.${l}.`, t, h, cos, sin, bias, kv && { ...kv, l });
  return rmsNorm(h, W(`${prefix}norm.weight`), t.rms_norm_eps);
}

/** tiny-vlm's SigLIP tower and pixel-shuffle connector: pixels [N, 3, S, S] -> image tokens [N, n, D]. */
function vision(W: (n: string) => T, v: VisionSpec, pixels: T): T {
  const w = (name: string) => W(`model.vision_model.${name}`);
  const N = pixels.shape[0], p = v.patch_size, g = v.image_size / p, d = v.hidden_size, heads = v.num_attention_heads;
  const patches = pixels.reshape([N, 3, g, p, g, p]).transpose([0, 2, 4, 1, 3, 5]).reshape([N, g * g, 3 * p * p]);
  let x = lin(patches, w('embeddings.patch_embedding.weight').reshape([d, 3 * p * p])).add(w('embeddings.patch_embedding.bias')).add(w('embeddings.position_embedding.weight'));
  for (let l = 0; l < v.num_hidden_layers; l++) {
    const q = (name: string) => w(`encoder.layers.${l}.${name}`);
    const y = layerNorm(x, q('layer_norm1.weight'), q('layer_norm1.bias'), v.layer_norm_eps);
    const proj = (name: string) => lin(y, q(`self_attn.${name}.weight`)).add(q(`self_attn.${name}.bias`)).reshape([N, g * g, heads, d / heads]);
    const att = attention(proj('q_proj'), proj('k_proj'), proj('v_proj')).reshape([N, g * g, d]);
    x = x.add(lin(att, q('self_attn.out_proj.weight')).add(q('self_attn.out_proj.bias')));
    const z = layerNorm(x, q('layer_norm2.weight'), q('layer_norm2.bias'), v.layer_norm_eps);
    x = x.add(lin(geluTanh(lin(z, q('mlp.fc1.weight')).add(q('mlp.fc1.bias'))), q('mlp.fc2.weight')).add(q('mlp.fc2.bias')));
  }
  x = layerNorm(x, w('post_layernorm.weight'), w('post_layernorm.bias'), v.layer_norm_eps);
  const s = v.scale_factor;
  const shuffled = x.reshape([N, g, g / s, d * s]).transpose([0, 2, 1, 3]).reshape([N, g / s, g / s, d * s * s]).transpose([0, 2, 1, 3]).reshape([N, (g * g) / (s * s), d * s * s]);
  return lin(shuffled, W('model.connector.modality_projection.proj.weight'));
}

/** Log-probabilities [N] of `targets` (flat indices row·V + id, i32 [N]) under logits [N, V]. */
const targetLogprobs = (logits: T, flatTargets: T) => tf.gather(tf.logSoftmax(logits).reshape([-1]), flatTargets);
const flatTargets = (targets: Int32Array, vocab: number) => tf.tensor1d(Int32Array.from(targets, (id, i) => i * vocab + id), 'int32');

/** AdamW state for a set of variables; `apply` updates them in place (decoupled decay, bias-corrected). */
class AdamW {
  private m = new Map<string, tf.Variable>();
  private v = new Map<string, tf.Variable>();
  private step = 0;
  constructor(private readonly vars: Vars) {
    for (const [n, p] of Object.entries(vars)) {
      this.m.set(n, tf.variable(tf.zerosLike(p), false));
      this.v.set(n, tf.variable(tf.zerosLike(p), false));
    }
  }
  apply(grads: tf.NamedTensorMap, coef?: T): void {
    this.step++;
    const bc1 = 1 - B1 ** this.step, bc2 = 1 - B2 ** this.step;
    tf.tidy(() => {
      for (const [n, p] of Object.entries(this.vars)) {
        const g = coef ? grads[n].mul(coef) : grads[n];
        const m = this.m.get(n)!, v = this.v.get(n)!;
        m.assign(m.mul(B1).add(g.mul(1 - B1)));
        v.assign(v.mul(B2).add(g.square().mul(1 - B2)));
        p.assign(p.mul(1 - LR * WD).sub(m.div(bc1).div(v.div(bc2).sqrt().add(EPS)).mul(LR)));
      }
    });
  }
  dispose(): void {
    [...this.m.values(), ...this.v.values()].forEach((x) => x.dispose());
  }
}

/**
 * Every host weight as a trainable variable, by name. TF.js registers variables by name page-wide:
 * `prefix` keeps the names of two TF.js engines preparing the same row apart.
 */
const variables = (h: HostData, prefix: string): Vars =>
  Object.fromEntries([...h.weights].map(([n, w]) => [n, tf.variable(tf.tensor(w.data, w.shape), true, `${prefix}_${n}`.replace(/[^A-Za-z0-9_]/g, '_'))]));

/** TF.js's backends the benchmark uses. */
export type TfjsBackend = 'webgpu' | 'wasm';

/** The parts of TF.js's WebGPU backend the engine reaches into (submitting its batch, its buffer pool). */
interface WebGPUBackendInternals {
  device: GPUDevice;
  commandEncoder: unknown;
  endComputePassEncoder(): void;
  submitQueue(): void;
  bufferManager: { freeBuffers: Map<string, GPUBuffer[]>; numFreeBuffers: number };
}

/**
 * TensorFlow.js on one of its backends. TF.js's active backend is global to the page (one tfjs-core)
 * and both engines may share a page, so every entry point (prepare and each call of a Prepared)
 * makes this engine's backend the active one first (a no-op when it already is; the runner's untimed
 * `before` does it ahead of every timed run): every tensor an engine creates lives on its own backend.
 */
export class TfjsEngine implements EngineImpl {
  readonly name: 'tfjs' | 'tfjs-wasm';
  version: string;
  memoryMeter?: MemoryMeter;
  private gpu?: WebGPUBackendInternals;

  constructor(private readonly backend: TfjsBackend = 'webgpu') {
    this.name = backend === 'wasm' ? 'tfjs-wasm' : 'tfjs';
    this.version = `@tensorflow/tfjs-core ${tf.version_core} + tfjs-backend-${backend} (default flags)`;
  }

  async init(): Promise<void> {
    if (this.backend === 'wasm') {
      // The .wasm binaries as the page serves them (tfjs-wasm-files.ts); TF.js picks the threaded SIMD
      // one where the page is cross-origin isolated (SharedArrayBuffer), else the SIMD one. Its thread
      // count stays its default: half the logical cores, 1 to 8 (its C++ caps even setThreadsCount
      // there, taking every second logical core for a hyperthread), so 1 on a 2-core machine.
      const [wasm, { TFJS_WASM_FILES }] = await Promise.all([import('@tensorflow/tfjs-backend-wasm'), import('./tfjs-wasm-files.js')]);
      wasm.setWasmPaths(TFJS_WASM_FILES);
      if (!(await tf.setBackend('wasm'))) throw new Error('TF.js could not start its WebAssembly backend');
      await tf.ready();
      const [simd, threads] = await Promise.all([tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')]);
      const n = threads ? wasm.getThreadsCount() : 1;
      this.version = `@tensorflow/tfjs-core ${tf.version_core} + tfjs-backend-wasm ${wasm.version_wasm} (${simd ? 'SIMD' : 'no SIMD'}, ${threads ? `threaded build, ${n} thread${n > 1 ? 's' : ''}` : 'single-threaded build'})`;
      const be = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } };
      // Its heap (emscripten's linear memory, 16 MiB to start) only grows: its size is its high-water mark.
      this.memoryMeter = { measure: 'wasm-heap', reset: () => {}, peak: () => be.wasm.HEAPU8.buffer.byteLength };
      return;
    }
    if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend');
    await tf.ready();
    this.gpu = tf.backend() as unknown as WebGPUBackendInternals;
  }

  /** Makes this engine's backend TF.js's active one (synchronous once the backend is initialised). */
  private use(): void {
    if (tf.getBackend() !== this.backend) void tf.setBackend(this.backend);
  }

  unsupported(w: Workload): string | undefined {
    const s = w.spec;
    if (s.kind === 'sft') return 'ours-only row (the lab\'s warm-start SFT step)';
    if (s.kind === 'matmul' && s.dtype === 'f16') return 'TF.js computes in f32 only';
    // The gradient of tf.gather (GQA's KV heads, the embedding lookup) is UnsortedSegmentSum, a
    // kernel tfjs-backend-wasm 4.22 does not have (TF.js does not fall back to another backend).
    if (this.backend === 'wasm' && ((s.kind === 'attention' && s.backward && s.hq !== s.hkv) || s.kind === 'lm-train' || s.kind === 'grpo'))
      return "TF.js's wasm backend has no UnsortedSegmentSum kernel (the gradient of gather: GQA heads, embeddings)";
    return undefined;
  }

  trim(): void {
    // The wasm heap is emscripten's malloc: nothing pooled to hand back.
    if (!this.gpu) return;
    // Destroys pooled free buffers (keeping the pool's keys: TF.js stops pooling once the map is empty).
    const bm = this.gpu.bufferManager;
    for (const [key, list] of bm.freeBuffers) {
      list.forEach((b) => b.destroy());
      bm.freeBuffers.set(key, []);
    }
    bm.numFreeBuffers = 0;
  }

  /**
   * WebGPU: submits what TF.js has recorded (it batches dispatches) and waits for the device.
   * WebAssembly: nothing to wait for (its kernels return when done, their threads joined).
   */
  private async sync(): Promise<void> {
    const gpu = this.gpu;
    if (!gpu) return;
    if (gpu.commandEncoder) {
      gpu.endComputePassEncoder();
      gpu.submitQueue();
    }
    await gpu.device.queue.onSubmittedWorkDone();
  }

  async prepare(w: Workload): Promise<Prepared> {
    this.use();
    const p = await this.prepareOn(w);
    return {
      before: async () => (this.use(), await p.before?.()),
      run: () => (this.use(), p.run()),
      check: () => (this.use(), p.check()),
      dispose: () => (this.use(), p.dispose()),
    };
  }

  private async prepareOn(w: Workload): Promise<Prepared> {
    const s = w.spec;
    const h = hostData(w);
    const owned: { dispose(): void }[] = [];
    const own = <X extends { dispose(): void }>(x: X) => (owned.push(x), x);
    const dispose = () => owned.forEach((x) => x.dispose());
    const timed = (f: () => T | T[] | void) => async () => {
      const out = tf.tidy(f);
      await this.sync();
      tf.dispose(out);
    };

    if (s.kind === 'matmul') {
      const a = own(tf.tensor2d(h.tensors.a, [s.m, s.k])), b = own(tf.tensor2d(h.tensors.b, [s.n, s.k]));
      return { run: timed(() => tf.matMul(a, b, false, true)), check: async () => ({ c: await host(tf.matMul(a, b, false, true)) }), dispose };
    }

    if (s.kind === 'attention') {
      const shape = (heads: number): [number, number, number, number] => [s.b, s.t, heads, s.d];
      const q = own(tf.tensor4d(h.tensors.q, shape(s.hq))), k = own(tf.tensor4d(h.tensors.k, shape(s.hkv))), v = own(tf.tensor4d(h.tensors.v, shape(s.hkv)));
      const r = own(tf.tensor4d(h.tensors.r, shape(s.hq)));
      const bias = own(causalBias(s.t, s.t));
      const attn = (q: T, k: T, v: T) => attention(q, k, v, bias);
      if (!s.backward) return { run: timed(() => attn(q, k, v)), check: async () => ({ o: await host(tf.tidy(() => attn(q, k, v))) }), dispose };
      const grads = () => tf.grads((q: T, k: T, v: T) => tf.sum(attn(q, k, v).mul(r)))([q, k, v]);
      return {
        run: timed(grads),
        check: async () => {
          const [dq, dk, dv] = tf.tidy(grads);
          return { dq: await host(dq), dk: await host(dk), dv: await host(dv) };
        },
        dispose,
      };
    }

    if (s.kind === 'linear-train') {
      const x = own(tf.tensor2d(h.tensors.x, [s.m, s.k]));
      const vars = { w: own(tf.variable(tf.tensor2d(h.tensors.w, [s.k, s.n]))) };
      return this.trainLoop(vars, () => tf.mean(tf.square(tf.matMul(x, vars.w))), ['w'], dispose);
    }

    if (s.kind === 'lm-train') {
      const t = s.text, L = s.seq, hd = t.hidden_size / t.num_attention_heads;
      const vars = variables(h, this.name);
      own({ dispose: () => Object.values(vars).forEach((x) => x.dispose()) });
      const W = (n: string) => vars[n];
      const [cos, sin] = ropeInputs(ropeTable(t.rope_theta, hd, L), hd, Int32Array.from({ length: L }, (_, i) => i), 1);
      own(cos);
      own(sin);
      if (!s.head) {
        const x = own(tf.tensor3d(h.tensors.x, [s.batch, L, t.hidden_size]));
        const bias = own(causalBias(L, L));
        return this.trainLoop(vars, () => tf.mean(tf.square(decoderLayer(W, 'model.layers.0.', t, x, cos, sin, bias))), lmChecked(t), dispose);
      }
      const inputs = new Int32Array(s.batch * L), targets = new Int32Array(s.batch * L);
      for (let b = 0; b < s.batch; b++) {
        inputs.set(h.ints.ids.subarray(b * (L + 1), b * (L + 1) + L), b * L);
        targets.set(h.ints.ids.subarray(b * (L + 1) + 1, (b + 1) * (L + 1)), b * L);
      }
      const ids = own(tf.tensor2d(inputs, [s.batch, L], 'int32')), tg = own(flatTargets(targets, t.vocab_size));
      const loss = () => {
        const emb = vars['model.embed_tokens.weight'];
        const hid = textModel(W, 'model.', t, tf.gather(emb, ids), cos, sin);
        return tf.mean(targetLogprobs(lin(hid.reshape([-1, t.hidden_size]), emb), tg)).neg() as tf.Scalar;
      };
      return this.trainLoop(vars, loss, lmChecked(t), dispose);
    }

    if (s.kind === 'decode') {
      const vars = variables(h, this.name);
      own({ dispose: () => Object.values(vars).forEach((x) => x.dispose()) });
      const dec = new Decoder(s.text, 'model.', (n) => vars[n], s.batch);
      own(dec);
      const ids = own(tf.tensor2d(h.ints.prompt, [s.batch, s.prompt], 'int32'));
      let last: Float32Array = new Float32Array();
      const prefill = async () => (last = await dec.prefill(tf.tidy(() => tf.gather(vars['model.embed_tokens.weight'], ids))));
      return {
        before: async () => void (await prefill()),
        run: async () => {
          for (let i = 0; i < s.newTokens; i++) last = await dec.step(argmaxRows(last, s.batch));
        },
        check: async () => {
          const first = await prefill();
          return { prefill: first, step: await dec.step(Int32Array.from({ length: s.batch }, (_, r) => h.ints.prompt[r * s.prompt])) };
        },
        dispose,
      };
    }
    return this.grpo(w, h, own, dispose);
  }

  /** A training row: loss and gradients (tf.variableGrads), AdamW; check() as in ours. */
  private trainLoop(vars: Vars, loss: () => tf.Scalar | T, checked: string[], dispose: () => void): Prepared {
    const opt = new AdamW(vars);
    const list = Object.values(vars);
    const names = new Map(Object.entries(vars).map(([n, v]) => [v.name, n]));
    const gradsByName = () => {
      const { value, grads } = tf.variableGrads(loss as () => tf.Scalar, list);
      return { value, grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [names.get(k)!, g])) as tf.NamedTensorMap };
    };
    return {
      run: async () => {
        tf.tidy(() => {
          const { grads } = gradsByName();
          opt.apply(grads);
        });
        await this.sync();
      },
      check: async () => {
        const { value, grads } = gradsByName();
        const out: Record<string, Float32Array> = { loss1: await host(value) };
        for (const n of checked) out[n] = await host(grads[n]);
        opt.apply(grads);
        tf.dispose([value, grads]);
        out.loss2 = await host(tf.tidy(loss));
        return out;
      },
      dispose: () => (opt.dispose(), dispose()),
    };
  }

  /** tiny-vlm GRPO step: rollouts with a growing KV cache, then loss, gradients, global-norm clip, AdamW. */
  private grpo(w: Workload, h: HostData, own: <X extends { dispose(): void }>(x: X) => X, dispose: () => void): Prepared {
    const s = w.spec as Extract<Workload['spec'], { kind: 'grpo' }>;
    const t = s.text, G = s.rollouts, P0 = s.prompt, L = P0 + s.newTokens, hd = t.hidden_size / t.num_attention_heads;
    const nImg = (s.vision.image_size / s.vision.patch_size) ** 2 / s.vision.scale_factor ** 2;
    const vars = variables(h, this.name);
    own({ dispose: () => Object.values(vars).forEach((x) => x.dispose()) });
    const W = (n: string) => vars[n];
    const opt = own(new AdamW(vars));
    const size = s.vision.image_size;
    const pixels = own(tf.tensor4d(Float32Array.from({ length: G * h.tensors.pixels.length }, (_, i) => h.tensors.pixels[i % h.tensors.pixels.length]), [G, 3, size, size]));
    const textIds = h.ints.prompt.subarray(nImg);
    const promptIds = own(tf.tensor2d(Int32Array.from({ length: G * textIds.length }, (_, i) => textIds[i % textIds.length]), [G, textIds.length], 'int32'));
    const embed = (pix: T, ids: T) => tf.concat([vision(W, s.vision, pix), tf.gather(W('model.text_model.embed_tokens.weight'), ids)], 1);
    const dec = own(new Decoder(t, 'model.text_model.', W, G));
    const rollout = async () => {
      let logits = await dec.prefill(tf.tidy(() => embed(pixels, promptIds)));
      const first = logits;
      const tokens: Int32Array[] = [];
      for (let i = 0; i < s.newTokens; i++) {
        tokens.push(argmaxRows(logits, G));
        logits = await dec.step(tokens[i]);
      }
      return { first, completions: Int32Array.from({ length: G * s.newTokens }, (_, k) => tokens[k % s.newTokens][Math.floor(k / s.newTokens)]) };
    };
    const [cos, sin] = ropeInputs(ropeTable(t.rope_theta, hd, L), hd, Int32Array.from({ length: L }, (_, i) => i), 1);
    own(cos);
    own(sin);
    const maskHost = new Float32Array(G * L);
    for (let r = 0; r < G; r++) for (let i = P0 - 1; i < L - 1; i++) maskHost[r * L + i] = 1;
    const mask = own(tf.tensor2d(maskHost, [G, L])), adv = own(tf.tensor2d(h.tensors.advantages, [G, 1]));
    const list = Object.values(vars);
    const names = new Map(Object.entries(vars).map(([n, v]) => [v.name, n]));
    const lossGrads = (completions: Int32Array) => {
      const ids = new Int32Array(G * (L - nImg)), targets = new Int32Array(G * L);
      for (let r = 0; r < G; r++) {
        const seq = [...h.ints.prompt, ...completions.subarray(r * s.newTokens, (r + 1) * s.newTokens)];
        ids.set(seq.slice(nImg), r * (L - nImg));
        for (let i = 0; i + 1 < L; i++) targets[r * L + i] = seq[i + 1];
      }
      const idT = tf.tensor2d(ids, [G, L - nImg], 'int32'), tg = flatTargets(targets, t.vocab_size);
      const { value, grads } = tf.variableGrads(() => {
        const hid = textModel(W, 'model.text_model.', t, embed(pixels, idT), cos, sin);
        const logp = targetLogprobs(lin(hid.reshape([-1, t.hidden_size]), W('model.text_model.embed_tokens.weight')), tg).reshape([G, L]);
        // TRL's clipped ratio with old = current (on-policy), "grpo" aggregation.
        const ratio = tf.exp(logp.sub(stopGradient(logp)));
        const perToken = tf.maximum(ratio.mul(adv).neg(), tf.clipByValue(ratio, 0.8, 1.2).mul(adv).neg());
        return tf.mean(tf.sum(perToken.mul(mask), 1).div(tf.maximum(tf.sum(mask, 1), 1))) as tf.Scalar;
      }, list);
      tf.dispose([idT, tg]);
      return { value, grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [names.get(k)!, g])) as tf.NamedTensorMap };
    };
    const update = async (grads: tf.NamedTensorMap) => {
      const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))));
      const coef = tf.tidy(() => tf.minimum(tf.reciprocal(norm.add(1e-6)), 1));
      opt.apply(grads, coef);
      await host(norm);
      tf.dispose([norm, coef, grads]);
    };
    return {
      run: async () => {
        const { completions } = await rollout();
        const { value, grads } = lossGrads(completions);
        value.dispose();
        await update(grads);
      },
      check: async () => {
        const { first } = await rollout();
        const { value, grads } = lossGrads(h.ints.completions);
        const out: Record<string, Float32Array> = { prefill: first, loss: await host(value) };
        for (const n of grpoChecked(t)) out[n] = await host(grads[n]);
        value.dispose();
        await update(grads);
        return out;
      },
      dispose,
    };
  }
}

/** Batched greedy decoding with a KV cache that grows by concatenation (TF.js kernels take any shape). */
class Decoder {
  private cache?: Cache;
  private table: Float32Array;
  private length = 0;
  constructor(private readonly t: TextSpec, private readonly prefix: string, private readonly W: (n: string) => T, private readonly batch: number) {
    this.table = ropeTable(t.rope_theta, t.hidden_size / t.num_attention_heads, t.max_position_embeddings);
  }

  private forward(emb: T, bias: T | undefined): Promise<Float32Array> {
    const n = emb.shape[1]!;
    const hd = this.t.hidden_size / this.t.num_attention_heads;
    const out: Cache = { k: [], v: [] };
    const logits = tf.tidy(() => {
      const [cos, sin] = ropeInputs(this.table, hd, Int32Array.from({ length: this.batch * n }, (_, i) => this.length + (i % n)), this.batch);
      const hid = textModel(this.W, this.prefix, this.t, emb, cos, sin, { cache: this.cache, bias, out });
      const last = hid.slice([0, n - 1, 0], [-1, 1, -1]).reshape([this.batch, this.t.hidden_size]);
      return lin(last, this.W(`${this.prefix}embed_tokens.weight`));
    });
    emb.dispose();
    this.disposeCache();
    this.cache = out;
    this.length += n;
    return host(logits).finally(() => logits.dispose());
  }

  /** Embedded prompts [B, T, D] -> logits [B·V] of the last position. */
  prefill(emb: T): Promise<Float32Array> {
    this.disposeCache();
    this.length = 0;
    const bias = causalBias(emb.shape[1]!, emb.shape[1]!);
    return this.forward(emb, bias).finally(() => bias.dispose());
  }

  /** One token per row -> logits [B·V]. */
  step(tokens: Int32Array): Promise<Float32Array> {
    const emb = tf.tidy(() => tf.gather(this.W(`${this.prefix}embed_tokens.weight`), tf.tensor2d(tokens, [this.batch, 1], 'int32')));
    return this.forward(emb, undefined);
  }

  private disposeCache(): void {
    if (this.cache) tf.dispose([...this.cache.k, ...this.cache.v]);
    this.cache = undefined;
  }

  dispose(): void {
    this.disposeCache();
  }
}
