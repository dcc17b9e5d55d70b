/**
 * Every learning-rate schedule of the lab, in one place: the schedules (constant, linear, cosine with
 * warmup, MMSearch-R1's sigmoid decay), the GRPO schedule of a recipe's `lr_scheduler_type`
 * (TrainingArguments names) and the warm-start SFT schedule. They live in the training layer, not the
 * engine: the engine's optimizers take a learning rate per step, and which rate a step gets is a
 * recipe's decision (TrainingArguments' warmup rules, MMSearch-R1's settings).
 */
import type { GRPOConfig } from './config.js';
import type { Recipe } from './recipe.js';

/** A learning-rate schedule: 0-based step -> learning rate. */
export type Schedule = (step: number) => number;

/** Constant learning rate (TRL lr_scheduler_type "constant"; veRL warmup_style "constant" after warmup). */
export const constantSchedule = (lr: number, warmupSteps = 0): Schedule => (step) => (step < warmupSteps ? (lr * (step + 1)) / warmupSteps : lr);

/**
 * Linear warmup from 0 to lr over warmupSteps, then cosine decay to minLrRatio·lr at totalSteps
 * (transformers get_cosine_schedule_with_warmup with a floor; veRL warmup_style "cosine").
 */
export function cosineSchedule(lr: number, warmupSteps: number, totalSteps: number, minLrRatio = 0): Schedule {
  return (step) => {
    if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
    const t = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return lr * (minLrRatio + (1 - minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * t)));
  };
}

/**
 * MMSearch-R1's sigmoid decay (multimodal-search-r1, mmsearch_r1/utils/torch_functional.py
 * `get_sigmoid_decay_schedule`, used when `lr_sigmoid_decay_warmup` is set): the factor falls
 * smoothly from about 1 to `1 - decayRatio`, halfway at `centerSteps`, with steepness
 * k = 1 / (0.1 · centerSteps):
 *   lr(step) = lr · ((1 - low) / (1 + exp(k · (step - centerSteps))) + low),  low = 1 - decayRatio.
 * decayRatio 0 (their default) keeps the rate constant. @throws when centerSteps ≤ 0
 */
export function sigmoidDecaySchedule(lr: number, decayRatio: number, centerSteps: number): Schedule {
  if (!(centerSteps > 0)) throw new Error(`sigmoidDecaySchedule: centerSteps must be > 0, got ${centerSteps}`);
  const low = 1 - decayRatio;
  const k = 1 / (0.1 * centerSteps);
  return (step) => lr * ((1 - low) / (1 + Math.exp(k * (step - centerSteps))) + low);
}

/** Linear warmup to lr over warmupSteps, then linear decay to 0 at totalSteps (transformers get_linear_schedule_with_warmup). */
export function linearSchedule(lr: number, warmupSteps: number, totalSteps: number): Schedule {
  return (s) => (s < warmupSteps ? (lr * (s + 1)) / warmupSteps : lr * Math.max(0, (totalSteps - s) / Math.max(1, totalSteps - warmupSteps)));
}

/**
 * Warmup steps as transformers resolves them: warmup_steps when > 0, else round(warmup_ratio · total)
 * (TrainingArguments.get_warmup_steps rounds up; the lab has always rounded to nearest).
 */
export function warmupSteps(g: Pick<GRPOConfig, 'warmup_steps' | 'warmup_ratio'>, totalSteps: number): number {
  return g.warmup_steps || Math.round(g.warmup_ratio * totalSteps);
}

/**
 * The learning rate of each 0-based GRPO optimizer step (one per generation batch trained on):
 * - linear: warmup from lr/warmup to lr, then lr·(total - step)/(total - warmup), reaching 0 at `totalSteps`
 *   (transformers get_linear_schedule_with_warmup);
 * - cosine: warmup, then cosine decay to 0 at `totalSteps` (get_cosine_schedule_with_warmup);
 * - constant / constant_with_warmup: lr (after warmup for the latter);
 * - sigmoid_decay: MMSearch-R1's schedule (multimodal-search-r1 `get_sigmoid_decay_schedule`, options
 *   lr_sigmoid_decay_ratio / lr_sigmoid_decay_warmup_steps = lr_scheduler_kwargs.decay_ratio / center_steps):
 *   lr·((1 - low)/(1 + exp(k·(step - c))) + low), low = 1 - decay_ratio, c = center_steps, k = 1/(0.1·c);
 *   no warmup (the schema rejects warmup with it).
 * @param totalSteps the run's GRPO steps (max_steps, or derived from num_train_epochs)
 * @returns step (0-based) -> learning rate
 */
export function grpoSchedule(g: Pick<GRPOConfig, 'learning_rate' | 'lr_scheduler_type' | 'lr_scheduler_kwargs' | 'warmup_steps' | 'warmup_ratio'>, totalSteps: number): Schedule {
  const lr = g.learning_rate;
  const warmup = warmupSteps(g, totalSteps);
  switch (g.lr_scheduler_type) {
    case 'cosine':
      return cosineSchedule(lr, warmup, totalSteps);
    case 'linear':
      return linearSchedule(lr, warmup, totalSteps);
    case 'constant':
      return constantSchedule(lr, 0);
    case 'constant_with_warmup':
      return constantSchedule(lr, warmup);
    case 'sigmoid_decay':
      return sigmoidDecaySchedule(lr, g.lr_scheduler_kwargs.decay_ratio, g.lr_scheduler_kwargs.center_steps);
  }
}

/**
 * The warm-start SFT (and captioning) schedule: linear warmup over round(warmup_ratio · total) steps, then
 * cosine decay at `totalSteps` to min_lr_rate · learning_rate (transformers cosine_with_min_lr; min_lr_rate
 * 0.1 unless the recipe sets it) or to 0 (cosine). The caption stage has no scheduler fields: it takes the default.
 * @param totalSteps the stage's optimizer steps
 * @returns 0-based optimizer step -> learning rate (the recipe's units: AdamW's step size)
 */
export function sftSchedule(s: Pick<NonNullable<Recipe['sft']>, 'learning_rate' | 'warmup_ratio'> & Partial<Pick<NonNullable<Recipe['sft']>, 'lr_scheduler_type' | 'lr_scheduler_kwargs'>>, totalSteps: number): Schedule {
  const minLrRate = s.lr_scheduler_type === 'cosine' ? 0 : (s.lr_scheduler_kwargs?.min_lr_rate ?? 0.1);
  return cosineSchedule(s.learning_rate, Math.round(s.warmup_ratio * totalSteps), totalSteps, minLrRate);
}
