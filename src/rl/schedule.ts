/**
 * The GRPO learning-rate schedule from a recipe's `lr_scheduler_type` (TrainingArguments names) and
 * MMSearch-R1's sigmoid decay. The schedules themselves are the engine's (src/engine/optim.ts).
 */
import { constantSchedule, cosineSchedule, sigmoidDecaySchedule, type Schedule } from '../engine/index.js';
import type { GRPOConfig } from './config.js';

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
      return (s) => (s < warmup ? (lr * (s + 1)) / warmup : lr * Math.max(0, (totalSteps - s) / Math.max(1, totalSteps - warmup)));
    case 'constant':
      return constantSchedule(lr, 0);
    case 'constant_with_warmup':
      return constantSchedule(lr, warmup);
    case 'sigmoid_decay':
      return sigmoidDecaySchedule(lr, g.lr_scheduler_kwargs.decay_ratio, g.lr_scheduler_kwargs.center_steps);
  }
}
