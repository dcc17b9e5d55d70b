/**
 * A run's checkpoint (or a model folder) as files Hugging Face tools load, and the lab's reference
 * output for checking them (scripts/check_hf_compat.py):
 *  - full model: config.json + model.safetensors (F32, transformers names; LoRA merged, PEFT
 *    merge_and_unload) + tokenizer.json, tokenizer_config.json (with chat_template) and
 *    chat_template.json (`{"chat_template": ...}`, as SmolVLM-256M-Instruct ships it); for Idefics3
 *    also preprocessor_config.json + processor_config.json (transformers Idefics3Processor set to the
 *    lab's image handling: one global image at vision_config.image_size, no splitting, mean/std 0.5),
 *    so that AutoProcessor loads the folder; README.md with the Python that loads it;
 *  - adapter: PEFT adapter_config.json + adapter_model.safetensors, with the base weights the adapter
 *    was trained on as a full model in `base/`; base_model_name_or_path is the hub id the run started
 *    from, else the base folder;
 *  - golden: input ids, pixel values, last-position logits and greedy tokens for one fixed prompt
 *    (Idefics3, Llama and Qwen2).
 * The checkpoint is the trainer's (src/rl/checkpoint.ts): config.json and model.safetensors with
 * every parameter (LoRA included) at F32 or F64.
 */
import * as E from '../engine/index.js';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import type { FvqaRow } from '../data/types.js';
import { openSafetensorsBuffer, type TensorSource } from '../io/safetensors.js';
import { loadPretrained, mergeLora, saveAdapter, saveModel, type PolicyModel } from '../models/checkpoint.js';
import { DecodeSession } from '../models/generate.js';
import { lastLogits } from '../models/llama.js';
import { CHAT_TEMPLATE, toContentParts, type LabTokenizer } from '../models/tokenizer.js';
import { compactInstructions } from '../protocol/prompts.js';
import { imagePixels, TurnEncoder } from '../rl/conversation.js';
import { loadCheckpointModel } from '../rl/checkpoint.js';
import { worldOf } from '../rl/environment.js';
import type { Recipe } from '../rl/recipe.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

/** Tokenizer files of the model source (tokenizer.json, tokenizer_config.json). */
export interface TokenizerFiles {
  'tokenizer.json': Uint8Array;
  'tokenizer_config.json': Uint8Array;
}

/**
 * transformers Idefics3Processor files for an Idefics3 config, matching the lab's image input
 * (src/models/image.ts pixelValues, src/models/tokenizer.ts expandImageTokens): resize so the longest
 * edge is vision_config.image_size (bilinear), no image splitting, rescale 1/255, normalise with mean
 * and std 0.5; image_seq_len = (image_size / patch_size)^2 / scale_factor^2 image tokens after
 * `<fake_token_around_image><global-img>`.
 * @throws when the config is not an Idefics3 config
 */
export function idefics3ProcessorFiles(config: Record<string, unknown>): Map<string, Uint8Array> {
  const v = config.vision_config as { image_size?: number; patch_size?: number } | undefined;
  const scale = config.scale_factor as number | undefined;
  if (!v?.image_size || !v.patch_size || !scale) throw new Error('processor files: not an Idefics3 config (vision_config.image_size, patch_size, scale_factor)');
  const side = v.image_size;
  const imageSeqLen = (side / v.patch_size) ** 2 / scale ** 2;
  const json = (o: unknown) => bytes(JSON.stringify(o, null, 2) + '\n');
  return new Map([
    ['preprocessor_config.json', json({
      image_processor_type: 'Idefics3ImageProcessor', processor_class: 'Idefics3Processor',
      do_convert_rgb: true, do_resize: true, size: { longest_edge: side }, resample: 2,
      do_image_splitting: false, max_image_size: { longest_edge: side },
      do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], do_pad: true,
    })],
    ['processor_config.json', json({ processor_class: 'Idefics3Processor', image_seq_len: imageSeqLen })],
  ]);
}

/** README.md of a model export: what the folder holds and the Python that loads it. */
export function modelReadme(architecture: string, opts: { adapter: boolean; baseModel?: string }): string {
  const vlm = architecture === 'Idefics3ForConditionalGeneration';
  const cls = vlm ? 'AutoModelForImageTextToText' : 'AutoModelForCausalLM';
  const lines = opts.adapter
    ? [
        'A PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors) and, in base/, the model it was trained on.',
        '',
        '```python',
        `from transformers import ${cls}; from peft import PeftModel`,
        `model = PeftModel.from_pretrained(${cls}.from_pretrained("EXPORT/base"), "EXPORT")  # EXPORT: this folder`,
        '```',
        '',
        `adapter_config.json names the base model as ${JSON.stringify(opts.baseModel ?? 'base')}, so \`${vlm ? 'peft.AutoPeftModel' : 'peft.AutoPeftModelForCausalLM'}.from_pretrained("EXPORT")\` loads base and adapter in one call${opts.baseModel && !opts.baseModel.startsWith('/') && opts.baseModel !== 'base' ? ' (from the hub)' : ' while this folder stays where it was written'}.`,
      ]
    : [
        `A ${architecture} in transformers' format (F32 safetensors).`,
        '',
        '```python',
        `from transformers import ${cls}${vlm ? ', AutoProcessor' : ', AutoTokenizer'}`,
        `model = ${cls}.from_pretrained("EXPORT"); ${vlm ? 'processor = AutoProcessor' : 'tokenizer = AutoTokenizer'}.from_pretrained("EXPORT")  # EXPORT: this folder`,
        '```',
      ];
  return ['# Exported from MMSearch Lab (npm run export -- model)', '', ...lines, '', 'Checked against the lab\'s own logits by scripts/check_hf_compat.py (docs/interop.md).', ''].join('\n');
}

/**
 * PEFT adapter_config.json for Hugging Face loaders: base_model_name_or_path set to `base`; for
 * Idefics3 (no AutoModelForCausalLM class in transformers 5) task_type null and PEFT's auto_mapping
 * naming Idefics3ForConditionalGeneration, as PEFT writes it for such models, so AutoPeftModel finds it.
 */
function adapterConfigFor(raw: Uint8Array, architecture: string, base: string): Uint8Array {
  const cfg = JSON.parse(text(raw)) as Record<string, unknown>;
  cfg.base_model_name_or_path = base;
  if (architecture === 'Idefics3ForConditionalGeneration') {
    cfg.task_type = null;
    cfg.auto_mapping = { base_model_class: 'Idefics3ForConditionalGeneration', parent_library: 'transformers.models.idefics3.modeling_idefics3' };
  }
  return bytes(JSON.stringify(cfg, null, 2) + '\n');
}

function tokenizerFiles(tok: TokenizerFiles): Map<string, Uint8Array> {
  const config = JSON.parse(text(tok['tokenizer_config.json'])) as { chat_template?: string };
  return new Map([
    ['tokenizer.json', tok['tokenizer.json']],
    ['tokenizer_config.json', tok['tokenizer_config.json']],
    ['chat_template.json', bytes(JSON.stringify({ chat_template: config.chat_template ?? CHAT_TEMPLATE }, null, 2) + '\n')],
  ]);
}

/** The hub id of an `hf:ORG/NAME@REV` source (PEFT base_model_name_or_path), else the source as given. */
export function baseModelName(source: string): string {
  return source.startsWith('hf:') ? source.slice(3).replace(/@.*$/, '') : source;
}

/**
 * The files of an export, by relative path. Without `adapter`: the full model (LoRA merged into the
 * base weights, PEFT merge_and_unload). With `adapter`: adapter_config.json + adapter_model.safetensors
 * (keys `base_model.model.<module>.lora_{A,B}.weight`, F32) and, under `base/`, the base weights the
 * adapter was trained on (the checkpoint without its lora_ tensors) as a full model. Idefics3 exports
 * carry processor files ({@link idefics3ProcessorFiles}); every export a README.md.
 * @param opts.baseModelPath adapter_config's base_model_name_or_path when the run did not start from
 *   the hub (default `base`, relative; the CLI writes the absolute path of OUT/base)
 * @throws when `adapter` is asked for and the recipe has no LoRA; checkpoint errors as {@link loadCheckpointModel}
 */
export async function exportModelFiles(recipe: Recipe, checkpoint: Map<string, Uint8Array>, tok: TokenizerFiles | null, backend: E.Backend, opts: { adapter?: boolean; baseModelPath?: string } = {}): Promise<Map<string, Uint8Array>> {
  const lora = recipe.model.lora;
  if (opts.adapter && !lora) throw new Error(`--adapter: recipe "${recipe.name}" trains every weight (model.lora is null); export the full model`);
  const files = new Map<string, Uint8Array>();
  const add = (entries: Map<string, Uint8Array>, prefix = '') => entries.forEach((v, k) => files.set(prefix + k, v));
  const config = JSON.parse(text(checkpoint.get('config.json') ?? bytes('{}'))) as Record<string, unknown>;
  const architecture = (config.architectures as string[] | undefined)?.[0] ?? '';
  const extras = (prefix = '') => {
    if (tok) add(tokenizerFiles(tok), prefix);
    if (architecture === 'Idefics3ForConditionalGeneration') add(idefics3ProcessorFiles(config), prefix);
  };
  const model = await loadCheckpointModel(recipe, checkpoint, backend);
  try {
    if (opts.adapter) {
      const hub = recipe.model.source.startsWith('hf:');
      const baseName = hub ? baseModelName(recipe.model.source) : (opts.baseModelPath ?? 'base');
      const adapter = await saveAdapter(model, lora!, baseName);
      adapter.set('adapter_config.json', adapterConfigFor(adapter.get('adapter_config.json')!, architecture, baseName));
      add(adapter);
      extras();
      const base = await loadPretrained(config, await openSafetensorsBuffer(checkpoint.get('model.safetensors')!, 'checkpoint/model.safetensors'), backend);
      try {
        add(await saveModel(base), 'base/');
      } finally {
        base.dispose();
      }
      extras('base/');
      files.set('README.md', bytes(modelReadme(architecture, { adapter: true, baseModel: baseName })));
      files.set('base/README.md', bytes(modelReadme(architecture, { adapter: false })));
    } else {
      if (lora) mergeLora(model);
      add(await saveModel(model));
      extras();
      files.set('README.md', bytes(modelReadme(architecture, { adapter: false })));
    }
  } finally {
    model.dispose();
  }
  return files;
}

/**
 * A model folder (config.json + model.safetensors or a sharded index, any dtype the lab loads; e.g. a
 * fixture from scripts/make-fixtures.ts) re-exported as {@link exportModelFiles} does for a run without
 * LoRA: F32 weights, tokenizer files when given, processor files for Idefics3, README.md.
 * @throws when the config or a tensor cannot be loaded
 */
export async function exportModelFolder(config: Record<string, unknown>, weights: TensorSource, tok: TokenizerFiles | null, backend: E.Backend): Promise<Map<string, Uint8Array>> {
  const model = await loadPretrained(config, weights, backend);
  const files = new Map<string, Uint8Array>();
  try {
    (await saveModel(model)).forEach((v, k) => files.set(k, v));
  } finally {
    model.dispose();
  }
  if (tok) tokenizerFiles(tok).forEach((v, k) => files.set(k, v));
  const architecture = (config.architectures as string[] | undefined)?.[0] ?? '';
  if (architecture === 'Idefics3ForConditionalGeneration') idefics3ProcessorFiles(config).forEach((v, k) => files.set(k, v));
  files.set('README.md', bytes(modelReadme(architecture, { adapter: false })));
  return files;
}

/** The lab's output for one fixed prompt, for comparing an exported model in another framework. */
export interface Golden {
  format: 'mmsearch-lab-golden/1';
  architecture: string;
  /** True when the policy carries a LoRA adapter (compare against the merged model or base + adapter). */
  lora: boolean;
  /** The data row the prompt comes from. */
  data_id: string;
  /** The prompt as text (chat template, images expanded); null when the model has no tokenizer (ids are fixed). */
  prompt: string | null;
  /** The chat-templated prompt with one `<image>` per image, before expansion (what a processor takes); null without a tokenizer. */
  chat_text: string | null;
  /** The prompt as chat messages with typed content parts (transformers apply_chat_template input); null without a tokenizer. */
  messages: { role: string; content: ({ type: 'text'; text: string } | { type: 'image' })[] }[] | null;
  /** Token ids [T] of the prompt. */
  input_ids: number[];
  /** Image token id; null for text-only models. */
  image_token_id: number | null;
  /** Pixel values [1, 1, 3, H, W] (batch, images, channels, height, width: transformers Idefics3 layout), f32, row-major; null for text-only models. */
  pixel_values: { shape: number[]; data: number[] } | null;
  /** The image as given to the lab (PNG/JPEG bytes, base64), for AutoProcessor; null for text-only models. */
  image_base64: string | null;
  /** Logits [V] at the last prompt position. */
  logits_last: number[];
  /** Greedy continuation: up to `max_new_tokens` ids, ending at the first eos when one is sampled. */
  greedy: { max_new_tokens: number; eos_token_id: number; tokens: number[] };
}

const base64 = (b: Uint8Array) => btoa(Array.from(b, (c) => String.fromCharCode(c)).join(''));

/** Fixed prompt ids for models without a tokenizer: a deterministic walk over the vocabulary (no special meaning). */
function fixedIds(vocab: number, n: number, avoid: number | null): number[] {
  const out: number[] = [];
  for (let i = 0; out.length < n; i++) {
    const id = (7 + i * 13) % vocab;
    if (id !== avoid) out.push(id);
  }
  return out;
}

/**
 * Runs `model` on the first user turn of `row` and records the input, the last-position logits and a
 * greedy continuation. Idefics3 with a tokenizer: the turn encoded as the rollout does
 * (src/rl/conversation.ts; compact instructions when the recipe says so). Without a tokenizer (hub
 * fixtures): fixed ids around the image's tokens. Llama / Qwen2: the row's question as a chat turn
 * (tokenizer) or fixed ids; no image.
 * @param recipe the run's recipe (compact_instructions, LoRA); null for a bare model folder
 * @throws when the row's image cannot be decoded
 */
export async function goldenOutput(recipe: Recipe | null, model: PolicyModel, tok: LabTokenizer | null, row: FvqaRow, maxNewTokens = 16): Promise<Golden> {
  const be = model.backend;
  const vlm = model.config.architecture === 'Idefics3ForConditionalGeneration' && 'imageSeqLen' in model;
  const vocab = model.config.text.vocab_size;
  const eos = tok ? tok.specialIds.endOfUtterance : (model.config.text.eos_token_id as number | undefined) ?? vocab - 1;
  let ids: number[];
  let chatText: string | null = null;
  let messages: Golden['messages'] = null;
  let images: E.Tensor | undefined;
  let pixels: Float32Array | null = null;
  let size = 0;
  if (vlm) {
    const seqLen = (model as PolicyModel & { imageSeqLen: number }).imageSeqLen;
    size = model.config.vision.image_size;
    pixels = imagePixels(row.images[0].bytes, size);
    images = E.fromArray(be, pixels, [1, 3, size, size]).keep();
    const imageId = model.config.image_token_id;
    if (tok) {
      const content = recipe?.model.compact_instructions ? compactInstructions(row.prompt[0].content) : row.prompt[0].content;
      ids = new TurnEncoder(tok, seqLen, recipe?.model.compact_instructions ?? false).prompt(row.prompt[0].content);
      chatText = tok.renderChat([{ role: 'user', content }], { addGenerationPrompt: true });
      messages = [{ role: 'user', content: toContentParts(content) }];
    } else {
      ids = [...fixedIds(vocab, 5, imageId), ...Array<number>(seqLen).fill(imageId), ...fixedIds(vocab, 3, imageId)];
    }
  } else if (tok) {
    const question = row.extra_info?.question ?? row.prompt[0].content.replaceAll('<image>', '');
    messages = [{ role: 'user', content: [{ type: 'text', text: question }] }];
    chatText = tok.renderChat([{ role: 'user', content: question }], { addGenerationPrompt: true });
    ids = tok.encode(chatText);
  } else {
    ids = fixedIds(vocab, 12, null);
  }
  try {
    const out = E.noGrad(() => E.scope(() => lastLogits(model, model.forward({ ids: Int32Array.from(ids), batch: 1, length: ids.length }, undefined, images)).keep()));
    const logits = Array.from((await out.data()) as ArrayLike<number>);
    out.dispose();
    const session = new DecodeSession(model, 1, ids.length + maxNewTokens + 1);
    let tokens: number[];
    try {
      await session.append([images ? { ids, images } : { ids }]);
      tokens = (await session.generate({ maxNewTokens, sampling: { temperature: 0, rng: new E.Rng(0) }, eosTokenIds: [eos] })).tokens[0];
    } finally {
      session.dispose();
    }
    return {
      format: 'mmsearch-lab-golden/1', architecture: model.config.architecture, lora: recipe?.model.lora != null, data_id: row.data_id,
      prompt: tok ? tok.decode(ids) : null, chat_text: chatText, messages, input_ids: ids, image_token_id: vlm ? model.config.image_token_id : null,
      pixel_values: pixels ? { shape: [1, 1, 3, size, size], data: Array.from(pixels) } : null,
      image_base64: vlm ? base64(row.images[0].bytes) : null, logits_last: logits,
      greedy: { max_new_tokens: maxNewTokens, eos_token_id: eos, tokens },
    };
  } finally {
    images?.dispose();
  }
}

/**
 * The row the golden prompt comes from: the first test row of the recipe's FVQA-mini world, or of a
 * small default world (seed 1) for a bare model folder (recipe null).
 * @throws for parquet recipes
 */
export function goldenRow(recipe: Recipe | null): FvqaRow {
  if (!recipe) return generateFvqaMini({ seed: 1, entities: 16, heldOutEntities: 4, testSize: 8 }).splits.test[0];
  if (recipe.data.source !== 'fvqa-mini') throw new Error('golden: the recipe reads parquet data; the golden prompt comes from FVQA-mini (data.source fvqa-mini)');
  return worldOf(recipe).splits.test[0];
}
