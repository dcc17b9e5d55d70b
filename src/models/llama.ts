/**
 * Llama-family causal language models (transformers' LlamaForCausalLM for SmolLM2, Qwen2ForCausalLM
 * with q/k/v biases) in one readable file: token embedding -> N decoder layers (RMSNorm, GQA
 * attention with RoPE, SwiGLU MLP) -> final RMSNorm -> LM head (tied to the embedding when
 * tie_word_embeddings). Parameter names are transformers' (`model.layers.0.self_attn.q_proj.weight`).
 */
import * as E from '../engine/index.js';
import { DecoderLayer, Embedding, KVCache, Linear, RMSNorm, type AttentionContext, type Init } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { headDim, kvHeads, type CausalLMConfig, type TextConfig } from './config.js';

/**
 * A batch of token ids on the host: ids [batch·length] row-major; mask [batch·length] with 1 for real
 * tokens and 0 for padding (default all real). Padding may sit anywhere; positions count real tokens only.
 */
export interface TokenBatch {
  ids: Int32Array;
  batch: number;
  length: number;
  mask?: Int32Array;
}

/** Checks a TokenBatch's sizes and token ids. @throws naming the row and position of a bad id */
export function checkBatch(b: TokenBatch, vocab: number): void {
  if (b.ids.length !== b.batch * b.length) throw new Error(`token batch: ${b.ids.length} ids for ${b.batch} rows of ${b.length}`);
  if (b.mask && b.mask.length !== b.ids.length) throw new Error(`token batch: mask has ${b.mask.length} entries for ${b.ids.length} ids`);
  for (let i = 0; i < b.ids.length; i++)
    if (b.ids[i] < 0 || b.ids[i] >= vocab) throw new Error(`token batch: id ${b.ids[i]} at row ${Math.floor(i / b.length)}, position ${i % b.length} is outside the vocabulary [0, ${vocab})`);
}

/**
 * The attention context of a forward pass: positions from the padding mask (cumulative count of real
 * tokens, as transformers derives position_ids from attention_mask), or from the cache's bookkeeping
 * when decoding with a KV cache (the block is then appended to the cache).
 */
export function attentionContext(backend: E.Backend, b: TokenBatch, ropeTable: E.Tensor, cache?: KVCache): AttentionContext {
  const real = b.mask ?? new Int32Array(b.ids.length).fill(1);
  if (cache) {
    if (cache.batch !== b.batch) throw new Error(`KV cache has ${cache.batch} rows, the batch ${b.batch}`);
    const { start, positions } = cache.reserve(b.length, real);
    return {
      positions: E.fromArray(backend, positions, [b.batch, b.length], 'i32'),
      keyMask: E.fromArray(backend, cache.mask, [b.batch, cache.maxLength], 'i32'),
      ropeTable,
      cache,
      cacheStart: start,
    };
  }
  const positions = new Int32Array(b.ids.length);
  for (let r = 0; r < b.batch; r++) {
    let p = 0;
    for (let i = 0; i < b.length; i++) if (real[r * b.length + i]) positions[r * b.length + i] = p++;
  }
  return {
    positions: E.fromArray(backend, positions, [b.batch, b.length], 'i32'),
    keyMask: b.mask ? E.fromArray(backend, b.mask, [b.batch, b.length], 'i32') : undefined,
    ropeTable,
  };
}

/** LlamaModel: embed_tokens, layers, norm. */
export class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<DecoderLayer>;
  readonly norm: RMSNorm;

  constructor(readonly cfg: TextConfig, init: Init) {
    super();
    this.embed_tokens = this.child('embed_tokens', new Embedding(cfg.vocab_size, cfg.hidden_size, init));
    const layerCfg = {
      hidden: cfg.hidden_size, heads: cfg.num_attention_heads, kvHeads: kvHeads(cfg), headDim: headDim(cfg),
      qkvBias: cfg.qkv_bias, outBias: false, causal: true, outName: 'o_proj' as const,
      intermediate: cfg.intermediate_size, rmsNormEps: cfg.rms_norm_eps,
    };
    this.layers = this.child('layers', new ModuleList(Array.from({ length: cfg.num_hidden_layers }, (_, i) => new DecoderLayer(layerCfg, i, init))));
    this.norm = this.child('norm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init));
  }

  /** Input embeddings [B, T, D] -> final hidden states [B, T, D] (after the final norm). */
  forwardEmbeds(h: E.Tensor, ctx: AttentionContext): E.Tensor {
    for (const layer of this.layers.items) h = layer.forward(h, ctx);
    return this.norm.forward(h);
  }

  makeCache(batch: number, maxLength: number): KVCache {
    return new KVCache(this.embed_tokens.weight.backend, batch, maxLength, this.cfg.num_hidden_layers, kvHeads(this.cfg), headDim(this.cfg));
  }
}

/** What the rollout, training and evaluation code needs from any policy model. */
export interface CausalModel extends Module {
  readonly text: TextConfig;
  readonly backend: E.Backend;
  /** Final hidden states [B, T, D] for a token batch (images merged in for VLMs); appends to `cache` when given. */
  forward(batch: TokenBatch, cache?: KVCache, images?: E.Tensor): E.Tensor;
  /** The LM head weight [V, D] (the embedding when tied). */
  lmHeadWeight(): E.Tensor;
  makeCache(batch: number, maxLength: number): KVCache;
}

/** Logits [B, V] of the last position of each row of hidden [B, T, D]. */
export function lastLogits(model: CausalModel, hidden: E.Tensor): E.Tensor {
  const [b, t, d] = hidden.shape;
  return E.matmul(E.narrow(hidden, 1, t - 1, 1).reshape([b, d]), model.lmHeadWeight(), { transB: true });
}

/** The default initializer of a fresh model: N(0, initializer_range²), seeded. */
export function initFor(backend: E.Backend, seed: number, std: number): Init {
  return { backend, rng: new E.Rng(seed), std };
}

/** LlamaForCausalLM / Qwen2ForCausalLM: `model` (LlamaModel) and `lm_head` unless tied. */
export class LlamaForCausalLM extends Module implements CausalModel {
  readonly model: LlamaModel;
  readonly lm_head?: Linear;
  readonly text: TextConfig;
  readonly ropeTable: E.Tensor;

  /** Fresh weights from `seed`, or zeros with `empty` (to be overwritten by loadWeights). */
  constructor(readonly config: CausalLMConfig & { raw: Record<string, unknown> }, readonly backend: E.Backend, seed = 0, empty = false) {
    super();
    this.text = config.text;
    const init = { ...initFor(backend, seed, config.text.initializer_range), empty };
    this.model = this.child('model', new LlamaModel(config.text, init));
    if (!config.text.tie_word_embeddings) this.lm_head = this.child('lm_head', new Linear(config.text.hidden_size, config.text.vocab_size, false, init));
    this.ropeTable = E.ropeTable(backend, config.text.rope_theta, headDim(config.text), config.text.max_position_embeddings).keep();
  }

  forward(batch: TokenBatch, cache?: KVCache, images?: E.Tensor): E.Tensor {
    if (images) throw new Error(`${this.config.architecture} takes no images`);
    checkBatch(batch, this.text.vocab_size);
    const ctx = attentionContext(this.backend, batch, this.ropeTable, cache);
    const ids = E.fromArray(this.backend, batch.ids, [batch.batch, batch.length], 'i32');
    return this.model.forwardEmbeds(this.model.embed_tokens.forward(ids), ctx);
  }

  lmHeadWeight(): E.Tensor {
    return this.lm_head ? this.lm_head.weight : this.model.embed_tokens.weight;
  }

  makeCache(batch: number, maxLength: number): KVCache {
    return this.model.makeCache(batch, maxLength);
  }

  override dispose(): void {
    super.dispose();
    this.ropeTable.dispose();
  }
}
