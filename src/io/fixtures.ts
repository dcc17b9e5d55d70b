/**
 * Tiny random-weight checkpoints in the exact tensor names, shape conventions and config.json fields
 * of three Hugging Face architectures, for tests without hub access. Deterministic: every tensor is
 * drawn from a generator seeded by (seed, tensor name), so the bytes depend only on the seed.
 *
 * Names and shapes follow transformers' modeling code (weights of nn.Linear are [out, in]):
 *  - LlamaForCausalLM (modeling_llama.py; SmolLM2 config fields)
 *  - Qwen2ForCausalLM (modeling_qwen2.py: q/k/v_proj carry biases, o_proj does not)
 *  - Idefics3ForConditionalGeneration (modeling_idefics3.py; SmolVLM config fields): SigLIP-style
 *    vision tower with biases, pixel-shuffle connector `modality_projection.proj` without bias,
 *    Llama text model under `model.text_model`, untied `lm_head`.
 * Browser-safe (no Node imports): scripts/make-fixtures.ts writes them to disk.
 */
import { Rng } from '../engine/random.js';
import { f32ToBf16, f32ToF16, numel } from '../engine/dtype.js';
import { DTYPE_BYTES, serializeSafetensors, type Dtype, type TensorToWrite } from './safetensors.js';

/** Text-decoder fields of a Llama/Qwen2 config.json. */
export interface DecoderConfig {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  num_hidden_layers: number;
  vocab_size: number;
  tie_word_embeddings: boolean;
  head_dim?: number;
}

/** Vision-tower fields of an Idefics3 vision_config. */
export interface VisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
}

/** A tensor's name, shape and how to initialise it. */
export interface TensorSpec {
  name: string;
  shape: number[];
  /** normal(0, std) around `mean` (1 for norm weights so a wrong mapping shows). */
  init: { mean: number; std: number };
}

const linear = (name: string, out: number, inp: number): TensorSpec => ({ name, shape: [out, inp], init: { mean: 0, std: 1 / Math.sqrt(inp) } });
const bias = (name: string, n: number): TensorSpec => ({ name, shape: [n], init: { mean: 0, std: 0.1 } });
const norm = (name: string, n: number): TensorSpec => ({ name, shape: [n], init: { mean: 1, std: 0.1 } });
const embedding = (name: string, n: number, d: number): TensorSpec => ({ name, shape: [n, d], init: { mean: 0, std: 0.5 } });

/**
 * Tensors of a Llama-family decoder under `prefix` ("model." for *ForCausalLM, "model.text_model."
 * for Idefics3), without lm_head. Shapes: q_proj [heads*head_dim, hidden], k/v_proj
 * [kv_heads*head_dim, hidden], o_proj [hidden, heads*head_dim], gate/up [inter, hidden],
 * down [hidden, inter], norms [hidden], embed_tokens [vocab, hidden]. `qkvBias` adds q/k/v biases (Qwen2).
 */
export function decoderTensors(c: DecoderConfig, prefix: string, qkvBias: boolean): TensorSpec[] {
  const hd = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  const q = c.num_attention_heads * hd;
  const kv = c.num_key_value_heads * hd;
  const t: TensorSpec[] = [embedding(`${prefix}embed_tokens.weight`, c.vocab_size, c.hidden_size)];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `${prefix}layers.${i}.`;
    t.push(
      linear(`${l}self_attn.q_proj.weight`, q, c.hidden_size),
      linear(`${l}self_attn.k_proj.weight`, kv, c.hidden_size),
      linear(`${l}self_attn.v_proj.weight`, kv, c.hidden_size),
    );
    if (qkvBias) t.push(bias(`${l}self_attn.q_proj.bias`, q), bias(`${l}self_attn.k_proj.bias`, kv), bias(`${l}self_attn.v_proj.bias`, kv));
    t.push(
      linear(`${l}self_attn.o_proj.weight`, c.hidden_size, q),
      linear(`${l}mlp.gate_proj.weight`, c.intermediate_size, c.hidden_size),
      linear(`${l}mlp.up_proj.weight`, c.intermediate_size, c.hidden_size),
      linear(`${l}mlp.down_proj.weight`, c.hidden_size, c.intermediate_size),
      norm(`${l}input_layernorm.weight`, c.hidden_size),
      norm(`${l}post_attention_layernorm.weight`, c.hidden_size),
    );
  }
  t.push(norm(`${prefix}norm.weight`, c.hidden_size));
  return t;
}

/** Tensors of LlamaForCausalLM / Qwen2ForCausalLM: decoder under "model." plus lm_head.weight [vocab, hidden] when untied. */
export function causalLmTensors(c: DecoderConfig, qkvBias: boolean): TensorSpec[] {
  const t = decoderTensors(c, 'model.', qkvBias);
  if (!c.tie_word_embeddings) t.push(linear('lm_head.weight', c.vocab_size, c.hidden_size));
  return t;
}

/**
 * Tensors of Idefics3ForConditionalGeneration. Vision: patch_embedding.weight [hidden, channels, p, p]
 * (Conv2d) and .bias, position_embedding.weight [(image_size/p)^2, hidden], per layer q/k/v/out_proj
 * (weight+bias), layer_norm1/2 (weight+bias), mlp.fc1 [inter, hidden], mlp.fc2 [hidden, inter] (with
 * biases), post_layernorm; connector proj [text_hidden, vision_hidden*scale^2]; text decoder; lm_head.
 */
export function idefics3Tensors(v: VisionConfig, text: DecoderConfig, scaleFactor: number): TensorSpec[] {
  const p = 'model.vision_model.';
  const h = v.hidden_size;
  const t: TensorSpec[] = [
    { name: `${p}embeddings.patch_embedding.weight`, shape: [h, v.num_channels, v.patch_size, v.patch_size], init: { mean: 0, std: 1 / Math.sqrt(v.num_channels * v.patch_size ** 2) } },
    bias(`${p}embeddings.patch_embedding.bias`, h),
    embedding(`${p}embeddings.position_embedding.weight`, (v.image_size / v.patch_size) ** 2, h),
  ];
  for (let i = 0; i < v.num_hidden_layers; i++) {
    const l = `${p}encoder.layers.${i}.`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.push(linear(`${l}self_attn.${proj}.weight`, h, h), bias(`${l}self_attn.${proj}.bias`, h));
    t.push(
      norm(`${l}layer_norm1.weight`, h),
      bias(`${l}layer_norm1.bias`, h),
      linear(`${l}mlp.fc1.weight`, v.intermediate_size, h),
      bias(`${l}mlp.fc1.bias`, v.intermediate_size),
      linear(`${l}mlp.fc2.weight`, h, v.intermediate_size),
      bias(`${l}mlp.fc2.bias`, h),
      norm(`${l}layer_norm2.weight`, h),
      bias(`${l}layer_norm2.bias`, h),
    );
  }
  t.push(norm(`${p}post_layernorm.weight`, h), bias(`${p}post_layernorm.bias`, h));
  t.push(linear('model.connector.modality_projection.proj.weight', text.hidden_size, h * scaleFactor ** 2));
  t.push(...decoderTensors(text, 'model.text_model.', false));
  t.push(linear('lm_head.weight', text.vocab_size, text.hidden_size));
  return t;
}

/** Values of one tensor: mean + std * N(0,1) by Box-Muller, seeded by (seed, name). */
export function initTensor(spec: TensorSpec, seed: number): Float32Array {
  const rng = Rng.stream(seed, spec.name);
  const n = numel(spec.shape);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Rng.normal's Box-Muller, written out to keep the fixtures' float rounding (std · √… · cos …).
    const u = 1 - rng.next();
    out[i] = spec.init.mean + spec.init.std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  }
  return out;
}

function encode(values: Float32Array, dtype: Dtype): ArrayBufferView {
  if (dtype === 'F32') return values;
  if (dtype === 'BF16') return f32ToBf16(values);
  if (dtype === 'F16') return f32ToF16(values);
  throw new Error(`fixtures: unsupported dtype ${dtype}`);
}

/** A fixture repository: hub repo id and its files (path within the repo -> bytes). */
export interface FixtureRepo {
  repo: string;
  architecture: 'LlamaForCausalLM' | 'Qwen2ForCausalLM' | 'Idefics3ForConditionalGeneration';
  dtype: Dtype;
  config: Record<string, unknown>;
  tensors: TensorSpec[];
  files: Map<string, Uint8Array>;
}

const TORCH_DTYPE: Partial<Record<Dtype, string>> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

/** Tiny SmolLM2-style Llama config (SmolLM2-135M's fields, sizes shrunk). */
export function tinyLlamaConfig(tie: boolean): Record<string, unknown> & DecoderConfig {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: 32,
    initializer_range: 0.02,
    intermediate_size: 64,
    max_position_embeddings: 256,
    mlp_bias: false,
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 2,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 100000.0,
    tie_word_embeddings: tie,
    use_cache: true,
    vocab_size: 96,
  };
}

/** Tiny Qwen2 config (Qwen2.5-0.5B's fields, sizes shrunk; rope_theta 1e6, tied embeddings). */
export function tinyQwen2Config(): Record<string, unknown> & DecoderConfig {
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: 32,
    initializer_range: 0.02,
    intermediate_size: 48,
    max_position_embeddings: 256,
    max_window_layers: 2,
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000.0,
    sliding_window: 256,
    tie_word_embeddings: true,
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 96,
  };
}

/** Tiny SmolVLM (Idefics3) config: 16x16 images, 4x4 patches -> 16 patches -> scale 2 -> 4 image tokens. */
export function tinyIdefics3Config(): Record<string, unknown> & { vision_config: VisionConfig; text_config: DecoderConfig; scale_factor: number } {
  const { architectures: _, ...text } = tinyLlamaConfig(false);
  return {
    architectures: ['Idefics3ForConditionalGeneration'],
    model_type: 'idefics3',
    image_token_id: 95,
    scale_factor: 2,
    tie_word_embeddings: false,
    use_cache: true,
    vocab_size: 96,
    vision_config: {
      model_type: 'idefics3_vision',
      hidden_act: 'gelu_pytorch_tanh',
      hidden_size: 16,
      image_size: 16,
      intermediate_size: 32,
      layer_norm_eps: 1e-6,
      num_attention_heads: 2,
      num_channels: 3,
      num_hidden_layers: 2,
      patch_size: 4,
    } as VisionConfig,
    text_config: text,
  };
}

function repoFiles(
  config: Record<string, unknown>,
  dtype: Dtype,
  tensors: TensorSpec[],
  seed: number,
  shards: number,
): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const json = (o: unknown) => new TextEncoder().encode(JSON.stringify(o, null, 2) + '\n');
  files.set('config.json', json({ ...config, torch_dtype: TORCH_DTYPE[dtype] }));
  const toWrite = (specs: TensorSpec[]) =>
    new Map<string, TensorToWrite>(specs.map((s) => [s.name, { dtype, shape: s.shape, data: encode(initTensor(s, seed), dtype) }]));
  // transformers' save_pretrained writes {"format": "pt"} as __metadata__.
  const meta = { format: 'pt' };
  if (shards === 1) {
    files.set('model.safetensors', serializeSafetensors(toWrite(tensors), meta));
    return files;
  }
  // Contiguous split by tensor order, as save_pretrained's shard planner does (by size budget).
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  const per = Math.ceil(tensors.length / shards);
  for (let s = 0; s < shards; s++) {
    const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    files.set(name, serializeSafetensors(toWrite(part), meta));
    // total_size: bytes of tensor data, without headers (transformers' definition).
    for (const t of part) {
      weightMap[t.name] = name;
      totalSize += numel(t.shape) * DTYPE_BYTES[dtype];
    }
  }
  files.set('model.safetensors.index.json', json({ metadata: { total_size: totalSize }, weight_map: weightMap }));
  return files;
}

/** Org of every fixture repo. */
export const FIXTURE_ORG = 'fixtures';

/**
 * Builds the fixture repos in memory:
 *  - fixtures/tiny-llama          LlamaForCausalLM, tied embeddings, BF16 (as SmolLM2 ships)
 *  - fixtures/tiny-llama-sharded  LlamaForCausalLM, untied lm_head, F32, index.json + 2 shards
 *  - fixtures/tiny-qwen2          Qwen2ForCausalLM, q/k/v biases, tied, F16
 *  - fixtures/tiny-idefics3       Idefics3ForConditionalGeneration, F32
 * @param seed any integer; equal seeds give byte-identical files.
 */
export function buildFixtures(seed = 0): FixtureRepo[] {
  const make = (
    name: string,
    architecture: FixtureRepo['architecture'],
    config: Record<string, unknown>,
    tensors: TensorSpec[],
    dtype: Dtype,
    shards = 1,
  ): FixtureRepo => ({ repo: `${FIXTURE_ORG}/${name}`, architecture, dtype, config, tensors, files: repoFiles(config, dtype, tensors, seed, shards) });
  const llama = tinyLlamaConfig(true);
  const llamaUntied = tinyLlamaConfig(false);
  const qwen = tinyQwen2Config();
  const vlm = tinyIdefics3Config();
  return [
    make('tiny-llama', 'LlamaForCausalLM', llama, causalLmTensors(llama, false), 'BF16'),
    make('tiny-llama-sharded', 'LlamaForCausalLM', llamaUntied, causalLmTensors(llamaUntied, false), 'F32', 2),
    make('tiny-qwen2', 'Qwen2ForCausalLM', qwen, causalLmTensors(qwen, true), 'F16'),
    make('tiny-idefics3', 'Idefics3ForConditionalGeneration', vlm, idefics3Tensors(vlm.vision_config, vlm.text_config, vlm.scale_factor), 'F32'),
  ];
}
