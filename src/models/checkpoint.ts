/**
 * Building models from Hugging Face files, and saving what the lab trains in formats Hugging Face
 * tools load: full models as config.json + model.safetensors (transformers `from_pretrained`), LoRA
 * adapters as PEFT's adapter_config.json + adapter_model.safetensors.
 */
import * as E from '../engine/index.js';
import { serializeSafetensors, type TensorSource, type TensorToWrite } from '../io/safetensors.js';
import { Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { parseConfig, type ModelConfig } from './config.js';
import { Idefics3ForConditionalGeneration } from './idefics3.js';
import { LlamaForCausalLM, type CausalModel } from './llama.js';

export type PolicyModel = (LlamaForCausalLM | Idefics3ForConditionalGeneration) & CausalModel;

/** A model of the config's architecture with fresh (seeded) weights, or zeros with `empty`. */
export function createModel(config: ModelConfig, backend: E.Backend, seed = 0, empty = false): PolicyModel {
  const model =
    config.architecture === 'Idefics3ForConditionalGeneration'
      ? new Idefics3ForConditionalGeneration(config, backend, seed, empty)
      : new LlamaForCausalLM(config, backend, seed, empty);
  // Full dotted names, so that engine errors and optimizer state name the parameter.
  for (const [name, p] of model.namedParameters()) p.name = name;
  return model;
}

/**
 * A floating-point tensor's values at full precision: F64 as Float64Array (the CPU backend's
 * checkpoints, so that a resumed run is bit for bit the uninterrupted one), others as Float32Array.
 */
export async function readTensorExact(source: TensorSource, name: string): Promise<Float32Array | Float64Array> {
  const raw = await source.read(name);
  if (raw.dtype === 'F64') return new Float64Array(raw.data.slice().buffer);
  return source.readF32(name);
}

/** Every parameter by full name with the module that owns it and its local name. */
function parameterSlots(model: Module): Map<string, { owner: Module; local: string; tensor: E.Tensor }> {
  const slots = new Map<string, { owner: Module; local: string; tensor: E.Tensor }>();
  for (const [prefix, m] of model.namedModules()) {
    const own = m.namedParameters().filter(([n]) => !n.includes('.'));
    for (const [local, tensor] of own) slots.set(prefix ? `${prefix}.${local}` : local, { owner: m, local, tensor });
  }
  return slots;
}

export interface LoadReport {
  /** Names present in the file that no parameter of the model uses (e.g. rotary caches). */
  unexpected: string[];
  /** Bytes of parameters loaded (f32 on the device). */
  bytes: number;
}

/**
 * Loads every parameter of `model` from `source` by name (converted to f32: BF16, F16, F32 and F64
 * checkpoints load). Tied lm_head is not expected in the file. Reports progress per tensor.
 * @throws naming the file and tensor when one is missing or has another shape: never a partial load
 *   (shapes are all checked before any weight is replaced)
 */
export async function loadWeights(model: Module, source: TensorSource, onProgress?: (done: number, total: number) => void, only?: (name: string) => boolean): Promise<LoadReport> {
  const slots = [...parameterSlots(model)].filter(([name]) => !only || only(name));
  for (const [name, { tensor }] of slots) source.expectTensor(name, tensor.shape);
  let bytes = 0;
  for (const [i, [name, { owner, local, tensor }]] of slots.entries()) {
    const values = await readTensorExact(source, name);
    owner.setParameter(local, E.fromArray(tensor.backend, values, tensor.shape, 'f32', name));
    bytes += values.byteLength;
    onProgress?.(i + 1, slots.length);
  }
  const used = new Set(slots.map(([n]) => n));
  return { unexpected: source.names().filter((n) => !used.has(n) && !(only && !only(n))), bytes };
}

/**
 * Builds a model from a config.json object and its weights.
 * @throws for unsupported architectures, invalid config fields, and missing or mis-shaped tensors
 */
export async function loadPretrained(config: Record<string, unknown>, weights: TensorSource, backend: E.Backend, onProgress?: (done: number, total: number) => void): Promise<PolicyModel> {
  const model = createModel(parseConfig(config), backend, 0, true);
  try {
    await loadWeights(model, weights, onProgress, (name) => !/\.lora_[AB]\./.test(name));
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** Host copies of tensors as safetensors F32 entries. */
async function toWrite(entries: [string, E.Tensor][]): Promise<Map<string, TensorToWrite>> {
  const out = new Map<string, TensorToWrite>();
  for (const [name, t] of entries) out.set(name, { dtype: 'F32', shape: t.shape, data: Float32Array.from((await t.data()) as Float32Array) });
  return out;
}

/**
 * The files of a full model: config.json (the original fields, with torch_dtype float32) and
 * model.safetensors (F32, base weights; attach no LoRA or merge it first), metadata {format: pt}.
 * @throws when a LoRA adapter is still attached (save it with saveAdapter or merge it)
 */
export async function saveModel(model: PolicyModel): Promise<Map<string, Uint8Array>> {
  const params = model.namedParameters();
  if (params.some(([n]) => /\.lora_[AB]\./.test(n))) throw new Error('saveModel: a LoRA adapter is attached; mergeLora() first or save it with saveAdapter()');
  const files = new Map<string, Uint8Array>();
  files.set('config.json', new TextEncoder().encode(JSON.stringify({ ...model.config.raw, torch_dtype: 'float32' }, null, 2) + '\n'));
  files.set('model.safetensors', serializeSafetensors(await toWrite(params), { format: 'pt' }));
  return files;
}

/** PEFT LoraConfig fields the lab uses (adapter_config.json). */
export interface LoraConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** PEFT `target_modules` as a regex string matched against full module names (re.fullmatch semantics). */
  target_modules: string;
}

/**
 * Attaches LoRA to every Linear whose full module name matches `target_modules` (anchored, as PEFT
 * does for a string) and freezes every other parameter. Returns the names of the adapted modules.
 * @throws when the pattern matches no Linear
 */
export function applyLora(model: PolicyModel, cfg: LoraConfig, seed = 0): string[] {
  const re = new RegExp(`^(?:${cfg.target_modules})$`);
  for (const p of model.parameters()) p.requiresGrad = false;
  const init = { backend: model.backend, rng: new E.Rng(seed), std: 0 };
  const adapted: string[] = [];
  for (const [name, m] of model.namedModules()) {
    if (m instanceof Linear && re.test(name)) {
      m.addLora(cfg.r, cfg.lora_alpha, cfg.lora_dropout, init);
      adapted.push(name);
    }
  }
  if (!adapted.length) throw new Error(`LoRA target_modules "${cfg.target_modules}" matches no Linear module of ${model.constructor.name}`);
  for (const [name, p] of model.namedParameters()) p.name = name;
  return adapted;
}

/** Enables or disables every LoRA adapter (disabled = the base model, the reference policy for the KL term). */
export function setAdapterEnabled(model: Module, enabled: boolean): void {
  for (const [, m] of model.namedModules()) if (m instanceof Linear && m.lora) m.lora.enabled = enabled;
}

/** Merges every adapter into its base weight (PEFT merge_and_unload); the model can then be saved whole. */
export function mergeLora(model: Module): void {
  for (const [, m] of model.namedModules()) if (m instanceof Linear && m.lora) m.mergeLora();
}

const PEFT_PREFIX = 'base_model.model.';

/**
 * PEFT adapter files: adapter_config.json (peft_type LORA, task_type CAUSAL_LM, base_model_name_or_path)
 * and adapter_model.safetensors with keys `base_model.model.<module>.lora_A.weight` / `lora_B.weight`.
 */
export async function saveAdapter(model: PolicyModel, cfg: LoraConfig, baseModel: string): Promise<Map<string, Uint8Array>> {
  const lora = model.namedParameters().filter(([n]) => /\.lora_[AB]\.weight$/.test(n));
  if (!lora.length) throw new Error('saveAdapter: the model has no LoRA adapter');
  const adapterConfig = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: baseModel,
    r: cfg.r, lora_alpha: cfg.lora_alpha, lora_dropout: cfg.lora_dropout, target_modules: cfg.target_modules,
    bias: 'none', fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, use_rslora: false, use_dora: false,
  };
  const files = new Map<string, Uint8Array>();
  files.set('adapter_config.json', new TextEncoder().encode(JSON.stringify(adapterConfig, null, 2) + '\n'));
  files.set('adapter_model.safetensors', serializeSafetensors(await toWrite(lora.map(([n, t]) => [PEFT_PREFIX + n, t]))));
  return files;
}

/**
 * Attaches an adapter from PEFT files and loads its weights.
 * @throws on a non-LoRA adapter config, and (naming the tensor) on missing or mis-shaped weights
 */
export async function loadAdapter(model: PolicyModel, adapterConfig: Record<string, unknown>, weights: TensorSource): Promise<string[]> {
  if (adapterConfig.peft_type !== 'LORA') throw new Error(`adapter_config.json: field "peft_type": ${JSON.stringify(adapterConfig.peft_type)} is not LORA`);
  const tm = adapterConfig.target_modules;
  const target = Array.isArray(tm) ? `.*\\.(?:${tm.join('|')})` : String(tm);
  const cfg: LoraConfig = { r: Number(adapterConfig.r), lora_alpha: Number(adapterConfig.lora_alpha), lora_dropout: Number(adapterConfig.lora_dropout ?? 0), target_modules: target };
  const adapted = applyLora(model, cfg);
  const renamed: TensorSource = {
    names: () => weights.names().map((n) => n.replace(PEFT_PREFIX, '')),
    has: (n) => weights.has(PEFT_PREFIX + n),
    info: (n) => weights.info(PEFT_PREFIX + n),
    expectTensor: (n, s) => weights.expectTensor(PEFT_PREFIX + n, s),
    read: (n) => weights.read(PEFT_PREFIX + n),
    readF32: (n) => weights.readF32(PEFT_PREFIX + n),
  };
  await loadWeights(model, renamed, undefined, (name) => /\.lora_[AB]\.weight$/.test(name));
  // loadWeights keeps trainability of replaced tensors: adapters stay trainable, the base frozen.
  return adapted;
}
