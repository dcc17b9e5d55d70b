/**
 * The workloads on this project's engine, written as the lab writes them: engine ops and autograd,
 * the model library (LlamaForCausalLM, Idefics3), DecodeSession for batched decoding, and the GRPO
 * trainer's own pieces (sequenceLogprobs, grpoLoss, applyGradients) for the GRPO step.
 */
import * as E from '../src/engine/index.js';
import { openSafetensorsBuffer, serializeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { createModel, loadWeights, type PolicyModel } from '../src/models/checkpoint.js';
import { parseConfig } from '../src/models/config.js';
import { DecodeSession } from '../src/models/generate.js';
import { grpoLoss } from '../src/rl/grpo.js';
import { applyGradients, sequenceLogprobs, type PackedBatch } from '../src/rl/steps.js';
import type { EngineImpl, MemoryMeter, Prepared, TextSpec, VisionSpec, Workload } from './harness.js';
import { llamaLayer } from './llama-layer.js';
import { hostData, type HostTensor } from './workloads.js';

/** Learning rate of every training row. */
export const LR = 1e-3;
/** AdamW's other settings, the same in every engine (the peers write AdamW out with these). */
export const ADAMW = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 } as const;
const adamW = (params: E.Tensor[]) => new E.AdamW(params, { lr: LR, betas: [ADAMW.beta1, ADAMW.beta2], eps: ADAMW.eps, weightDecay: ADAMW.weightDecay });

/** Hugging Face config.json of a Llama text model (tied embeddings), or of tiny-vlm's Idefics3 when `vision` is given. */
export function hfConfig(t: TextSpec, vision?: VisionSpec): Record<string, unknown> {
  const text = { ...t, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 3, pad_token_id: 2 };
  if (!vision) return { architectures: ['LlamaForCausalLM'], model_type: 'llama', ...text };
  const { scale_factor, image_token_id, ...v } = vision;
  return {
    architectures: ['Idefics3ForConditionalGeneration'], model_type: 'idefics3', image_token_id, scale_factor, tie_word_embeddings: true,
    vocab_size: t.vocab_size, pad_token_id: 2, text_config: { model_type: 'llama', hidden_act: 'silu', ...text },
    vision_config: { model_type: 'idefics3_vision', hidden_act: 'gelu_pytorch_tanh', num_channels: 3, ...v },
  };
}

/** A model of `config` holding exactly the host weights (loaded by name, as a checkpoint would be). */
async function modelWithWeights(be: E.Backend, config: Record<string, unknown>, weights: Map<string, HostTensor>): Promise<PolicyModel> {
  const model = createModel(parseConfig(config), be, 0, true);
  const files = new Map<string, TensorToWrite>([...weights].map(([n, t]) => [n, { dtype: 'F32', shape: t.shape, data: t.data }]));
  await loadWeights(model, await openSafetensorsBuffer(serializeSafetensors(files)));
  return model;
}

const read = async (t: E.Tensor) => Float32Array.from((await t.data()) as Float32Array);

/** The backends our engine runs the benchmark on. */
export type OursBackend = 'webgpu' | 'wasm';

/** Loads our WebAssembly backend (on demand: pages and runs without ours-wasm never load it). */
async function createWasmBackend(opts: { threads?: number }): Promise<E.Backend> {
  const { WasmBackend } = await import('../src/engine/wasm/backend.js');
  return WasmBackend.create(opts);
}

/**
 * Our engine on one backend: a WebGPU device (`ours`) or the WebAssembly backend on the CPU
 * (`ours-wasm`). The workloads are the same code on either: engine ops and the model library over
 * the `Backend` interface.
 */
export class OursEngine implements EngineImpl {
  readonly name: 'ours' | 'ours-wasm';
  version = 'mmsearch-lab engine';
  be!: E.Backend;
  memoryMeter?: MemoryMeter;

  /** @param createBackend makes the backend (for WebGPU on a metered device: navigator.gpu in a page, Dawn in Node). */
  constructor(readonly backend: OursBackend, private readonly createBackend: () => Promise<E.Backend>) {
    this.name = backend === 'wasm' ? 'ours-wasm' : 'ours';
  }

  /** On the WebGPU device `createDevice` requests (and meters). */
  static webgpu(createDevice: () => Promise<{ device: GPUDevice; adapterName: string }>): OursEngine {
    return new OursEngine('webgpu', async () => {
      const { device, adapterName } = await createDevice();
      return new E.WebGPUBackend(device, adapterName);
    });
  }

  /** On the WebAssembly backend with `threads` threads (default: the backend's, one per logical core up to 8 where memory can be shared). */
  static wasm(opts: { threads?: number } = {}): OursEngine {
    return new OursEngine('wasm', () => createWasmBackend(opts));
  }

  async init(): Promise<void> {
    this.be = await this.createBackend();
    if (this.be instanceof E.WebGPUBackend) {
      this.version = `mmsearch-lab engine (${this.be.kernels} kernels, ${this.be.matmulKernel} matmul)`;
      return;
    }
    this.version = `mmsearch-lab engine (${this.be.name}: ${this.be.description})`;
    const be = this.be;
    // The high-water mark of its live tensors' bytes (what the WebGPU path's buffers hold too); the
    // linear memory's size also counts freed blocks kept for reuse, and only grows within a process.
    this.memoryMeter = { measure: 'live-bytes', reset: () => be.resetPeak(), peak: () => be.memory().peakBytes };
  }

  unsupported(w: Workload): string | undefined {
    if (w.spec.kind === 'matmul' && w.spec.dtype === 'f16') return `f16 is storage-only in this engine (no ${this.backend === 'wasm' ? 'f16' : 'shader-f16'} compute kernels)`;
    return undefined;
  }

  trim(): void {
    if (this.be instanceof E.WebGPUBackend) this.be.ctx.trimPool();
  }

  async prepare(w: Workload): Promise<Prepared> {
    const be = this.be;
    const h = hostData(w);
    const s = w.spec;
    const up = (data: Float32Array, shape: number[]) => E.fromArray(be, data, shape).keep();
    const sync = () => be.sync();
    const held: E.Tensor[] = [];
    const keep = <T extends E.Tensor>(t: T) => (held.push(t), t);
    const base = { dispose: () => held.forEach((t) => t.dispose()) };

    if (s.kind === 'matmul') {
      const a = keep(up(h.tensors.a, [s.m, s.k])), b = keep(up(h.tensors.b, [s.n, s.k]));
      return {
        ...base,
        run: async () => (E.scope(() => void E.matmul(a, b, { transB: true })), sync()),
        check: async () => ({ c: await E.scope(async () => read(E.matmul(a, b, { transB: true }))) }),
      };
    }

    if (s.kind === 'attention') {
      const [q, k, v] = (['q', 'k', 'v'] as const).map((n, i) => keep(up(h.tensors[n], [s.b, s.t, i ? s.hkv : s.hq, s.d])));
      const r = keep(up(h.tensors.r, [s.b, s.t, s.hq, s.d]));
      if (!s.backward)
        return {
          ...base,
          run: async () => (E.scope(() => void E.attention(q, k, v, { causal: true })), sync()),
          check: async () => ({ o: await E.scope(async () => read(E.attention(q, k, v, { causal: true }))) }),
        };
      for (const x of [q, k, v]) x.requiresGrad = true;
      const step = () => {
        E.sum(E.mul(E.attention(q, k, v, { causal: true }), r)).backward();
      };
      return {
        ...base,
        run: async () => (E.scope(step), E.zeroGrad([q, k, v]), sync()),
        check: async () => {
          E.scope(step);
          const out = { dq: await read(q.grad!), dk: await read(k.grad!), dv: await read(v.grad!) };
          E.zeroGrad([q, k, v]);
          return out;
        },
      };
    }

    if (s.kind === 'linear-train') {
      const x = keep(up(h.tensors.x, [s.m, s.k]));
      const wt = keep(E.parameter(up(h.tensors.w, [s.k, s.n]), 'w'));
      const opt = adamW([wt]);
      return trainLoop(sync, [wt], opt, () => E.mean(E.square(E.matmul(x, wt))), [['w', wt]], () => (base.dispose(), opt.dispose()));
    }

    if (s.kind === 'lm-train') {
      const t = s.text;
      const cfg = { hidden: t.hidden_size, heads: t.num_attention_heads, kvHeads: t.num_key_value_heads, ffn: t.intermediate_size, eps: t.rms_norm_eps };
      const checked = lmChecked(t);
      if (!s.head) {
        const params = new Map([...h.weights].map(([n, wt]) => [n, keep(E.parameter(up(wt.data, wt.shape), n))]));
        const x = keep(up(h.tensors.x, [s.batch, s.seq, t.hidden_size]));
        const pos = keep(E.fromArray(be, Int32Array.from({ length: s.batch * s.seq }, (_, i) => i % s.seq), [s.batch, s.seq], 'i32').keep());
        const mask = keep(E.ones(be, [s.batch, s.seq], 'i32').keep());
        const table = keep(E.ropeTable(be, t.rope_theta, t.hidden_size / t.num_attention_heads, s.seq).keep());
        const list = [...params.values()];
        const opt = adamW(list);
        const loss = () => E.mean(E.square(llamaLayer(cfg, 0, (n) => params.get(n)!, x, pos, mask, table)));
        return trainLoop(sync, list, opt, loss, checked.map((n) => [n, params.get(n)!]), () => (base.dispose(), opt.dispose()));
      }
      const model = await modelWithWeights(be, hfConfig(t), h.weights);
      const params = model.parameters();
      const byName = new Map(model.namedParameters());
      const ids = h.ints.ids, T = s.seq;
      const inputs = new Int32Array(s.batch * T), targets = new Int32Array(s.batch * T);
      for (let b = 0; b < s.batch; b++) {
        inputs.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
        targets.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
      }
      const opt = adamW(params);
      const loss = () => {
        const hid = model.forward({ ids: inputs, batch: s.batch, length: T });
        const { logprobs } = E.tokenLogprobs(hid.reshape([s.batch * T, t.hidden_size]), model.lmHeadWeight(), E.fromArray(be, targets, [s.batch * T], 'i32'));
        return E.neg(E.mean(logprobs));
      };
      return trainLoop(sync, params, opt, loss, checked.map((n) => [n, byName.get(n)!]), () => (model.dispose(), opt.dispose()));
    }

    if (s.kind === 'decode') {
      const model = await modelWithWeights(be, hfConfig(s.text), h.weights);
      let session: DecodeSession | undefined;
      const prefill = async () => {
        session?.dispose();
        session = new DecodeSession(model, s.batch, s.prompt + s.newTokens);
        return session.append(Array.from({ length: s.batch }, (_, r) => ({ ids: h.ints.prompt.subarray(r * s.prompt, (r + 1) * s.prompt) })));
      };
      const greedy = { temperature: 0, rng: new E.Rng(0) };
      return {
        before: async () => void (await prefill()),
        run: async () => void (await session!.generate({ maxNewTokens: s.newTokens, sampling: greedy })),
        check: async () => {
          const first = Float32Array.from(await prefill());
          // One decoding step on fixed tokens (greedy ones could differ between engines at near-ties).
          const step = await session!.append(Array.from({ length: s.batch }, (_, r) => ({ ids: [h.ints.prompt[r * s.prompt]] })));
          return { prefill: first, step: Float32Array.from(step) };
        },
        dispose: () => (session?.dispose(), model.dispose()),
      };
    }

    if (s.kind === 'sft') {
      const model = await modelWithWeights(be, hfConfig(s.text, s.vision), h.weights);
      const params = model.parameters();
      const byName = new Map(model.namedParameters());
      const opt = adamW(params);
      const size = s.vision.image_size;
      const B = s.batch, T = s.seq;
      const imageTokens = (size / s.vision.patch_size) ** 2 / s.vision.scale_factor ** 2;
      const ids = new Int32Array(B * T), targets = new Int32Array(B * T), completionMask = new Float32Array(B * T);
      for (let r = 0; r < B; r++)
        for (let t = 0; t < T; t++) {
          ids[r * T + t] = h.ints.ids[r * (T + 1) + t];
          targets[r * T + t] = h.ints.ids[r * (T + 1) + t + 1];
          completionMask[r * T + t] = t + 1 >= imageTokens ? 1 : 0;
        }
      const p: PackedBatch = { batch: { ids, batch: B, length: T, mask: new Int32Array(B * T).fill(1) }, targets, completionMask, pixels: h.tensors.pixels, numImages: B };
      const total = completionMask.reduce((a, b) => a + b, 0);
      // As sftStep: mean next-token NLL over the text tokens, one micro-batch.
      const forwardBackward = () => E.scope(() => {
        const { logprobs } = sequenceLogprobs(model, p, 1, size);
        const nll = E.mulScalar(E.sum(E.mul(logprobs, E.fromArray(be, completionMask, logprobs.shape))), -1 / total);
        nll.backward();
        return nll.keep();
      });
      return {
        run: async () => {
          forwardBackward().dispose();
          await applyGradients({ optimizer: opt, params, maxGradNorm: 1, lr: LR });
        },
        check: async () => {
          const loss = forwardBackward();
          const grads = Object.fromEntries(await Promise.all(grpoChecked(s.text).map(async (n) => [n, await read(byName.get(n)!.grad!)] as const)));
          const out = { loss: await read(loss), ...grads };
          loss.dispose();
          await applyGradients({ optimizer: opt, params, maxGradNorm: 1, lr: LR });
          return out;
        },
        dispose: () => (model.dispose(), opt.dispose()),
      };
    }

    // GRPO step of tiny-vlm.
    const model = await modelWithWeights(be, hfConfig(s.text, s.vision), h.weights);
    const params = model.parameters();
    const byName = new Map(model.namedParameters());
    const opt = adamW(params);
    const size = s.vision.image_size;
    const G = s.rollouts, P = s.prompt, L = P + s.newTokens;
    const pixels = Float32Array.from({ length: G * h.tensors.pixels.length }, (_, i) => h.tensors.pixels[i % h.tensors.pixels.length]);
    const image = E.fromArray(be, h.tensors.pixels, [1, 3, size, size]).keep();
    const rollout = async (): Promise<{ logits: Float32Array; tokens: number[][] }> => {
      const session = new DecodeSession(model, G, L);
      try {
        const logits = await session.append(Array.from({ length: G }, () => ({ ids: h.ints.prompt, images: image })));
        const { tokens } = await session.generate({ maxNewTokens: s.newTokens, sampling: { temperature: 0, rng: new E.Rng(0) } });
        return { logits: Float32Array.from(logits), tokens };
      } finally {
        session.dispose();
      }
    };
    const update = async (completions: number[][]) => {
      const ids = new Int32Array(G * L), targets = new Int32Array(G * L), completionMask = new Float32Array(G * L);
      for (let r = 0; r < G; r++) {
        const seq = [...h.ints.prompt, ...completions[r]];
        ids.set(seq, r * L);
        for (let t = 0; t + 1 < L; t++) {
          targets[r * L + t] = seq[t + 1];
          completionMask[r * L + t] = t + 1 >= P ? 1 : 0;
        }
      }
      const p: PackedBatch = { batch: { ids, batch: G, length: L, mask: new Int32Array(G * L).fill(1) }, targets, completionMask, pixels, numImages: G };
      const loss = await E.scope(async () => {
        const { logprobs } = sequenceLogprobs(model, p, 1, size);
        const out = grpoLoss(
          { per_token_logps: logprobs, advantages: h.tensors.advantages, completion_mask: E.fromArray(be, completionMask, [G, L]) },
          { loss_type: 'grpo', beta: 0, epsilon: 0.2 },
        );
        out.loss.backward();
        return out.loss.keep();
      });
      return loss;
    };
    const hostCompletions = Array.from({ length: G }, (_, r) => [...h.ints.completions.subarray(r * s.newTokens, (r + 1) * s.newTokens)]);
    return {
      run: async () => {
        const { tokens } = await rollout();
        (await update(tokens)).dispose();
        await applyGradients({ optimizer: opt, params, maxGradNorm: 1, lr: LR });
      },
      check: async () => {
        const { logits } = await rollout();
        const loss = await update(hostCompletions);
        const grads = Object.fromEntries(await Promise.all(grpoChecked(s.text).map(async (n) => [n, await read(byName.get(n)!.grad!)] as const)));
        const out = { prefill: logits, loss: await read(loss), ...grads };
        loss.dispose();
        await applyGradients({ optimizer: opt, params, maxGradNorm: 1, lr: LR });
        return out;
      },
      dispose: () => (image.dispose(), model.dispose(), opt.dispose()),
    };
  }
}

/** Gradients every engine reports for a training check: first layer's q_proj and norm, last layer's down_proj. */
export function lmChecked(t: TextSpec): string[] {
  return ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.input_layernorm.weight', `model.layers.${t.num_hidden_layers - 1}.mlp.down_proj.weight`];
}

/** Gradients every engine reports for the GRPO check: the vision patch embedding, the connector, the last text layer. */
export function grpoChecked(t: TextSpec): string[] {
  return ['model.vision_model.embeddings.patch_embedding.weight', 'model.connector.modality_projection.proj.weight', `model.text_model.layers.${t.num_hidden_layers - 1}.mlp.down_proj.weight`];
}

/**
 * A training step (loss, backward, AdamW, zero grads) as a Prepared: check() returns the first step's
 * loss and the `checked` gradients, and the second step's loss (which shows the update).
 */
function trainLoop(sync: () => Promise<void>, params: E.Tensor[], opt: E.AdamW, loss: () => E.Tensor, checked: [string, E.Tensor][], dispose: () => void): Prepared {
  const step = () =>
    E.scope(() => {
      const l = loss();
      l.backward();
      opt.step();
      return l.keep();
    });
  return {
    run: async () => {
      step().dispose();
      E.zeroGrad(params);
      await sync();
    },
    check: async () => {
      const l1 = step();
      const grads = Object.fromEntries(await Promise.all(checked.map(async ([n, p]) => [n, await read(p.grad!)] as const)));
      E.zeroGrad(params);
      const l2 = step();
      E.zeroGrad(params);
      const out = { loss1: await read(l1), loss2: await read(l2), ...grads };
      l1.dispose();
      l2.dispose();
      return out;
    },
    dispose,
  };
}
