/**
 * The lab's browser tests train a micro model (the lab's `models/tiny-vlm-micro`) on a small FVQA-mini
 * world so that a whole run takes minutes: too small to learn the task, which is why the lab offers it
 * as no preset. Tests load it through Setup's "Load JSON".
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { loadRecipe } from '../src/rl/recipe.js';

const root = join(import.meta.dirname, '..');

/**
 * The smoke recipe: recipes/fvqa-mini.json with the micro model, a 16-entity world, a short SFT and 2
 * GRPO steps with groups of 2, on-demand evaluation of 8 test rows; `patch` overrides top-level fields.
 */
export function smokeRecipe(patch: Record<string, unknown> = {}): Record<string, unknown> {
  const base = loadRecipe(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'), 'recipes/fvqa-mini.json');
  return {
    ...base,
    name: 'fvqa-mini-smoke',
    description: 'Smoke run: a micro VLM on a 16-entity FVQA-mini world, short SFT, 2 GRPO steps, on-demand evaluation of 8 test rows.',
    model: { ...base.model, source: 'models/tiny-vlm-micro' },
    caption: null,
    data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, held_out_entities: 2, test_size: 8 } },
    // A short SFT that ends at a tenth of its rate (the schedule the browser tests' numbers were set with), not at 0.
    sft: { ...base.sft, num_train_epochs: 3, learning_rate: 0.005, warmup_ratio: 0, lr_scheduler_type: 'cosine_with_min_lr', per_device_train_batch_size: 16, gradient_accumulation_steps: 1 },
    grpo: { ...base.grpo, num_generations: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 1, max_steps: 2, learning_rate: 0.0005, max_completion_length: 200, search: { ...base.grpo.search, results_per_search: 2 } },
    rollout: { max_turn_tokens: 32 },
    eval: { split: 'test', modes: ['on_demand'], batch_size: 8 },
    checkpoint_steps: 1,
    ...patch,
  };
}

/** Loads `recipe` in the lab's Setup (its "Load JSON" input) and waits until the Train card shows its name. */
export async function loadRecipeInLab(page: Page, dir: string, recipe: Record<string, unknown>): Promise<void> {
  const path = join(dir, `${recipe.name}.json`);
  writeFileSync(path, JSON.stringify(recipe));
  await page.click('[data-tab=setup]');
  await page.setInputFiles('.setup input[type=file][accept=".json,application/json"]', path);
  await page.waitForSelector(`h2:has-text("Recipe: ${recipe.name}")`);
}
