/**
 * Neural-network layers with Hugging Face module names and weight layouts, each a thin, readable
 * composition of engine ops (forward here; backward comes from the engine's autograd):
 * Linear (+ LoRA), Embedding, RMSNorm, LayerNorm, SwiGLU MLP (LlamaMLP), GELU MLP (SiglipMLP),
 * grouped-query self-attention with RoPE and a KV cache (LlamaAttention), decoder layer
 * (LlamaDecoderLayer). The Idefics3-only modules (SigLIP encoder layer, pixel-shuffle connector) are
 * beside their model, src/models/idefics3.ts.
 */
import * as E from '../engine/index.js';
import { Module } from './module.js';

/** Weight init of HF PreTrainedModel._init_weights for Llama/SigLIP-style models: N(0, std²). */
export interface Init {
  backend: E.Backend;
  rng: E.Rng;
  /** config.initializer_range (HF default 0.02). */
  std: number;
  /** Allocate zeros instead of drawing random weights (a checkpoint will overwrite them). */
  empty?: boolean;
}

/** A weight drawn from N(0, std²), or zeros when the init is `empty`. */
export function initWeight(init: Init, shape: number[], std = init.std): E.Tensor {
  return init.empty ? E.zeros(init.backend, shape) : E.randn(init.backend, shape, init.rng, std);
}

/** Low-rank adapter state of a Linear (Hu et al. 2021; PEFT LoraLayer semantics). */
export interface LoraState {
  r: number;
  alpha: number;
  /** alpha / r (PEFT default, no rsLoRA). */
  scaling: number;
  dropout: number;
  /** false = adapter disabled: the base layer alone (the reference policy for the KL term). */
  enabled: boolean;
  rng: E.Rng;
}

class LoraMatrix extends Module {
  constructor(w: E.Tensor) {
    super();
    this.param('weight', w);
  }
  get weight(): E.Tensor {
    return this.getParameter('weight');
  }
}

/**
 * y = x·Wᵀ + b, W [out, in] (torch.nn.Linear). With LoRA attached:
 * y += scaling · dropout(x)·Aᵀ·Bᵀ, A [r, in] (`lora_A.weight`), B [out, r] (`lora_B.weight`, zero-initialised),
 * base weights frozen. Input [..., in] f32 -> [..., out].
 */
export class Linear extends Module {
  lora?: LoraState;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias: boolean,
    init: Init,
  ) {
    super();
    this.param('weight', initWeight(init, [outFeatures, inFeatures]));
    this.hasBias = bias;
    if (bias) this.param('bias', E.zeros(init.backend, [outFeatures]));
  }

  get weight(): E.Tensor {
    return this.getParameter('weight');
  }
  get bias(): E.Tensor | undefined {
    return this.hasBias ? this.getParameter('bias') : undefined;
  }
  private readonly hasBias: boolean;

  forward(x: E.Tensor): E.Tensor {
    let y = E.matmul(x, this.weight, { transB: true });
    const b = this.bias;
    if (b) y = E.add(y, b);
    const l = this.lora;
    if (l?.enabled) {
      const [a, bm] = this.loraWeights();
      let xin = x;
      if (l.dropout > 0 && E.isGradEnabled()) {
        const keep = Array.from({ length: x.size }, () => (l.rng.next() >= l.dropout ? 1 / (1 - l.dropout) : 0));
        xin = E.mul(x, E.fromArray(x.backend, keep, x.shape));
      }
      y = E.add(y, E.mulScalar(E.matmul(E.matmul(xin, a, { transB: true }), bm, { transB: true }), l.scaling));
    }
    return y;
  }

  private loraWeights(): [E.Tensor, E.Tensor] {
    const c = new Map(this.children());
    return [(c.get('lora_A') as LoraMatrix).weight, (c.get('lora_B') as LoraMatrix).weight];
  }

  /**
   * Attaches a LoRA adapter (PEFT init: A Kaiming-uniform with a = √5, i.e. U(±1/√in); B zeros) and
   * freezes the base weight and bias.
   */
  addLora(r: number, alpha: number, dropout: number, init: Init): void {
    if (this.lora) throw new Error('LoRA is already attached to this Linear');
    if (!(r >= 1 && Number.isInteger(r))) throw new Error(`LoRA rank r must be a positive integer, got ${r}`);
    for (const p of this.parameters()) p.requiresGrad = false;
    const bound = 1 / Math.sqrt(this.inFeatures);
    this.child('lora_A', new LoraMatrix(E.rand(init.backend, [r, this.inFeatures], init.rng, -bound, bound)));
    this.child('lora_B', new LoraMatrix(E.zeros(init.backend, [this.outFeatures, r])));
    this.lora = { r, alpha, scaling: alpha / r, dropout, enabled: true, rng: init.rng };
  }

  /** W ← W + scaling·B·A, then the adapter is removed (PEFT merge_and_unload). */
  mergeLora(): void {
    const l = this.lora;
    if (!l) throw new Error('mergeLora: no LoRA attached');
    const [a, b] = this.loraWeights();
    const merged = E.noGrad(() => E.scope(() => E.add(this.weight, E.mulScalar(E.matmul(b, a), l.scaling)).keep()));
    this.setParameter('weight', merged);
    this.lora = undefined;
    this.dropChildren(['lora_A', 'lora_B']);
    for (const p of this.parameters()) p.requiresGrad = true;
  }
}

/** Token embedding (torch.nn.Embedding): weight [V, D]; ids i32 [...] -> [..., D]. */
export class Embedding extends Module {
  constructor(vocab: number, dim: number, init: Init) {
    super();
    this.param('weight', initWeight(init, [vocab, dim]));
  }
  get weight(): E.Tensor {
    return this.getParameter('weight');
  }
  forward(ids: E.Tensor): E.Tensor {
    return E.embedding(this.weight, ids);
  }
}

/** LlamaRMSNorm: x / sqrt(mean(x²) + eps) · weight, weight [D] initialised to ones. */
export class RMSNorm extends Module {
  constructor(dim: number, readonly eps: number, init: Init) {
    super();
    this.param('weight', E.ones(init.backend, [dim]));
  }
  forward(x: E.Tensor): E.Tensor {
    return E.rmsNorm(x, this.getParameter('weight'), this.eps);
  }
}

/** torch.nn.LayerNorm over the last axis: weight ones, bias zeros. */
export class LayerNorm extends Module {
  constructor(dim: number, readonly eps: number, init: Init) {
    super();
    this.param('weight', E.ones(init.backend, [dim]));
    this.param('bias', E.zeros(init.backend, [dim]));
  }
  forward(x: E.Tensor): E.Tensor {
    return E.layerNorm(x, this.getParameter('weight'), this.getParameter('bias'), this.eps);
  }
}

/** LlamaMLP: down_proj(silu(gate_proj(x)) · up_proj(x)), no biases. */
export class SwiGLUMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(hidden: number, intermediate: number, init: Init) {
    super();
    this.gate_proj = this.child('gate_proj', new Linear(hidden, intermediate, false, init));
    this.up_proj = this.child('up_proj', new Linear(hidden, intermediate, false, init));
    this.down_proj = this.child('down_proj', new Linear(intermediate, hidden, false, init));
  }
  forward(x: E.Tensor): E.Tensor {
    return this.down_proj.forward(E.mul(E.silu(this.gate_proj.forward(x)), this.up_proj.forward(x)));
  }
}

/** SiglipMLP: fc2(gelu_pytorch_tanh(fc1(x))), with biases. */
export class GeluMLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(hidden: number, intermediate: number, init: Init) {
    super();
    this.fc1 = this.child('fc1', new Linear(hidden, intermediate, true, init));
    this.fc2 = this.child('fc2', new Linear(intermediate, hidden, true, init));
  }
  forward(x: E.Tensor): E.Tensor {
    return this.fc2.forward(E.gelu(this.fc1.forward(x)));
  }
}

/**
 * A key/value cache for batched decoding: per layer K and V [B, S_max, Hkv, head_dim] on the device,
 * plus the host-side bookkeeping of which cache slots hold real tokens (padding is masked out) and
 * each row's next RoPE position. Rows advance together; a row's padding (left-padded prompts,
 * finished rows, shorter appended segments) has mask 0 and takes no position.
 */
export class KVCache {
  readonly k: E.Tensor[];
  readonly v: E.Tensor[];
  /** Slots used so far (same for every row). */
  length = 0;
  /** [B·S_max] 1 where the slot holds a real token. */
  readonly mask: Int32Array;
  /** [B] next position of each row (number of real tokens so far). */
  readonly nextPosition: Int32Array;

  constructor(
    backend: E.Backend,
    readonly batch: number,
    readonly maxLength: number,
    layers: number,
    kvHeads: number,
    headDim: number,
  ) {
    const shape = [batch, maxLength, kvHeads, headDim];
    this.k = Array.from({ length: layers }, () => E.zeros(backend, shape).keep());
    this.v = Array.from({ length: layers }, () => E.zeros(backend, shape).keep());
    this.mask = new Int32Array(batch * maxLength);
    this.nextPosition = new Int32Array(batch);
  }

  /**
   * Reserves `t` slots for a block of new tokens; `real` [B·t] marks which are real (1) or padding (0).
   * Returns the block's positions [B·t] (padding gets position 0) and the slot offset where it starts.
   * @throws when the cache would overflow, naming its capacity
   */
  reserve(t: number, real: ArrayLike<number>): { start: number; positions: Int32Array } {
    if (this.length + t > this.maxLength) throw new Error(`KV cache full: ${this.length} + ${t} tokens exceed its capacity of ${this.maxLength}`);
    const start = this.length;
    const positions = new Int32Array(this.batch * t);
    for (let b = 0; b < this.batch; b++)
      for (let i = 0; i < t; i++) {
        const isReal = real[b * t + i] ? 1 : 0;
        this.mask[b * this.maxLength + start + i] = isReal;
        if (isReal) positions[b * t + i] = this.nextPosition[b]++;
      }
    this.length += t;
    return { start, positions };
  }

  dispose(): void {
    [...this.k, ...this.v].forEach((t) => t.dispose());
  }
}

/** What a decoder forward pass needs besides the hidden states. */
export interface AttentionContext {
  /** [B, T] i32 RoPE positions (needed with a rope table). */
  positions?: E.Tensor;
  /** [B, S] i32, 1 = attend (S = T without cache, S_max with one). */
  keyMask?: E.Tensor;
  /** rope table from E.ropeTable (absent for models without RoPE). */
  ropeTable?: E.Tensor;
  cache?: KVCache;
  /** Slot offset of this block in the cache (from KVCache.reserve). */
  cacheStart?: number;
}

export interface AttentionConfig {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** q/k/v biases (Qwen2, SigLIP); o_proj bias (SigLIP out_proj). */
  qkvBias: boolean;
  outBias: boolean;
  causal: boolean;
  /** Name of the output projection: `o_proj` (Llama) or `out_proj` (SigLIP). */
  outName: 'o_proj' | 'out_proj';
}

/**
 * Multi-head self-attention with grouped-query heads (LlamaAttention / Qwen2Attention /
 * SiglipAttention): q/k/v projections, RoPE when a table is given, the engine's fused attention,
 * output projection. With a KV cache the block's K/V are written into the cache at `cacheStart`
 * and attention runs over every slot written so far. x [B, T, hidden] -> [B, T, hidden].
 */
export class SelfAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out: Linear;

  constructor(readonly cfg: AttentionConfig, readonly layerIdx: number, init: Init) {
    super();
    const { hidden, heads, kvHeads, headDim, qkvBias } = cfg;
    this.q_proj = this.child('q_proj', new Linear(hidden, heads * headDim, qkvBias, init));
    this.k_proj = this.child('k_proj', new Linear(hidden, kvHeads * headDim, qkvBias, init));
    this.v_proj = this.child('v_proj', new Linear(hidden, kvHeads * headDim, qkvBias, init));
    this.out = this.child(cfg.outName, new Linear(heads * headDim, hidden, cfg.outBias, init));
  }

  forward(x: E.Tensor, ctx: AttentionContext): E.Tensor {
    const [b, t] = x.shape;
    const { heads, kvHeads, headDim, causal } = this.cfg;
    let q = this.q_proj.forward(x).reshape([b, t, heads, headDim]);
    let k = this.k_proj.forward(x).reshape([b, t, kvHeads, headDim]);
    const v = this.v_proj.forward(x).reshape([b, t, kvHeads, headDim]);
    if (ctx.ropeTable) {
      if (!ctx.positions) throw new Error('self_attn: RoPE needs positions');
      q = E.rope(q, ctx.positions, ctx.ropeTable);
      k = E.rope(k, ctx.positions, ctx.ropeTable);
    }
    let o: E.Tensor;
    if (ctx.cache) {
      const start = ctx.cacheStart ?? 0;
      E.writeSlice(ctx.cache.k[this.layerIdx], k, 1, start);
      E.writeSlice(ctx.cache.v[this.layerIdx], v, 1, start);
      o = E.attention(q, ctx.cache.k[this.layerIdx], ctx.cache.v[this.layerIdx], { causal, keyMask: ctx.keyMask, kvLength: start + t });
    } else {
      o = E.attention(q, k, v, { causal, keyMask: ctx.keyMask });
    }
    return this.out.forward(o.reshape([b, t, heads * headDim]));
  }
}

export interface DecoderConfig extends AttentionConfig {
  intermediate: number;
  rmsNormEps: number;
}

/** LlamaDecoderLayer: pre-norm attention and SwiGLU MLP with residuals. */
export class DecoderLayer extends Module {
  readonly input_layernorm: RMSNorm;
  readonly self_attn: SelfAttention;
  readonly post_attention_layernorm: RMSNorm;
  readonly mlp: SwiGLUMLP;
  constructor(cfg: DecoderConfig, layerIdx: number, init: Init) {
    super();
    this.input_layernorm = this.child('input_layernorm', new RMSNorm(cfg.hidden, cfg.rmsNormEps, init));
    this.self_attn = this.child('self_attn', new SelfAttention(cfg, layerIdx, init));
    this.post_attention_layernorm = this.child('post_attention_layernorm', new RMSNorm(cfg.hidden, cfg.rmsNormEps, init));
    this.mlp = this.child('mlp', new SwiGLUMLP(cfg.hidden, cfg.intermediate, init));
  }
  forward(h: E.Tensor, ctx: AttentionContext): E.Tensor {
    const a = E.add(h, this.self_attn.forward(this.input_layernorm.forward(h), ctx));
    return E.add(a, this.mlp.forward(this.post_attention_layernorm.forward(a)));
  }
}
