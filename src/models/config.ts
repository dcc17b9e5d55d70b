/**
 * Hugging Face config.json parsing for the architectures the lab runs, validated with zod so that a
 * wrong or missing field is reported by name. Field names and defaults follow transformers'
 * LlamaConfig, Qwen2Config and Idefics3Config (Idefics3VisionConfig).
 */
import { z } from 'zod';

const positiveInt = z.number().int().positive();

/** A Llama-family text decoder (LlamaConfig; Qwen2Config adds q/k/v biases). */
export const textConfigSchema = z.object({
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.optional(),
  head_dim: positiveInt.optional(),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().default(10000),
  max_position_embeddings: positiveInt.default(2048),
  tie_word_embeddings: z.boolean().default(false),
  attention_bias: z.boolean().default(false),
  initializer_range: z.number().positive().default(0.02),
  hidden_act: z.literal('silu').default('silu'),
  rope_scaling: z.null().optional(),
  bos_token_id: z.number().int().nullable().optional(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).nullable().optional(),
  pad_token_id: z.number().int().nullable().optional(),
});

export const visionConfigSchema = z.object({
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_channels: positiveInt.default(3),
  image_size: positiveInt,
  patch_size: positiveInt,
  layer_norm_eps: z.number().positive().default(1e-6),
  hidden_act: z.literal('gelu_pytorch_tanh').default('gelu_pytorch_tanh'),
  initializer_range: z.number().positive().default(0.02),
});

export type TextConfig = z.infer<typeof textConfigSchema> & { qkv_bias: boolean };
export type VisionConfig = z.infer<typeof visionConfigSchema>;

export interface CausalLMConfig {
  architecture: 'LlamaForCausalLM' | 'Qwen2ForCausalLM';
  text: TextConfig;
}

export interface VLMConfig {
  architecture: 'Idefics3ForConditionalGeneration';
  text: TextConfig;
  vision: VisionConfig;
  scale_factor: number;
  image_token_id: number;
  /** The whole config.json, written back unchanged on save. */
  raw: Record<string, unknown>;
}

export type ModelConfig = (CausalLMConfig | VLMConfig) & { raw: Record<string, unknown> };

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`${where}: field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
  }
  return r.data;
}

/**
 * Parses a config.json object. Supported `architectures[0]`: LlamaForCausalLM, Qwen2ForCausalLM,
 * Idefics3ForConditionalGeneration (SmolVLM). `file` names the source in errors.
 * @throws naming the file and the field for unknown architectures and invalid fields
 */
export function parseConfig(raw: Record<string, unknown>, file = 'config.json'): ModelConfig {
  const arch = Array.isArray(raw.architectures) ? String(raw.architectures[0]) : undefined;
  if (arch === 'LlamaForCausalLM' || arch === 'Qwen2ForCausalLM') {
    const text = parse(textConfigSchema, raw, file);
    return { architecture: arch, text: { ...text, qkv_bias: arch === 'Qwen2ForCausalLM' || text.attention_bias }, raw };
  }
  if (arch === 'Idefics3ForConditionalGeneration') {
    const text = parse(textConfigSchema, { tie_word_embeddings: raw.tie_word_embeddings, ...(raw.text_config as object) }, `${file} text_config`);
    const vision = parse(visionConfigSchema, raw.vision_config, `${file} vision_config`);
    const scale_factor = parse(positiveInt, raw.scale_factor ?? 2, `${file} scale_factor`);
    const image_token_id = parse(z.number().int().nonnegative(), raw.image_token_id, `${file} image_token_id`);
    const side = vision.image_size / vision.patch_size;
    if (!Number.isInteger(side) || side % scale_factor) throw new Error(`${file}: image_size/patch_size = ${side} must be an integer divisible by scale_factor ${scale_factor}`);
    return { architecture: arch, text: { ...text, qkv_bias: text.attention_bias }, vision, scale_factor, image_token_id, raw };
  }
  throw new Error(`${file}: field "architectures": ${JSON.stringify(raw.architectures)} is not supported (LlamaForCausalLM, Qwen2ForCausalLM, Idefics3ForConditionalGeneration)`);
}

/** head_dim, defaulting to hidden_size / num_attention_heads as transformers does. */
export const headDim = (t: TextConfig) => t.head_dim ?? t.hidden_size / t.num_attention_heads;
/** num_key_value_heads, defaulting to num_attention_heads (MHA). */
export const kvHeads = (t: TextConfig) => t.num_key_value_heads ?? t.num_attention_heads;
/** Image tokens per image: (image_size / patch_size)² / scale_factor² (64 for SmolVLM-256M). */
export const imageSeqLen = (c: VLMConfig) => (c.vision.image_size / c.vision.patch_size) ** 2 / c.scale_factor ** 2;
