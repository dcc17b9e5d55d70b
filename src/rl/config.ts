/**
 * GRPO training configuration: TRL's GRPOConfig field names (with the transformers TrainingArguments
 * it inherits), plus MMSearch-R1's reward constants and search limits under `reward` and `search`.
 * Defaults are TRL's (huggingface/trl `trl/trainer/grpo_config.py` at f2cd577) unless a field says
 * otherwise; the paper's settings are noted where they differ. A recipe's GRPO section is JSON checked
 * by {@link GRPOConfigSchema}: unknown fields and out-of-range values are errors naming the field.
 */
import { z } from 'zod';
import { DEFAULT_LIMITS, RESULTS_PER_SEARCH, type SearchLimits } from '../protocol/tools.js';
import { LOSS_TYPES } from './grpo.js';

/** Where a field and its default come from. */
export type FieldSource = 'TRL GRPOConfig' | 'TrainingArguments' | 'MMSearch-R1' | 'veRL';

/** A type alias, not an interface, so that zod's `.meta()` (an index-signature type) accepts it. */
type FieldMeta = { help: string; source: FieldSource };
const doc = (source: FieldSource, help: string): FieldMeta => ({ source, help });

const int = () => z.number().int();
const prob = () => z.number().min(0).max(1);
/** TRL accepts `scale_rewards: true / false` for 'group' / 'none'. */
const scaleRewards = z.preprocess((v) => (v === true ? 'group' : v === false ? 'none' : v), z.enum(['group', 'batch', 'none']));

const RewardSchema = z.strictObject({
  format_penalty: prob().default(0.1).meta(doc('MMSearch-R1', 'a: weight of the format score; accuracy gets 1 - a (reward = (1 - a)·acc·P + a·format).')),
  search_penalty: prob().default(0.1).meta(doc('MMSearch-R1', 'Correct answers of a trajectory that searched are scaled by P = 1 - search_penalty (0.9).')),
  use_search_count_penalty: z.boolean().default(false).meta(doc('MMSearch-R1', 'Apply the search penalty once per search instead of once per trajectory.')),
  reward_mode: z.enum(['EM', 'SubEM']).default('EM').meta(doc('MMSearch-R1', 'Answer matching: exact match (EM, used in training) or substring match (SubEM).')),
});

const SearchSchema = z.strictObject({
  max_turns: int().min(1).max(3).default(DEFAULT_LIMITS.maxTurns).meta(doc('MMSearch-R1', 'Assistant turns per trajectory; a search asked for in the last one is not run (the format score allows at most 3).')),
  image_search_limit: int().min(0).default(DEFAULT_LIMITS.imageSearch).meta(doc('MMSearch-R1', 'Image searches per trajectory; a further request ends the trajectory.')),
  text_search_limit: int().min(0).default(DEFAULT_LIMITS.textSearch).meta(doc('MMSearch-R1', 'Text searches per trajectory; a further request ends the trajectory.')),
  results_per_search: int().min(1).max(20).default(RESULTS_PER_SEARCH).meta(doc('MMSearch-R1', 'Results returned by each image or text search (paper: 5).')),
});

const FilterGroupsSchema = z.strictObject({
  enable: z.boolean().default(false).meta(doc('veRL', 'Drop groups whose rewards all agree (zero std, no signal) and sample further generation batches of new prompts until the kept groups fill the step; logs filter_groups/kept_groups, filter_groups/filtered_groups and train/num_gen_batches.')),
  max_num_gen_batches: int().min(0).default(0).meta(doc('veRL', 'Most generation batches one step may sample while filtering; reaching it with the batch not full stops training with an error (veRL). 0 = no limit.')),
});

/** TrainingArguments `lr_scheduler_type` values the lab implements, plus MMSearch-R1's sigmoid decay. */
export const LR_SCHEDULER_TYPES = ['linear', 'cosine', 'constant', 'constant_with_warmup', 'sigmoid_decay'] as const;

/** MMSearch-R1's paper run (mmsearch_r1/scripts/run_mmsearch_r1_grpo.sh): lr_sigmoid_decay_ratio 0.95, lr_sigmoid_decay_warmup_steps 45. */
const LrSchedulerKwargsSchema = z.strictObject({
  decay_ratio: prob().default(0.95).meta(doc('MMSearch-R1', "sigmoid_decay: share of the learning rate lost in the end, lr_sigmoid_decay_ratio (the paper's run: 0.95; 0 keeps the rate constant).")),
  center_steps: z.number().positive().default(45).meta(doc('MMSearch-R1', "sigmoid_decay: step at which half of the decay is done, lr_sigmoid_decay_warmup_steps (the paper's run: 45).")),
});

const LR_SCHEDULER_KWARGS_DEFAULTS = LrSchedulerKwargsSchema.parse({});

/**
 * Fields a TRL user may expect in the GRPO section that the lab keeps elsewhere: an unknown-field error
 * for one of these says where the setting lives.
 */
const CHECKPOINT_STEPS = "checkpoint frequency is the recipe's top-level checkpoint_steps (GRPO steps and SFT steps between checkpoints; TrainingArguments save_steps); set it there";
const MOVED_FIELDS: Readonly<Record<string, string>> = {
  save_steps: CHECKPOINT_STEPS,
  // Former names of the recipe's SFT section (now TrainingArguments'), by full path.
  'sft.epochs': 'renamed num_train_epochs (transformers TrainingArguments)',
  'sft.micro_batch_size': 'renamed per_device_train_batch_size (TrainingArguments: trajectories per forward/backward)',
  'sft.batch_size': 'an optimizer step now trains per_device_train_batch_size x gradient_accumulation_steps trajectories (TrainingArguments); set gradient_accumulation_steps = batch_size / per_device_train_batch_size',
};

/**
 * The GRPO section of a recipe. Parse with {@link parseGRPOConfig} (or embed this schema in a larger
 * recipe schema and report errors with {@link formatIssues}).
 */
export const GRPOConfigSchema = z
  .strictObject({
    // Optimisation (TrainingArguments, with GRPOConfig's override of learning_rate).
    learning_rate: z.number().positive().max(1).default(1e-6).meta(doc('TRL GRPOConfig', 'Peak AdamW learning rate (paper: 2e-6).')),
    per_device_train_batch_size: int().min(1).default(8).meta(doc('TrainingArguments', 'Rollouts per micro-batch (one forward/backward).')),
    gradient_accumulation_steps: int().min(1).default(1).meta(doc('TrainingArguments', 'Micro-batches whose gradients add up to one optimizer step.')),
    max_grad_norm: z.number().min(0).default(1).meta(doc('TrainingArguments', 'Clip the global gradient L2 norm to this (0 disables; veRL also 1.0).')),
    weight_decay: z.number().min(0).max(1).default(0).meta(doc('TrainingArguments', 'Decoupled AdamW weight decay (veRL: 0.01).')),
    adam_beta1: z.number().min(0).lt(1).default(0.9).meta(doc('TrainingArguments', 'AdamW β1 (first-moment decay).')),
    adam_beta2: z.number().min(0).lt(1).default(0.999).meta(doc('TrainingArguments', 'AdamW β2 (second-moment decay).')),
    adam_epsilon: z.number().positive().default(1e-8).meta(doc('TrainingArguments', 'AdamW ε added to √v̂.')),
    lr_scheduler_type: z.enum(LR_SCHEDULER_TYPES).default('linear').meta(doc('TrainingArguments', "Learning-rate schedule: linear (warmup, then linear decay to 0 at the last step), cosine (warmup, then cosine decay to 0), constant, constant_with_warmup, or sigmoid_decay (MMSearch-R1's lr_sigmoid_decay_warmup: lr·((1 - low)/(1 + exp(k·(step - c))) + low), low = 1 - decay_ratio, c = center_steps, k = 1/(0.1·c): about lr for the first steps, halfway at step c, then towards low·lr; no linear warmup; its settings are lr_scheduler_kwargs).")),
    lr_scheduler_kwargs: LrSchedulerKwargsSchema.prefault({}).meta(doc('TrainingArguments', 'Settings of the schedule (transformers passes these to the scheduler); the lab has those of sigmoid_decay only.')),
    warmup_ratio: prob().default(0).meta(doc('TrainingArguments', 'Share of the training steps spent warming the learning rate up from 0.')),
    warmup_steps: int().min(0).default(0).meta(doc('TrainingArguments', 'Warmup steps; overrides warmup_ratio when > 0.')),
    max_steps: int().min(-1).default(-1).meta(doc('TrainingArguments', 'Optimizer steps to train; -1 = num_train_epochs passes over the prompts (paper: 50).')),
    num_train_epochs: z.number().positive().default(3).meta(doc('TrainingArguments', 'Passes over the training prompts when max_steps is -1.')),
    seed: int().min(0).nullable().default(null).meta(doc('TrainingArguments', "Seed of GRPO's rollout sampling and prompt order; null = the recipe's seed (which also seeds the model, the data and SFT). TRL's default is 42.")),
    logging_steps: int().min(1).default(1).meta(doc('TRL GRPOConfig', "Metrics are emitted after every logging_steps-th GRPO step (step % logging_steps == 0, as transformers' Trainer), each the mean over the steps since the last emission (learning_rate and grad_norm: the last step's); a last partial window is not emitted. Lab default 1 so that the charts get every step (TRL: 10).")),

    // Generation.
    num_generations: int().min(2).default(8).meta(doc('TRL GRPOConfig', 'G: rollouts sampled per prompt; advantages are relative to the group (paper: 8).')),
    generation_batch_size: int().min(1).nullable().default(null).meta(doc('TRL GRPOConfig', 'Rollouts per generation batch; null = per_device_train_batch_size · steps_per_generation.')),
    steps_per_generation: int().min(1).nullable().default(null).meta(doc('TRL GRPOConfig', 'Micro-batches each generation batch is split into; null = gradient_accumulation_steps.')),
    temperature: z.number().positive().max(10).default(1).meta(doc('TRL GRPOConfig', 'Sampling temperature; the loss log-probs use log_softmax(logits / temperature) too.')),
    top_p: z.number().gt(0).max(1).default(1).meta(doc('TRL GRPOConfig', 'Nucleus sampling: keep the smallest token set with this much probability (1 = off).')),
    top_k: int().min(0).default(0).meta(doc('TRL GRPOConfig', 'Sample among the k most likely tokens (0 = off).')),
    max_prompt_length: int().min(1).default(512).meta(doc('TRL GRPOConfig', 'Longest prompt in tokens, image tokens included; longer prompts keep their last max_prompt_length tokens (left truncation, as TRL), and a cut that would reach an image token is an error (TRL ≤ 0.2x field).')),
    max_completion_length: int().min(1).default(512).meta(doc('TRL GRPOConfig', "Longest completion in tokens, all turns and tool results together; also dr_grpo's normaliser.")),
    mask_truncated_completions: z.boolean().default(false).meta(doc('TRL GRPOConfig', 'Leave completions cut off at max_completion_length out of the loss.')),

    // GRPO objective.
    beta: z.number().min(0).default(0).meta(doc('TRL GRPOConfig', 'KL (k3) coefficient to the reference policy; 0 skips the reference pass (paper: 0.001).')),
    epsilon: z.number().min(0).lt(1).default(0.2).meta(doc('TRL GRPOConfig', 'Clip the ratio below at 1 - epsilon (and above at 1 + epsilon unless epsilon_high is set; paper: 0.2).')),
    epsilon_high: z.number().min(0).nullable().default(null).meta(doc('TRL GRPOConfig', 'Upper clip 1 + epsilon_high; null = epsilon (DAPO suggests 0.28).')),
    loss_type: z.enum(LOSS_TYPES).default('dapo').meta(doc('TRL GRPOConfig', 'Token-loss aggregation: grpo (per-sequence means), bnpo (micro-batch token mean), dr_grpo (sum / (B·max_completion_length)), dapo (sum / generation-batch tokens).')),
    scale_rewards: scaleRewards.default('group').meta(doc('TRL GRPOConfig', "Divide advantages by the group std ('group'), the batch std ('batch') or not ('none' = Dr. GRPO); true/false mean group/none.")),
    num_iterations: int().min(1).default(1).meta(doc('TRL GRPOConfig', 'μ: optimisation passes over each generation batch; above 1 the stored old log-probs and the clip matter.')),
    filter_groups: FilterGroupsSchema.prefault({}).meta(doc('veRL', 'DAPO dynamic sampling (veRL algorithm.filter_groups): train only on groups whose rewards differ, sampling more prompts until the batch is full.')),

    // MMSearch-R1.
    reward: RewardSchema.prefault({}).meta(doc('MMSearch-R1', 'Reward constants (paper section 3.2).')),
    search: SearchSchema.prefault({}).meta(doc('MMSearch-R1', 'Tool-use limits per trajectory (paper section 3.1).')),
  })
  .superRefine((c, ctx) => {
    // Each issue quotes the offending field's value (without `input`, zod quotes the whole section).
    if (c.lr_scheduler_type === 'sigmoid_decay') {
      // MMSearch-R1's sigmoid schedule replaces the warmup schedule (src/rl/schedule.ts sigmoidDecaySchedule has none).
      for (const f of ['warmup_steps', 'warmup_ratio'] as const)
        if (c[f] > 0) ctx.addIssue({ code: 'custom', path: [f], input: c[f], message: 'sigmoid_decay has no linear warmup (MMSearch-R1): the rate starts at about learning_rate and stays there for about lr_scheduler_kwargs.center_steps steps; set 0' });
    } else {
      for (const [f, v] of Object.entries(c.lr_scheduler_kwargs) as [keyof typeof c.lr_scheduler_kwargs, number][])
        if (v !== LR_SCHEDULER_KWARGS_DEFAULTS[f]) ctx.addIssue({ code: 'custom', path: ['lr_scheduler_kwargs', f], input: v, message: `only lr_scheduler_type sigmoid_decay reads it (lr_scheduler_type is ${c.lr_scheduler_type})` });
    }
    // The batching rules of TRL GRPOConfig.__post_init__.
    if (c.generation_batch_size !== null && c.steps_per_generation !== null)
      ctx.addIssue({ code: 'custom', path: ['steps_per_generation'], input: c.steps_per_generation, message: 'generation_batch_size and steps_per_generation cannot both be set' });
    else if (c.generation_batch_size !== null && c.generation_batch_size % c.per_device_train_batch_size !== 0)
      ctx.addIssue({ code: 'custom', path: ['generation_batch_size'], input: c.generation_batch_size, message: `${c.generation_batch_size} is not a multiple of per_device_train_batch_size ${c.per_device_train_batch_size}` });
    else {
      const { generation_batch_size: n } = resolveGenerationBatch(c);
      if (n % c.num_generations !== 0)
        ctx.addIssue({ code: 'custom', path: ['generation_batch_size'], input: n, message: `the generation batch (${n} rollouts) must hold whole groups of num_generations ${c.num_generations}` });
    }
  });

/** A validated GRPO configuration, every field present. */
export type GRPOConfig = z.output<typeof GRPOConfigSchema>;

/** One validation problem: the dotted field path (e.g. `reward.search_penalty`) and what is wrong. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** A recipe that failed validation; the message lists every issue as `path: message`. */
export class ConfigError extends Error {
  constructor(
    readonly issues: ConfigIssue[],
    where = 'recipe',
  ) {
    super(`${where}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Zod issues as {@link ConfigIssue}s; unknown keys become one issue per key, named by its full path
 * (a TRL field the lab keeps elsewhere, such as `save_steps`, says where).
 * Parse with `{ reportInput: true }` to have the offending value quoted.
 */
export function formatIssues(error: z.ZodError, prefix: readonly (string | number)[] = []): ConfigIssue[] {
  return error.issues.flatMap((i) => {
    const base = [...prefix, ...i.path.map(String)];
    if (i.code === 'unrecognized_keys')
      return i.keys.map((k) => {
        const path = [...base, k].join('.'), moved = MOVED_FIELDS[path] ?? MOVED_FIELDS[k];
        return { path, message: moved ? `unknown field: ${moved}` : 'unknown field' };
      });
    const got = i.input === undefined ? '' : ` (got ${JSON.stringify(i.input)})`;
    return [{ path: base.join('.'), message: i.message + got }];
  });
}

/**
 * Validates a GRPO configuration object (a parsed recipe section) and fills in the defaults.
 * @param where names the source in errors (a file path)
 * @throws ConfigError naming every unknown or invalid field
 */
export function parseGRPOConfig(value: unknown, where = 'recipe'): GRPOConfig {
  return parseWith(GRPOConfigSchema, value, where);
}

/**
 * Validates `value` against a zod schema, defaults filled in.
 * @throws ConfigError naming every unknown or invalid field by its path
 */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value, { reportInput: true });
  if (!r.success) throw new ConfigError(formatIssues(r.error), where);
  return r.data;
}

/** Parses JSON text, then validates it with `parse`. @throws ConfigError for invalid JSON or fields */
export function parseJsonWith<T>(json: string, parse: (value: unknown, where: string) => T, where: string): T {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw new ConfigError([{ path: '', message: `invalid JSON: ${(e as Error).message}` }], where);
  }
  return parse(value, where);
}

/**
 * Parses and validates recipe JSON text.
 * @throws ConfigError for invalid JSON or an invalid configuration
 */
export function loadGRPOConfig(json: string, where = 'recipe'): GRPOConfig {
  return parseJsonWith(json, parseGRPOConfig, where);
}

/**
 * The generation batch as TRL resolves it: with neither set, steps_per_generation =
 * gradient_accumulation_steps; generation_batch_size = per_device_train_batch_size · steps_per_generation
 * (one device). TRL's dapo divides every micro-batch by the loss tokens of this whole batch.
 */
export function resolveGenerationBatch(c: Pick<GRPOConfig, 'generation_batch_size' | 'steps_per_generation' | 'per_device_train_batch_size' | 'gradient_accumulation_steps'>): {
  steps_per_generation: number;
  generation_batch_size: number;
} {
  if (c.generation_batch_size !== null)
    return { generation_batch_size: c.generation_batch_size, steps_per_generation: c.generation_batch_size / c.per_device_train_batch_size };
  const steps = c.steps_per_generation ?? c.gradient_accumulation_steps;
  return { steps_per_generation: steps, generation_batch_size: c.per_device_train_batch_size * steps };
}

/** The search section as the rollout's {@link SearchLimits}. */
export function searchLimits(c: Pick<GRPOConfig, 'search'>): SearchLimits {
  return { maxTurns: c.search.max_turns, imageSearch: c.search.image_search_limit, textSearch: c.search.text_search_limit };
}

/** Documentation of one field, for the lab's UI. */
export interface FieldDoc extends FieldMeta {
  /** Dotted path, e.g. `learning_rate` or `reward.format_penalty`. */
  path: string;
  default: unknown;
}

function collectDocs(shape: Record<string, z.ZodType>, defaults: Record<string, unknown>, prefix: string): FieldDoc[] {
  return Object.entries(shape).flatMap(([key, schema]) => {
    const meta = schema.meta() as FieldMeta | undefined;
    if (!meta) throw new Error(`config: field ${prefix}${key} has no documentation`);
    const own: FieldDoc = { path: prefix + key, help: meta.help, source: meta.source, default: defaults[key] };
    const inner = schema instanceof z.ZodPrefault ? schema.unwrap() : null;
    return inner instanceof z.ZodObject ? [own, ...collectDocs(inner.shape, defaults[key] as Record<string, unknown>, `${prefix}${key}.`)] : [own];
  });
}

/** The defaults, as a parsed empty recipe. */
export const GRPO_DEFAULTS: GRPOConfig = GRPOConfigSchema.parse({});

/** Every field with its one-line explanation, source and default, in declaration order (nested fields after their section). */
export const GRPO_CONFIG_DOCS: readonly FieldDoc[] = collectDocs(
  (GRPOConfigSchema as unknown as { shape: Record<string, z.ZodType> }).shape,
  GRPO_DEFAULTS as unknown as Record<string, unknown>,
  '',
);
