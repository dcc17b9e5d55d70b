/**
 * The checkpoint format of a training run: one folder of files, written whole by every save (a
 * CheckpointStore, src/storage/checkpoint-store.ts, replaces all of them at once), from which an interrupted run resumes where it
 * stopped (bit for bit on the CPU backend) and from which the exporters, the evaluation and the lab load
 * the policy:
 *
 *   model.safetensors       every parameter (LoRA included) by transformers name; F64 on the CPU
 *                           backend, F32 elsewhere (metadata format: pt)
 *   optimizer.safetensors   AdamW's moments of each trainable parameter, `<name>.exp_avg` and
 *                           `<name>.exp_avg_sq` (F32, or F64 on the CPU backend); metadata `step`.
 *                           Only while captioning, SFT or GRPO runs
 *   trainer_state.json      {@link TrainerState} with the recipe's name
 *   config.json             the model's config.json as loaded
 *   eval.json / eval.md     the final evaluation (summaries and records; the Table-1 markdown)
 *   eval-sft.json / .md     the warm-start policy's evaluation (recipe eval.after_sft)
 */
import type * as E from '../engine/index.js';
import { openSafetensorsBuffer, serializeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { applyLora, createModel, loadWeights, readTensorExact, type PolicyModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { table1, type EvalRecord, type ModeSummary } from './evaluate.js';
import type { Recipe } from './recipe.js';

/** A run's phases in order; 'download' (hub files before training starts) and 'data' (generating the world, encoding the warm start) appear only in progress events. */
export type Phase = 'download' | 'data' | 'caption' | 'sft' | 'grpo' | 'eval' | 'done';

/** GRPO settings a running run may change (the lab's knobs); a change applies from the next step on. */
export interface Knobs {
  /** grpo.reward.search_penalty */
  search_penalty: number;
  /** grpo.temperature: sampling, and the log-probs of the loss */
  temperature: number;
  /** grpo.learning_rate: the schedule's peak; the schedule keeps its shape */
  learning_rate: number;
}

/** One knob change: from GRPO step `step` on, `knob` is `value`. */
export interface KnobChange {
  step: number;
  knob: keyof Knobs;
  value: number;
}

/** Where a run stands: trainer_state.json (with the recipe's name). */
export interface TrainerState {
  phase: Exclude<Phase, 'download' | 'data'>;
  /** Optimizer steps of the caption stage taken (recipe.caption). */
  captionStep: number;
  sftStep: number;
  grpoStep: number;
  /** State of GRPO's sampling generator (seeded with grpoSeed). */
  rng: number[];
  /** Steps whose loss or gradient was not finite, in a row (training stops at 5). */
  badSteps: number;
  /** Seed of GRPO's sampling and prompt order: grpo.seed, else the recipe's seed (checkpoints before it existed used the recipe's). */
  grpoSeed: number;
  /** GRPO generation batches drawn so far: the prompt stream's position (= grpoStep unless filter_groups drew more). */
  genBatches: number;
  /** Knob changes made while training, in order (absent when none was made). */
  knobs?: KnobChange[];
}

/** An evaluation: per-mode summaries, per-question records and the Table-1 markdown. */
export interface EvalResult {
  summaries: ModeSummary[];
  records: EvalRecord[];
  table: string;
}

/** What one save writes. */
export interface CheckpointContent {
  recipe: Recipe;
  model: PolicyModel;
  state: TrainerState;
  /** The optimizer while a phase trains, with the names of its parameters in its order; null between phases. */
  optimizer: { optimizer: E.AdamW; names: readonly string[] } | null;
  evals: { eval: EvalResult | null; 'eval-sft': EvalResult | null };
}

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2) + '\n');
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The files of a checkpoint (see the module's comment); weights at full precision. */
export async function checkpointFiles(c: CheckpointContent): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const backend = c.model.backend;
  const exact = backend.name === 'cpu';
  const weights = new Map<string, TensorToWrite>();
  for (const [name, p] of c.model.namedParameters()) {
    const d = await backend.read(p.storage, true);
    weights.set(name, { dtype: exact ? 'F64' : 'F32', shape: p.shape, data: d as Float32Array });
  }
  files.set('model.safetensors', serializeSafetensors(weights, { format: 'pt' }));
  if (c.optimizer) {
    const st = await c.optimizer.optimizer.state();
    const names = c.optimizer.names;
    const slots = new Map<string, TensorToWrite>();
    st.slots.forEach((s, i) => s.forEach((arr, j) => slots.set(`${names[i]}.${j ? 'exp_avg_sq' : 'exp_avg'}`, { dtype: arr instanceof Float64Array ? 'F64' : 'F32', shape: [arr.length], data: arr })));
    files.set('optimizer.safetensors', serializeSafetensors(slots, { step: String(st.step) }));
  }
  files.set('trainer_state.json', json({ ...c.state, recipe: c.recipe.name }));
  files.set('config.json', json(c.model.config.raw));
  for (const [name, r] of Object.entries(c.evals)) {
    if (!r) continue;
    files.set(`${name}.json`, json({ summaries: r.summaries, records: r.records }));
    files.set(`${name}.md`, new TextEncoder().encode(r.table + '\n'));
  }
  return files;
}

/**
 * The trainer state of a checkpoint; checkpoints written before captionStep, grpoSeed and genBatches
 * existed get the values that drove them (no captioning; the recipe's seed; one generation batch per step).
 * @throws Error when the checkpoint belongs to another recipe
 */
export function readTrainerState(files: Map<string, Uint8Array>, recipe: Recipe): TrainerState {
  const st = JSON.parse(text(files.get('trainer_state.json')!)) as TrainerState & { recipe: string };
  if (st.recipe !== recipe.name) throw new Error(`the checkpoint belongs to recipe "${st.recipe}", not "${recipe.name}": use another output folder`);
  const { recipe: _, ...state } = st;
  return { ...state, captionStep: state.captionStep ?? 0, grpoSeed: state.grpoSeed ?? recipe.seed, genBatches: state.genBatches ?? state.grpoStep };
}

/** The evaluation `name` ('eval' or 'eval-sft') of a checkpoint, its table rebuilt; null when it has none. */
export function readEvalResult(files: Map<string, Uint8Array>, name: 'eval' | 'eval-sft'): EvalResult | null {
  const f = files.get(`${name}.json`);
  if (!f) return null;
  const r = JSON.parse(text(f)) as Omit<EvalResult, 'table'>;
  return { ...r, table: table1(r.summaries) };
}

/** Loads model.safetensors into `model` (every parameter, exact). @throws naming a missing or mis-shaped tensor */
export async function loadCheckpointWeights(model: PolicyModel, files: Map<string, Uint8Array>): Promise<void> {
  await loadWeights(model, await openSafetensorsBuffer(files.get('model.safetensors')!, 'checkpoint model.safetensors'));
}

/**
 * Restores `optimizer` from optimizer.safetensors (`names`: its parameters' names in its order); a
 * parameter without moments in the file starts without them. Nothing happens when the file is absent.
 */
export async function loadOptimizerState(files: Map<string, Uint8Array>, optimizer: E.AdamW, names: readonly string[]): Promise<void> {
  const opt = files.get('optimizer.safetensors');
  if (!opt) return;
  const src = await openSafetensorsBuffer(opt, 'checkpoint optimizer.safetensors');
  const slots = await Promise.all(names.map(async (n) => (src.has(`${n}.exp_avg`) ? [await readTensorExact(src, `${n}.exp_avg`), await readTensorExact(src, `${n}.exp_avg_sq`)] : [])));
  optimizer.loadState({ step: Number(src.metadata?.step ?? 0), slots });
}

/**
 * The policy of a checkpoint: the checkpoint's config.json, LoRA attached when the recipe has one,
 * every weight loaded (F32 or F64). Parameters are f32 tensors on `backend`.
 * @throws when config.json or model.safetensors is missing, or a tensor is missing or mis-shaped
 */
export async function loadCheckpointModel(recipe: Recipe, checkpoint: Map<string, Uint8Array>, backend: E.Backend): Promise<PolicyModel> {
  const cfg = checkpoint.get('config.json'), weights = checkpoint.get('model.safetensors');
  if (!cfg || !weights) throw new Error(`checkpoint: ${!cfg ? 'config.json' : 'model.safetensors'} is missing`);
  const model = createModel(parseConfig(JSON.parse(text(cfg)), 'checkpoint/config.json'), backend, 0, true);
  if (recipe.model.lora) applyLora(model, recipe.model.lora);
  await loadWeights(model, await openSafetensorsBuffer(weights, 'checkpoint/model.safetensors'));
  return model;
}
