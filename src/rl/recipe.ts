/**
 * A training recipe: one JSON file naming the model, the data, the search backend, the captioning
 * stage, the warm-start SFT, the GRPO configuration (TRL GRPOConfig names, src/rl/config.ts) and the evaluation. Validated
 * with zod: unknown or out-of-range fields are rejected with the field named (`sft.num_train_epochs: ...`),
 * and a field's former name with its new one. Sections and fields are snake_case; the SFT section has
 * transformers TrainingArguments' names, the GRPO section TRL GRPOConfig's.
 * FVQA parquet data (`data.source: parquet`) needs both files, no warm-start SFT (FVQA rows carry no
 * trajectories) and the proxy search backend (there is no generated corpus to search locally).
 */
import { z } from 'zod';
import { DEFAULT_FVQA_MINI, type FvqaMiniConfig } from '../data/fvqa-mini.js';
import { GRPOConfigSchema, parseJsonWith, parseWith, searchLimits } from './config.js';
import type { RolloutOptions } from './rollout.js';

const int = () => z.number().int();

export const LoraSchema = z.strictObject({
  r: int().min(1).max(1024).describe('LoRA rank.'),
  lora_alpha: z.number().positive().describe('Scaling numerator: the update is scaled by lora_alpha / r (PEFT).'),
  lora_dropout: z.number().min(0).lt(1).default(0).describe('Dropout on the adapter input during training.'),
  target_modules: z.string().min(1).describe('Regex over full module names (PEFT semantics), e.g. .*(q_proj|v_proj).'),
});

/** A FvqaMiniConfig field's name in a recipe's data.fvqa_mini, snake_case as every recipe field: heldOutEntities -> held_out_entities. */
export const fvqaMiniRecipeKey = (field: string): string => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** data.fvqa_mini key -> FvqaMiniConfig field, for every field the generator has. */
const FVQA_MINI_FIELDS: ReadonlyMap<string, keyof FvqaMiniConfig> = new Map(
  (Object.keys(DEFAULT_FVQA_MINI) as (keyof FvqaMiniConfig)[]).map((f) => [fvqaMiniRecipeKey(f), f]),
);

const FvqaMiniSettingsSchema = z.record(z.string(), z.number()).default({}).superRefine((o, ctx) => {
  for (const k of Object.keys(o)) {
    if (FVQA_MINI_FIELDS.has(k)) continue;
    const renamed = fvqaMiniRecipeKey(k);
    const message = FVQA_MINI_FIELDS.has(renamed) ? `unknown field: renamed ${renamed} (recipe fields are snake_case)`
      : `unknown field: FVQA-mini settings are ${[...FVQA_MINI_FIELDS.keys()].join(', ')}`;
    ctx.addIssue({ code: 'custom', path: [k], message, input: undefined });
  }
}).describe('Generator settings (src/data/fvqa-mini.ts FvqaMiniConfig, in snake_case: held_out_entities, test_size, ...), e.g. {"entities": 100}; the world seed is the recipe\'s seed unless "seed" is set here.');

export const RecipeSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().default(''),
  seed: int().min(0).default(1).describe('Seed of model initialisation, sampling and shuffling.'),
  model: z.strictObject({
    source: z.string().min(1).describe('A folder with config.json and tokenizer files (e.g. models/tiny-vlm) or hf:ORG/NAME@REVISION.'),
    init: z.enum(['scratch', 'pretrained']).default('pretrained').describe('scratch: fresh weights from the config (tiny-vlm); pretrained: load model.safetensors.'),
    lora: LoraSchema.nullable().default(null).describe('Train a LoRA adapter instead of every weight (the reference policy is the adapter disabled).'),
    compact_instructions: z.boolean().default(false).describe('Replace the paper\'s instruction texts by short stand-ins (models trained from scratch cannot read them).'),
  }),
  data: z.strictObject({
    source: z.enum(['fvqa-mini', 'parquet']).default('fvqa-mini').describe('fvqa-mini: the generated world (its splits and search corpus); parquet: FVQA files data.train and data.test.'),
    fvqa_mini: FvqaMiniSettingsSchema,
    train: z.string().optional().describe('parquet: train file (FVQA schema): a path, an http(s) URL (read by HTTP Range) or hf:ORG/NAME[@REV]/FILE of a hub dataset.'),
    test: z.string().optional().describe('parquet: test file, as data.train; eval.split "test" evaluates on it.'),
    train_categories: z.array(z.enum(['search_free', 'search_required'])).min(1).nullable().default(null)
      .describe('GRPO prompts from these FVQA categories only (null: all). ["search_required"] is the paper\'s ablation without data balancing.'),
  }),
  search: z.strictObject({
    backend: z.enum(['local', 'proxy']).default('local').describe('local: the in-process index over the corpus; proxy: the search proxy at proxy_url.'),
    proxy_url: z.string().default('http://127.0.0.1:8787'),
    summary_sentences: int().min(1).max(10).default(5).describe('Sentences per text-search summary (local backend; paper: up to 5).'),
  }).prefault({}),
  caption: z.strictObject({
    max_steps: int().min(1).default(1500).describe('Optimizer steps; each trains per_device_train_batch_size captions of fresh random looks, every look and image seen once (TrainingArguments.max_steps).'),
    learning_rate: z.number().positive().max(1).default(3e-4).describe('Peak AdamW learning rate (cosine schedule). At the warm start\'s 3e-3 the language model does not learn to read image tokens; at 3e-4 it reads all four attributes of unseen looks (docs/fvqa-mini-warm-start.md).'),
    per_device_train_batch_size: int().min(1).default(8).describe('Captions per optimizer step (TrainingArguments).'),
    warmup_ratio: z.number().min(0).max(1).default(0.05),
    weight_decay: z.number().min(0).max(1).default(0.01),
    max_grad_norm: z.number().min(0).default(1),
    eval_steps: int().min(1).default(500).describe('Caption eval_looks unseen looks every this many steps (and at the end): the caption/<attribute> metrics, percent read right (TrainingArguments.eval_steps).'),
    eval_looks: int().min(1).default(200).describe('Unseen looks captioned at each evaluation (the same ones every time); with name_copies, as many unseen names copied too.'),
    name_copies: int().min(0).default(0).describe('Name-copy sequences per step beside the captions (src/rl/copying.ts): each reads a fresh generator name off an image-search result (text only: no result image) and writes it back as a warm-start trajectory does (restated, then in the text query or the answer), the copying a pretrained model brings. Metrics copy/reasoning and copy/action: percent of eval_looks unseen names copied, at each evaluation. 0: captions only.'),
    name_copies_from_step: int().min(0).default(0).describe('The caption step at which the name copies begin (before it every step trains captions only). Copies from step 0 slow the looks (seed 2: shape / marks of unseen looks 72 / 54% at step 1000, 100 / 100 without copies); from step 1000, in the cosine tail of the learning rate, they taught no copying (docs/fvqa-mini-warm-start.md, sixth session). Must be below max_steps where name_copies > 0.'),
  }).nullable().default(null).describe('Captioning before the warm start (LLaVA\'s stage 1, feature alignment, in miniature): SFT on "What does this creature look like?" -> "<reason>A striped red star, 3 marks.</reason>" for fresh random FVQA-mini looks, so the policy learns to see before it learns the world (null skips it).'),
  sft: z.strictObject({
    num_train_epochs: z.number().positive().default(1).describe('Passes over the warm-start trajectories (TrainingArguments.num_train_epochs; fractions stop part-way).'),
    learning_rate: z.number().positive().max(1).default(1e-3),
    per_device_train_batch_size: int().min(1).default(8).describe('Trajectories per forward/backward (the micro-batch, sorted by length to limit padding; TrainingArguments).'),
    gradient_accumulation_steps: int().min(1).default(2).describe('Micro-batches whose gradients add up to one optimizer step: an optimizer step trains per_device_train_batch_size x gradient_accumulation_steps trajectories (TrainingArguments).'),
    group_by_length: z.boolean().default(false).describe('Batch trajectories of similar length together (transformers TrainingArguments.group_by_length): far less padding.'),
    loss_agg_mode: z.enum(['token-mean', 'token-sum-norm']).default('token-mean').describe("How a step's token losses are averaged (veRL's actor.loss_agg_mode names): token-mean divides by the step's own trained tokens (transformers' Trainer), so with group_by_length a token of a short-trajectory batch weighs more than one of a long; token-sum-norm divides by a constant, the epoch's mean trained tokens per optimizer step, so every token weighs the same (a decision-neutral warm start whose direct answers are shorter than its searches stays neutral in its gradients)."),
    balance_decisions: z.boolean().default(false).describe("With group_by_length: each optimizer step that trains first-turn decisions trains as many trajectories of one question kind whose first turn answers as ones whose first turn searches (the rest is grouped by length as before), and a drill creature's rows (a look drill's answer and search) are dealt to the same epoch. Without it, length grouping puts answers (~80 tokens) and searches (~190) in steps of their own, and the look drills' answers and searches fall in alternate epochs, so a decision-neutral warm start trains each decision in one-sided steps and its search ratio ends wherever the last of them left it (fvqa-mini-caption: 7 of 2010 decision steps held both; scripts/sft-decisions.ts)."),
    warmup_ratio: z.number().min(0).max(1).default(0.05),
    lr_scheduler_type: z.enum(['cosine_with_min_lr', 'cosine']).default('cosine_with_min_lr').describe("After the warmup, cosine decay to lr_scheduler_kwargs.min_lr_rate x learning_rate (cosine_with_min_lr) or to 0 (cosine), transformers' names. The decision a decision-neutral warm start ends with wanders while the rate is high: sampled search_required search ratio 69, 34, 60, 53, 45, 59, 49, 56% every 100 steps from step 1400 of 2428 at the 0.1 floor (docs/fvqa-mini-warm-start.md, 2026-12-07 third session); decaying to 0 lets the last steps settle it."),
    lr_scheduler_kwargs: z.strictObject({
      min_lr_rate: z.number().min(0).max(1).optional().describe('cosine_with_min_lr: the final learning rate as a fraction of learning_rate (default 0.1).'),
    }).prefault({}),
    weight_decay: z.number().min(0).max(1).default(0.01),
    max_grad_norm: z.number().min(0).default(1),
  }).nullable().default(null).describe('Warm-start SFT before GRPO (null skips it).'),
  grpo: GRPOConfigSchema.prefault({}),
  rollout: z.strictObject({
    max_turn_tokens: int().min(1).default(64).describe('Tokens one assistant turn may generate.'),
  }).prefault({}),
  eval: z.strictObject({
    split: z.string().default('test'),
    max_rows: int().min(1).nullable().default(null).describe('Evaluate on N rows taken round-robin over the question kinds (null: all).'),
    modes: z.array(z.enum(['direct', 'rag', 'on_demand'])).min(1).default(['direct', 'rag', 'on_demand']),
    batch_size: int().min(1).default(32),
    after_sft: z.boolean().default(false).describe('Also evaluate the warm-start policy (on-demand mode) when SFT ends: the "before GRPO" row.'),
    temperature: z.number().min(0).default(0).describe('0: greedy (the paper\'s tables); > 0: sample at this temperature, e.g. the GRPO temperature to measure what GRPO sees.'),
    num_samples: int().min(1).default(1).describe('Trajectories per row when sampling (temperature > 0); summaries count trajectories.'),
  }).prefault({}),
  checkpoint_steps: int().min(1).default(10).describe('GRPO steps (and caption and SFT optimizer steps) between checkpoints.'),
}).superRefine((r, ctx) => {
  // input: undefined keeps the whole recipe out of the message (ConfigError quotes an issue's input).
  const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message, input: undefined });
  if (r.sft?.balance_decisions && !r.sft.group_by_length) issue(['sft', 'balance_decisions'], 'needs sft.group_by_length: true (batches that are not grouped by length already mix answers and searches)');
  if (r.sft?.balance_decisions && r.sft.per_device_train_batch_size * r.sft.gradient_accumulation_steps < 2) issue(['sft', 'balance_decisions'], 'needs optimizer steps of at least 2 trajectories (per_device_train_batch_size x gradient_accumulation_steps)');
  if (r.sft?.lr_scheduler_type === 'cosine' && r.sft.lr_scheduler_kwargs.min_lr_rate !== undefined) issue(['sft', 'lr_scheduler_kwargs', 'min_lr_rate'], 'applies to lr_scheduler_type cosine_with_min_lr; cosine decays to 0');
  if (r.caption?.name_copies && r.caption.name_copies_from_step >= r.caption.max_steps) issue(['caption', 'name_copies_from_step'], `${r.caption.name_copies_from_step} is not below caption.max_steps ${r.caption.max_steps}: no step would train the name copies`);
  if (r.data.source !== 'parquet') return;
  for (const split of ['train', 'test'] as const) if (!r.data[split]) issue(['data', split], 'data.source parquet needs a file: a path, an http(s) URL or hf:ORG/NAME[@REV]/FILE');
  if (r.sft) issue(['sft'], 'must be null with data.source parquet: FVQA parquet has no warm-start trajectories (FVQA-mini generates them)');
  if (r.caption) issue(['caption'], 'must be null with data.source parquet: its captions describe FVQA-mini creatures');
  if (r.search.backend === 'local') issue(['search', 'backend'], 'local searches the generated FVQA-mini corpus; with data.source parquet use proxy (npm run proxy; LOCAL_CORPUS_DIR serves a corpus folder)');
  if (r.eval.split !== 'train' && r.eval.split !== 'test') issue(['eval', 'split'], `"${r.eval.split}": parquet data has the splits train and test`);
});

export type Recipe = z.output<typeof RecipeSchema>;

/**
 * Validates a recipe object and fills in defaults.
 * @throws ConfigError naming every unknown or invalid field by its path
 */
export function parseRecipe(value: unknown, where = 'recipe'): Recipe {
  return parseWith(RecipeSchema, value, where);
}

/** Parses recipe JSON text. @throws ConfigError for invalid JSON or fields */
export function loadRecipe(json: string, where = 'recipe'): Recipe {
  return parseJsonWith(json, parseRecipe, where);
}

/**
 * The recipe's settings of the agent loop (rollout.ts `rollout`): search limits, per-turn and total
 * token budgets, results per search, prompt truncation, the instructions' form. Training,
 * evaluation and the lab's chat all run trajectories with these.
 * @param imageSize the policy's image side in pixels (0 for a text-only model).
 */
export function recipeRolloutOptions(recipe: Recipe, imageSize: number): Omit<RolloutOptions, 'sampling' | 'mode'> {
  const g = recipe.grpo;
  return {
    limits: searchLimits(g), maxTurnTokens: recipe.rollout.max_turn_tokens, maxCompletionLength: g.max_completion_length,
    resultsPerSearch: g.search.results_per_search, imageSize, withThumbnails: true, compactInstructions: recipe.model.compact_instructions,
    maxPromptLength: g.max_prompt_length,
  };
}

/**
 * The FVQA-mini generator settings of a recipe: data.fvqa_mini's keys as FvqaMiniConfig fields, with
 * the recipe's seed unless data.fvqa_mini sets its own.
 */
export function fvqaMiniConfig(recipe: Recipe): Partial<FvqaMiniConfig> {
  const out: Partial<Record<keyof FvqaMiniConfig, number>> = { seed: recipe.seed };
  for (const [k, v] of Object.entries(recipe.data.fvqa_mini)) out[FVQA_MINI_FIELDS.get(k)!] = v;
  return out;
}

/**
 * A generator error message in a recipe's terms: each FvqaMiniConfig field it names becomes its recipe
 * field ("readingDrills must be ..." -> "data.fvqa_mini.reading_drills must be ..."); one-word fields
 * (seed, entities) keep their names.
 */
export function inRecipeTerms(message: string): string {
  // Fields whose names are plain words (seed, entities) are left alone: the message may use the word.
  const renamed = [...FVQA_MINI_FIELDS].filter(([k, f]) => k !== f);
  return renamed.reduce((m, [k, f]) => m.replace(new RegExp(`\\b${f}\\b`, 'g'), `data.fvqa_mini.${k}`), message);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A recipe stored by an earlier version of the lab (a run folder's recipe.json, a shipped checkpoint, a
 * run in the lab's storage) with former field names replaced. SFT section: epochs ->
 * num_train_epochs; micro_batch_size -> per_device_train_batch_size and batch_size ->
 * gradient_accumulation_steps = batch_size / micro_batch_size (the same optimizer steps). data.fvqa_mini:
 * camelCase generator fields -> snake_case (heldOutEntities -> held_out_entities). Recipes people write
 * go through {@link parseRecipe}, which rejects the former names.
 * @throws Error when batch_size is not a multiple of micro_batch_size (no TrainingArguments equivalent)
 */
export function upgradeStoredRecipe(value: unknown, where = 'recipe'): unknown {
  if (!isObject(value)) return value;
  let out = value;
  if (isObject(value.data) && isObject(value.data.fvqa_mini)) {
    const fvqaMini = Object.fromEntries(Object.entries(value.data.fvqa_mini).map(([k, v]) => [fvqaMiniRecipeKey(k), v]));
    out = { ...out, data: { ...value.data, fvqa_mini: fvqaMini } };
  }
  if (!isObject(value.sft)) return out;
  const { epochs, batch_size, micro_batch_size, ...sft } = value.sft;
  if (epochs === undefined && batch_size === undefined && micro_batch_size === undefined) return out;
  if (epochs !== undefined) sft.num_train_epochs ??= epochs;
  if (batch_size !== undefined || micro_batch_size !== undefined) {
    // The former defaults: 16 trajectories per step, micro-batches of 8.
    const batch = Number(batch_size ?? 16), micro = Math.min(Number(micro_batch_size ?? 8), batch);
    if (batch % micro) throw new Error(`${where}: sft.batch_size ${batch} is not a multiple of sft.micro_batch_size ${micro}: set sft.per_device_train_batch_size and sft.gradient_accumulation_steps`);
    sft.per_device_train_batch_size = micro;
    sft.gradient_accumulation_steps = batch / micro;
  }
  return { ...out, sft };
}

/** A stored recipe's JSON text ({@link upgradeStoredRecipe}), validated. @throws ConfigError for invalid JSON or fields */
export function loadStoredRecipe(json: string, where = 'recipe'): Recipe {
  return parseJsonWith(json, (v, w) => parseRecipe(upgradeStoredRecipe(v, w), w), where);
}

/** The recipe sections a warm start (captioning + SFT) depends on; `--init-from` requires them equal. */
const WARM_START_SECTIONS = ['seed', 'model', 'data', 'search', 'caption', 'sft'] as const;

/**
 * A recipe's part that decides its warm start, per section of {@link WARM_START_SECTIONS}.
 * data.train_categories (the ablation without data balancing) and data.fvqa_mini.grpo_drills only pick
 * or add GRPO's prompts, so they are left out.
 */
function warmStartPart(r: Recipe, k: (typeof WARM_START_SECTIONS)[number]): unknown {
  return k === 'data' ? { ...r.data, train_categories: null, fvqa_mini: r.data.fvqa_mini && { ...r.data.fvqa_mini, grpo_drills: null } } : r[k];
}

/**
 * The sections of {@link WARM_START_SECTIONS} in which two recipes' warm starts differ (empty: a warm start
 * trained under `a` is one of `b`'s), in that order.
 */
export function warmStartDifferences(a: Recipe, b: Recipe): string[] {
  return WARM_START_SECTIONS.filter((k) => JSON.stringify(warmStartPart(a, k)) !== JSON.stringify(warmStartPart(b, k)));
}

/**
 * The top-level fields in which two recipes differ, name, description and seed aside (those do not decide
 * what a run of a given seed trains), in `a`'s field order.
 */
export function recipeDifferences(a: Recipe, b: Recipe): string[] {
  return (Object.keys(a) as (keyof Recipe)[]).filter((k) => !['name', 'description', 'seed'].includes(k) && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}
