/**
 * Model export against the formats' specs and the lab's own loaders, on the float64 CPU backend with
 * a micro Idefics3 config (tiny-vlm's tokenizer): the safetensors header parsed independently (8-byte
 * length, JSON entries with dtype / shape / data_offsets), HF names, F32; exported model ->
 * loadPretrained gives the checkpoint's logits; LoRA merged and as a PEFT adapter (loadAdapter onto
 * the exported base) give the adapted model's logits; the golden file's logits and greedy tokens.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { openSafetensorsBuffer, serializeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { createModel, applyLora, loadAdapter, loadPretrained, type PolicyModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { lastLogits } from '../models/llama.js';
import { loadTokenizer } from '../models/tokenizer.js';
import { parseRecipe, type Recipe } from '../rl/recipe.js';
import { loadCheckpointModel } from '../rl/checkpoint.js';
import { exportModelFiles, goldenOutput, goldenRow } from './model.js';

const root = new URL('../../', import.meta.url).pathname;
const tiny = JSON.parse(readFileSync(join(root, 'models/tiny-vlm/config.json'), 'utf8'));
const micro = {
  ...tiny,
  vision_config: { ...tiny.vision_config, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 },
  text_config: { ...tiny.text_config, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 },
};
const tokFiles = {
  'tokenizer.json': new Uint8Array(readFileSync(join(root, 'models/tiny-vlm/tokenizer.json'))),
  'tokenizer_config.json': new Uint8Array(readFileSync(join(root, 'models/tiny-vlm/tokenizer_config.json'))),
};
const dec = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));
const tok = loadTokenizer(dec(tokFiles['tokenizer.json']), dec(tokFiles['tokenizer_config.json']));
const LORA = { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: '.*text_model.*(q_proj|v_proj)' };

function recipeWith(lora: typeof LORA | null): Recipe {
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  return parseRecipe({ ...base, model: { ...base.model, lora }, data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, held_out_entities: 2, test_size: 8 } } });
}

/** A checkpoint as Trainer.save writes it (F64 on the CPU backend); LoRA B made non-zero so the adapter matters. */
async function checkpointOf(lora: typeof LORA | null): Promise<Map<string, Uint8Array>> {
  const be = new E.CpuBackend();
  const m = createModel(parseConfig(micro), be, 5);
  if (lora) applyLora(m, lora, 5);
  const weights = new Map<string, TensorToWrite>();
  const rng = new E.Rng(9);
  for (const [name, p] of m.namedParameters()) {
    const d = Float64Array.from((await p.data()) as ArrayLike<number>);
    if (/lora_B/.test(name)) for (let i = 0; i < d.length; i++) d[i] = rng.normal() * 0.1;
    weights.set(name, { dtype: 'F64', shape: p.shape, data: d as unknown as Float32Array });
  }
  m.dispose();
  return new Map([
    ['config.json', new TextEncoder().encode(JSON.stringify(micro))],
    ['model.safetensors', serializeSafetensors(weights, { format: 'pt' })],
  ]);
}

/** Independent safetensors header parse: u64 LE length, then the JSON header. */
function header(bytes: Uint8Array): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & { __metadata__?: Record<string, string> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
}

async function logits(m: PolicyModel): Promise<Float32Array> {
  const ids = Int32Array.from({ length: 6 }, (_, i) => 30 + i * 7);
  const out = E.noGrad(() => E.scope(() => lastLogits(m, m.forward({ ids, batch: 1, length: ids.length })).keep()));
  const d = Float32Array.from((await out.data()) as ArrayLike<number>);
  out.dispose();
  return d;
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('full model export', () => {
  test('layout, names, dtypes and shapes; loadPretrained gives the checkpoint\'s logits exactly', async () => {
    const be = new E.CpuBackend();
    const recipe = recipeWith(null);
    const ckpt = await checkpointOf(null);
    const files = await exportModelFiles(recipe, ckpt, tokFiles, be);
    expect([...files.keys()].sort()).toEqual(['README.md', 'chat_template.json', 'config.json', 'model.safetensors', 'preprocessor_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    // Idefics3Processor set to the lab's image input: 64x64, no splitting, (64 / 8)^2 / 2^2 = 16 image tokens.
    expect(dec(files.get('processor_config.json')!)).toEqual({ processor_class: 'Idefics3Processor', image_seq_len: 16 });
    expect(dec(files.get('preprocessor_config.json')!)).toMatchObject({ image_processor_type: 'Idefics3ImageProcessor', do_image_splitting: false, size: { longest_edge: 64 }, max_image_size: { longest_edge: 64 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] });
    const config = dec(files.get('config.json')!);
    expect(config).toEqual({ ...micro, torch_dtype: 'float32' });
    expect(files.get('tokenizer.json')).toEqual(tokFiles['tokenizer.json']);
    expect(dec(files.get('chat_template.json')!).chat_template).toBe(dec(tokFiles['tokenizer_config.json']).chat_template);

    const h = header(files.get('model.safetensors')!);
    expect(h.__metadata__).toEqual({ format: 'pt' });
    const ref = await loadCheckpointModel(recipe, ckpt, be);
    const expected = Object.fromEntries(ref.namedParameters().map(([n, p]) => [n, p.shape]));
    const { __metadata__: _, ...entries } = h;
    expect(Object.keys(entries).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, e] of Object.entries(entries)) {
      expect(e.dtype, name).toBe('F32');
      expect(e.shape, name).toEqual(expected[name]);
      expect(e.data_offsets[1] - e.data_offsets[0], name).toBe(4 * e.shape.reduce((a, b) => a * b, 1));
    }
    // Transformers' Idefics3 names (modeling_idefics3.py), tied lm_head absent.
    expect(entries['model.text_model.embed_tokens.weight'].shape).toEqual([1024, 32]);
    expect(entries['model.connector.modality_projection.proj.weight'].shape).toEqual([32, 16 * 4]);
    expect(entries['model.vision_model.embeddings.patch_embedding.weight'].shape).toEqual([16, 3, 8, 8]);
    expect('lm_head.weight' in entries).toBe(false);

    const back = await loadPretrained(config, await openSafetensorsBuffer(files.get('model.safetensors')!), be);
    expect(await logits(back)).toEqual(await logits(ref));
    back.dispose();
    ref.dispose();
  });
});

describe('LoRA export', () => {
  test('merged full model and PEFT adapter on the exported base both give the adapted logits', async () => {
    const be = new E.CpuBackend();
    const recipe = recipeWith(LORA);
    const ckpt = await checkpointOf(LORA);
    const adapted = await loadCheckpointModel(recipe, ckpt, be);
    const want = await logits(adapted);
    adapted.dispose();

    const merged = await exportModelFiles(recipe, ckpt, tokFiles, be);
    expect(merged.has('adapter_config.json')).toBe(false);
    const m = await loadPretrained(dec(merged.get('config.json')!), await openSafetensorsBuffer(merged.get('model.safetensors')!), be);
    expect(maxDiff(await logits(m), want)).toBeLessThan(1e-5);
    m.dispose();

    const files = await exportModelFiles(recipe, ckpt, tokFiles, be, { adapter: true });
    expect([...files.keys()].filter((k) => !k.startsWith('base/')).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'chat_template.json', 'preprocessor_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect(files.has('base/config.json') && files.has('base/model.safetensors') && files.has('base/tokenizer.json')).toBe(true);
    const ac = dec(files.get('adapter_config.json')!);
    // Idefics3 has no AutoModelForCausalLM class: task_type null and PEFT's auto_mapping; the base is the export's base/ folder.
    expect(ac).toMatchObject({ peft_type: 'LORA', task_type: null, r: 4, lora_alpha: 8, target_modules: LORA.target_modules, base_model_name_or_path: 'base' });
    expect(ac.auto_mapping).toEqual({ base_model_class: 'Idefics3ForConditionalGeneration', parent_library: 'transformers.models.idefics3.modeling_idefics3' });
    expect(new TextDecoder().decode(files.get('README.md')!)).toContain('PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained("EXPORT/base"), "EXPORT")');
    const { __metadata__: _, ...entries } = header(files.get('adapter_model.safetensors')!);
    // PEFT keys: base_model.model.<module>.lora_A.weight [r, in], lora_B.weight [out, r]; q_proj and v_proj of 2 layers.
    expect(Object.keys(entries).length).toBe(2 * 2 * 2);
    expect(entries['base_model.model.model.text_model.layers.0.self_attn.q_proj.lora_A.weight']).toMatchObject({ dtype: 'F32', shape: [4, 32] });
    expect(entries['base_model.model.model.text_model.layers.1.self_attn.v_proj.lora_B.weight']).toMatchObject({ dtype: 'F32', shape: [16, 4] });
    const baseEntries = header(files.get('base/model.safetensors')!);
    expect(Object.keys(baseEntries).some((k) => k.includes('lora'))).toBe(false);

    const base = await loadPretrained(dec(files.get('base/config.json')!), await openSafetensorsBuffer(files.get('base/model.safetensors')!), be);
    await loadAdapter(base, ac, await openSafetensorsBuffer(files.get('adapter_model.safetensors')!));
    expect(maxDiff(await logits(base), want)).toBeLessThan(1e-5);
    base.dispose();
  });

  test('--adapter on a full-weight recipe is an error', async () => {
    await expect(exportModelFiles(recipeWith(null), await checkpointOf(null), tokFiles, new E.CpuBackend(), { adapter: true })).rejects.toThrow(/model.lora is null/);
  });
});

describe('golden output', () => {
  test('input ids with the image run, pixel values, and logits / greedy tokens that the exported model reproduces', async () => {
    const be = new E.CpuBackend();
    const recipe = recipeWith(null);
    const ckpt = await checkpointOf(null);
    const m = await loadCheckpointModel(recipe, ckpt, be);
    const row = goldenRow(recipe);
    const g = await goldenOutput(recipe, m, tok, row, 4);
    m.dispose();
    expect(g.input_ids.filter((t) => t === g.image_token_id).length).toBe(16);
    expect(g.pixel_values!.shape).toEqual([1, 1, 3, 64, 64]);
    expect(g.pixel_values!.data.length).toBe(3 * 64 * 64);
    expect(g.logits_last.length).toBe(1024);
    expect(g.prompt!.startsWith('<|im_start|>User:')).toBe(true);

    const files = await exportModelFiles(recipe, ckpt, tokFiles, be);
    const back = await loadPretrained(dec(files.get('config.json')!), await openSafetensorsBuffer(files.get('model.safetensors')!), be);
    const pix = E.fromArray(be, Float32Array.from(g.pixel_values!.data), [1, 3, 64, 64]);
    const out = E.noGrad(() => lastLogits(back, back.forward({ ids: Int32Array.from(g.input_ids), batch: 1, length: g.input_ids.length }, undefined, pix)));
    expect(Array.from((await out.data()) as ArrayLike<number>)).toEqual(g.logits_last);
    const argmax = g.logits_last.reduce((b, v, i, a) => (v > a[b] ? i : b), 0);
    expect(g.greedy.tokens[0]).toBe(argmax);
    expect(g.greedy.tokens.length).toBeGreaterThan(0);
    back.dispose();
  });
});
