/**
 * A run's checkpoint as files Hugging Face tools load, and the lab's reference output for checking
 * them (scripts/check_hf_compat.py):
 *  - full model: config.json + model.safetensors (F32, transformers names; LoRA merged, PEFT
 *    merge_and_unload) + tokenizer.json, tokenizer_config.json (with chat_template) and
 *    chat_template.json (`{"chat_template": ...}`, as SmolVLM-256M-Instruct ships it);
 *  - adapter: PEFT adapter_config.json + adapter_model.safetensors, with the base weights the adapter
 *    was trained on as a full model in `base/`;
 *  - golden: input ids, pixel values, last-position logits and greedy tokens for one fixed prompt.
 * The checkpoint is the trainer's (src/rl/checkpoint.ts): config.json and model.safetensors with
 * every parameter (LoRA included) at F32 or F64.
 */
import * as E from '../engine/index.js';
import type { FvqaRow } from '../data/types.js';
import { openSafetensorsBuffer } from '../io/safetensors.js';
import { loadPretrained, mergeLora, saveAdapter, saveModel, type PolicyModel } from '../models/checkpoint.js';
import { DecodeSession } from '../models/generate.js';
import { lastLogits } from '../models/llama.js';
import { CHAT_TEMPLATE, type LabTokenizer } from '../models/tokenizer.js';
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
 * adapter was trained on (the checkpoint without its lora_ tensors) as a full model.
 * @throws when `adapter` is asked for and the recipe has no LoRA; checkpoint errors as {@link loadCheckpointModel}
 */
export async function exportModelFiles(recipe: Recipe, checkpoint: Map<string, Uint8Array>, tok: TokenizerFiles, backend: E.Backend, opts: { adapter?: boolean } = {}): Promise<Map<string, Uint8Array>> {
  const lora = recipe.model.lora;
  if (opts.adapter && !lora) throw new Error(`--adapter: recipe "${recipe.name}" trains every weight (model.lora is null); export the full model`);
  const files = new Map<string, Uint8Array>();
  const add = (entries: Map<string, Uint8Array>, prefix = '') => entries.forEach((v, k) => files.set(prefix + k, v));
  const model = await loadCheckpointModel(recipe, checkpoint, backend);
  try {
    if (opts.adapter) {
      add(await saveAdapter(model, lora!, baseModelName(recipe.model.source)));
      add(tokenizerFiles(tok));
      const base = await loadPretrained(JSON.parse(text(checkpoint.get('config.json')!)), await openSafetensorsBuffer(checkpoint.get('model.safetensors')!, 'checkpoint/model.safetensors'), backend);
      try {
        add(await saveModel(base), 'base/');
      } finally {
        base.dispose();
      }
      add(tokenizerFiles(tok), 'base/');
    } else {
      if (lora) mergeLora(model);
      add(await saveModel(model));
      add(tokenizerFiles(tok));
    }
  } finally {
    model.dispose();
  }
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
  /** The prompt as text (chat template, images expanded). */
  prompt: string;
  /** Token ids [T] of the prompt. */
  input_ids: number[];
  image_token_id: number;
  /** Pixel values [1, 1, 3, H, W] (batch, images, channels, height, width: transformers Idefics3 layout), f32, row-major. */
  pixel_values: { shape: number[]; data: number[] };
  /** Logits [V] at the last prompt position. */
  logits_last: number[];
  /** Greedy continuation: up to `max_new_tokens` ids, ending at the first eos when one is sampled. */
  greedy: { max_new_tokens: number; eos_token_id: number; tokens: number[] };
}

/**
 * Runs `model` on the first user turn of `row` (encoded as the rollout does, src/rl/conversation.ts)
 * and records the input, the last-position logits and a greedy continuation.
 * @throws when the model is not a vision-language model (Idefics3) or the row's image cannot be decoded
 */
export async function goldenOutput(recipe: Recipe, model: PolicyModel, tok: LabTokenizer, row: FvqaRow, maxNewTokens = 16): Promise<Golden> {
  if (model.config.architecture !== 'Idefics3ForConditionalGeneration' || !('imageSeqLen' in model)) throw new Error(`golden: ${model.config.architecture} is not a vision-language model`);
  const size = model.config.vision.image_size;
  const ids = new TurnEncoder(tok, model.imageSeqLen, recipe.model.compact_instructions).prompt(row.prompt[0].content);
  const pixels = imagePixels(row.images[0].bytes, size);
  const be = model.backend;
  const images = E.fromArray(be, pixels, [1, 3, size, size]).keep();
  try {
    const out = E.noGrad(() => E.scope(() => lastLogits(model, model.forward({ ids: Int32Array.from(ids), batch: 1, length: ids.length }, undefined, images)).keep()));
    const logits = Array.from((await out.data()) as ArrayLike<number>);
    out.dispose();
    const eos = tok.specialIds.endOfUtterance;
    const session = new DecodeSession(model, 1, ids.length + maxNewTokens + 1);
    let tokens: number[];
    try {
      await session.append([{ ids, images }]);
      tokens = (await session.generate({ maxNewTokens, sampling: { temperature: 0, rng: new E.Rng(0) }, eosTokenIds: [eos] })).tokens[0];
    } finally {
      session.dispose();
    }
    return {
      format: 'mmsearch-lab-golden/1', architecture: model.config.architecture, lora: recipe.model.lora !== null, data_id: row.data_id,
      prompt: tok.decode(ids), input_ids: ids, image_token_id: model.config.image_token_id,
      pixel_values: { shape: [1, 1, 3, size, size], data: Array.from(pixels) }, logits_last: logits,
      greedy: { max_new_tokens: maxNewTokens, eos_token_id: eos, tokens },
    };
  } finally {
    images.dispose();
  }
}

/** The row the golden prompt comes from: the first test row of the recipe's FVQA-mini world. @throws for parquet recipes */
export function goldenRow(recipe: Recipe): FvqaRow {
  if (recipe.data.source !== 'fvqa-mini') throw new Error('golden: the recipe reads parquet data; the golden prompt comes from FVQA-mini (data.source fvqa-mini)');
  return worldOf(recipe).splits.test[0];
}
