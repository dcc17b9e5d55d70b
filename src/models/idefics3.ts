/**
 * Idefics3ForConditionalGeneration (SmolVLM-256M/500M-Instruct), and the lab's built-in tiny-vlm,
 * which is the same architecture at a few million parameters:
 *   pixels [N, 3, H, W] -> SigLIP vision transformer (Conv2d patch embedding as patchify + matmul,
 *   learned absolute position embeddings, pre-LayerNorm encoder layers, post_layernorm)
 *   -> pixel-shuffle connector (scale_factor², bias-free linear projection)
 *   -> image features replace the `<image>` token embeddings, in order -> Llama text decoder -> lm_head.
 * Parameter names are transformers' (`model.vision_model...`, `model.connector...`,
 * `model.text_model...`, `lm_head`). Image splitting is not used: one global image per `<image>` run.
 */
import * as E from '../engine/index.js';
import { GeluMLP, initWeight, KVCache, LayerNorm, Linear, SelfAttention, type Init } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { headDim, imageSeqLen, type TextConfig, type VisionConfig, type VLMConfig } from './config.js';
import { attentionContext, checkBatch, initFor, LlamaModel, type CausalModel, type TokenBatch } from './llama.js';

/** Conv2d(num_channels, hidden, kernel=stride=patch) as patchify + x·Wᵀ + b; weight [hidden, C, p, p]. */
class PatchEmbedding extends Module {
  constructor(readonly channels: number, readonly hidden: number, readonly patch: number, init: Init) {
    super();
    this.param('weight', initWeight(init, [hidden, channels, patch, patch]));
    this.param('bias', E.zeros(init.backend, [hidden]));
  }
  /** pixels [N, C, H, W] -> [N, patches, hidden] */
  forward(pixels: E.Tensor): E.Tensor {
    const w = this.getParameter('weight').reshape([this.hidden, this.channels * this.patch * this.patch]);
    return E.add(E.matmul(E.patchify(pixels, this.patch), w, { transB: true }), this.getParameter('bias'));
  }
}

/** SiglipVisionEmbeddings: patch_embedding + position_embedding (one learned vector per patch). */
class VisionEmbeddings extends Module {
  readonly patch_embedding: PatchEmbedding;
  readonly position_embedding: PositionTable;
  constructor(v: VisionConfig, init: Init) {
    super();
    this.patch_embedding = this.child('patch_embedding', new PatchEmbedding(v.num_channels, v.hidden_size, v.patch_size, init));
    this.position_embedding = this.child('position_embedding', new PositionTable((v.image_size / v.patch_size) ** 2, v.hidden_size, init));
  }
  forward(pixels: E.Tensor): E.Tensor {
    return E.add(this.patch_embedding.forward(pixels), this.position_embedding.getParameter('weight'));
  }
}

class PositionTable extends Module {
  constructor(n: number, dim: number, init: Init) {
    super();
    this.param('weight', initWeight(init, [n, dim]));
  }
}

class VisionEncoder extends Module {
  readonly layers: ModuleList<VisionEncoderLayer>;
  constructor(v: VisionConfig, init: Init) {
    super();
    const cfg = { hidden: v.hidden_size, heads: v.num_attention_heads, intermediate: v.intermediate_size, layerNormEps: v.layer_norm_eps };
    this.layers = this.child('layers', new ModuleList(Array.from({ length: v.num_hidden_layers }, () => new VisionEncoderLayer(cfg, init))));
  }
}

/** Idefics3VisionTransformer: embeddings, encoder, post_layernorm. pixels [N, C, H, W] -> [N, patches, hidden]. */
export class VisionTransformer extends Module {
  readonly embeddings: VisionEmbeddings;
  readonly encoder: VisionEncoder;
  readonly post_layernorm: LayerNorm;
  constructor(readonly v: VisionConfig, init: Init) {
    super();
    this.embeddings = this.child('embeddings', new VisionEmbeddings(v, init));
    this.encoder = this.child('encoder', new VisionEncoder(v, init));
    this.post_layernorm = this.child('post_layernorm', new LayerNorm(v.hidden_size, v.layer_norm_eps, init));
  }
  forward(pixels: E.Tensor): E.Tensor {
    const [, c, h, w] = pixels.shape;
    if (c !== this.v.num_channels || h !== this.v.image_size || w !== this.v.image_size)
      throw new Error(`vision_model: expected pixel_values [N, ${this.v.num_channels}, ${this.v.image_size}, ${this.v.image_size}], got [${pixels.shape.join(', ')}]`);
    let x = this.embeddings.forward(pixels);
    for (const layer of this.encoder.layers.items) x = layer.forward(x);
    return this.post_layernorm.forward(x);
  }
}

/** Idefics3Model: vision_model, connector, text_model. */
class Idefics3Model extends Module {
  readonly vision_model: VisionTransformer;
  readonly connector: PixelShuffleConnector;
  readonly text_model: LlamaModel;
  constructor(c: VLMConfig, init: Init, visionInit: Init) {
    super();
    this.vision_model = this.child('vision_model', new VisionTransformer(c.vision, visionInit));
    this.connector = this.child('connector', new PixelShuffleConnector(c.vision.hidden_size, c.scale_factor, c.text.hidden_size, init));
    this.text_model = this.child('text_model', new LlamaModel(c.text, init));
  }
}

/**
 * transformers' Idefics3ForConditionalGeneration (modeling_idefics3.py: SmolVLM-256M/500M-Instruct, and
 * the lab's tiny-vlm): a SigLIP vision transformer, the pixel-shuffle connector, and a Llama text
 * decoder whose `<image>` token embeddings are replaced by the image features, then the LM head
 * (tied to the embeddings when the config says so). Parameter names are transformers'.
 *
 * Shapes: pixel_values [N, 3, image_size, image_size] f32 (normalised as the lab's image processor
 * does); token ids [B, T] i32; each image gives `imageSeqLen` = (image_size / patch_size)² /
 * scale_factor² features; hidden states [B, T, text hidden_size] f32.
 * Errors: token ids out of the vocabulary; a count of `<image>` tokens that does not match the images.
 */
export class Idefics3ForConditionalGeneration extends Module implements CausalModel {
  readonly model: Idefics3Model;
  readonly lm_head?: Linear;
  readonly text: TextConfig;
  readonly ropeTable: E.Tensor;
  /** Image tokens each image contributes: (image_size/patch_size)² / scale_factor². */
  readonly imageSeqLen: number;

  /** Fresh weights from `seed`, or zeros with `empty` (to be overwritten by loadWeights). */
  constructor(readonly config: VLMConfig, readonly backend: E.Backend, seed = 0, empty = false) {
    super();
    this.text = config.text;
    const init = { ...initFor(backend, seed, config.text.initializer_range), empty };
    this.model = this.child('model', new Idefics3Model(config, init, { ...init, std: config.vision.initializer_range }));
    if (!config.text.tie_word_embeddings) this.lm_head = this.child('lm_head', new Linear(config.text.hidden_size, config.text.vocab_size, false, init));
    this.ropeTable = E.ropeTable(backend, config.text.rope_theta, headDim(config.text), config.text.max_position_embeddings).keep();
    this.imageSeqLen = imageSeqLen(config);
  }

  /** Image features [N·imageSeqLen, text hidden] of pixel_values [N, 3, H, W]. */
  imageFeatures(pixels: E.Tensor): E.Tensor {
    const f = this.model.connector.forward(this.model.vision_model.forward(pixels));
    return f.reshape([f.shape[0] * f.shape[1], f.shape[2]]);
  }

  /**
   * Final hidden states [B, T, D]. `images` [N, 3, H, W] are the pixel_values of the `<image>` runs in
   * the batch, in row-major order of their tokens; their features replace the `<image>` token embeddings.
   * @throws when the number of `<image>` tokens differs from N·imageSeqLen
   */
  forward(batch: TokenBatch, cache?: KVCache, images?: E.Tensor): E.Tensor {
    checkBatch(batch, this.text.vocab_size);
    const ctx = attentionContext(this.backend, batch, this.ropeTable, cache);
    const n = batch.batch * batch.length;
    const ids = E.fromArray(this.backend, batch.ids, [n], 'i32');
    let h = this.model.text_model.embed_tokens.forward(ids); // [B·T, D]
    const imageRows: number[] = [];
    batch.ids.forEach((id, i) => id === this.config.image_token_id && (!batch.mask || batch.mask[i]) && imageRows.push(i));
    const expected = images ? images.shape[0] * this.imageSeqLen : 0;
    if (imageRows.length !== expected)
      throw new Error(`the batch has ${imageRows.length} <image> tokens but ${images ? images.shape[0] : 0} image(s) give ${expected} features (${this.imageSeqLen} per image)`);
    if (images) {
      // Rows of [embeddings; features] picked so that each <image> row takes the next feature row.
      const index = Int32Array.from({ length: n }, (_, i) => i);
      imageRows.forEach((row, j) => (index[row] = n + j));
      h = E.indexSelect(E.concat([h, this.imageFeatures(images)], 0), 0, E.fromArray(this.backend, index, [n], 'i32'));
    }
    return this.model.text_model.forwardEmbeds(h.reshape([batch.batch, batch.length, this.text.hidden_size]), ctx);
  }

  lmHeadWeight(): E.Tensor {
    return this.lm_head ? this.lm_head.weight : this.model.text_model.embed_tokens.weight;
  }

  makeCache(batch: number, maxLength: number): KVCache {
    return this.model.text_model.makeCache(batch, maxLength);
  }

  override dispose(): void {
    super.dispose();
    this.ropeTable.dispose();
  }
}

export interface VisionLayerConfig {
  hidden: number;
  heads: number;
  intermediate: number;
  layerNormEps: number;
}

/** SiglipEncoderLayer: pre-LayerNorm bidirectional attention and GELU MLP with residuals, biases everywhere. */
export class VisionEncoderLayer extends Module {
  readonly layer_norm1: LayerNorm;
  readonly self_attn: SelfAttention;
  readonly layer_norm2: LayerNorm;
  readonly mlp: GeluMLP;
  constructor(cfg: VisionLayerConfig, init: Init) {
    super();
    const headDim = cfg.hidden / cfg.heads;
    this.layer_norm1 = this.child('layer_norm1', new LayerNorm(cfg.hidden, cfg.layerNormEps, init));
    this.self_attn = this.child('self_attn', new SelfAttention({ hidden: cfg.hidden, heads: cfg.heads, kvHeads: cfg.heads, headDim, qkvBias: true, outBias: true, causal: false, outName: 'out_proj' }, 0, init));
    this.layer_norm2 = this.child('layer_norm2', new LayerNorm(cfg.hidden, cfg.layerNormEps, init));
    this.mlp = this.child('mlp', new GeluMLP(cfg.hidden, cfg.intermediate, init));
  }
  /** h [B, N, hidden] (SigLIP: learned absolute position embeddings, so no RoPE here). */
  forward(h: E.Tensor): E.Tensor {
    const a = E.add(h, this.self_attn.forward(this.layer_norm1.forward(h), {}));
    return E.add(a, this.mlp.forward(this.layer_norm2.forward(a)));
  }
}

/**
 * Idefics3Connector: pixel shuffle (space-to-depth) of the patch grid by `scale`, then a bias-free
 * linear projection (`modality_projection.proj`). x [B, N, C] with N = side² -> [B, N/scale², C·scale²]
 * -> [B, N/scale², textHidden]. The shuffle follows Idefics3Connector.pixel_shuffle: the grid is
 * viewed [B, side, side/scale, C·scale], transposed, and regrouped so each output token holds a
 * scale×scale block of neighbouring patches.
 */
export class PixelShuffleConnector extends Module {
  readonly modality_projection: ProjectionHolder;
  constructor(readonly visionHidden: number, readonly scale: number, textHidden: number, init: Init) {
    super();
    this.modality_projection = this.child('modality_projection', new ProjectionHolder(visionHidden * scale * scale, textHidden, init));
  }
  forward(x: E.Tensor): E.Tensor {
    return this.modality_projection.proj.forward(pixelShuffle(x, this.scale));
  }
}

class ProjectionHolder extends Module {
  readonly proj: Linear;
  constructor(inF: number, outF: number, init: Init) {
    super();
    this.proj = this.child('proj', new Linear(inF, outF, false, init));
  }
}

/** Idefics3Connector.pixel_shuffle: [B, N, C] -> [B, N/s², C·s²] (N a square, side divisible by s). */
export function pixelShuffle(x: E.Tensor, s: number): E.Tensor {
  const [b, n, c] = x.shape;
  const side = Math.round(Math.sqrt(n));
  if (side * side !== n || side % s) throw new Error(`pixelShuffle: ${n} patches do not form a square grid divisible by scale ${s}`);
  let y = x.reshape([b, side, side / s, c * s]);
  y = E.permute(y, [0, 2, 1, 3]); // [b, side/s, side, c·s]
  y = y.reshape([b, side / s, side / s, c * s * s]);
  y = E.permute(y, [0, 2, 1, 3]); // [b, side/s, side/s, c·s²]
  return y.reshape([b, n / (s * s), c * s * s]);
}
