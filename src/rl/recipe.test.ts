/** Every recipe in recipes/ validates; bad recipes are rejected with the field named. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { ConfigError } from './config.js';
import { loadRecipe, parseRecipe } from './recipe.js';

const dir = new URL('../../recipes/', import.meta.url).pathname;

test('the shipped recipes validate', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  expect(files).toEqual(expect.arrayContaining(['fvqa-mini.json', 'fvqa-mini-no-search-penalty.json']));
  for (const f of files) {
    const r = loadRecipe(readFileSync(join(dir, f), 'utf8'), f);
    expect(r.name).toBe(f.replace(/\.json$/, ''));
  }
  const main = loadRecipe(readFileSync(join(dir, 'fvqa-mini.json'), 'utf8'));
  const ablation = loadRecipe(readFileSync(join(dir, 'fvqa-mini-no-search-penalty.json'), 'utf8'));
  // The ablation differs from the main recipe only in its name, description, the search penalty and the
  // evaluated modes (its point is the on-demand search ratio).
  expect({ ...ablation, name: main.name, description: main.description, grpo: { ...ablation.grpo, reward: main.grpo.reward }, eval: { ...ablation.eval, modes: main.eval.modes } }).toEqual(main);
  expect(ablation.eval.modes).toEqual(['on_demand']);
  expect(ablation.grpo.reward.search_penalty).toBe(0);
  expect(main.grpo.reward.search_penalty).toBe(0.1);
  // The ablation without data balancing: GRPO prompts from search_required only, nothing else changed.
  const unbalanced = loadRecipe(readFileSync(join(dir, 'fvqa-mini-search-required-only.json'), 'utf8'));
  expect({ ...unbalanced, name: main.name, description: main.description, data: { ...unbalanced.data, train_categories: null }, eval: { ...unbalanced.eval, modes: main.eval.modes } }).toEqual(main);
  expect(unbalanced.data.train_categories).toEqual(['search_required']);
  expect(main.data.train_categories).toBeNull();
});

test('unknown, missing and out-of-range fields are named', () => {
  const ok = { name: 'x', model: { source: 'models/tiny-vlm' }, data: {} };
  expect(parseRecipe(ok).grpo.loss_type).toBe('dapo');
  const err = (v: unknown) => {
    try {
      parseRecipe(v, 'r.json');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('accepted');
  };
  expect(err({ ...ok, extra: 1 })).toMatch(/r\.json: .*extra: unknown field/);
  expect(err({ ...ok, sft: { epochs: 0 } })).toMatch(/sft\.epochs/);
  expect(err({ ...ok, grpo: { num_generations: 1 } })).toMatch(/grpo\.num_generations/);
  // TRL's save_steps: the recipe has one name for checkpoint frequency, and the error says which.
  expect(err({ ...ok, grpo: { save_steps: 5 } })).toMatch(/grpo\.save_steps: unknown field: checkpoint frequency is the recipe's top-level checkpoint_steps/);
  expect(parseRecipe({ ...ok, checkpoint_steps: 5 }).checkpoint_steps).toBe(5);
  expect(err({ ...ok, model: {} })).toMatch(/model\.source/);
  expect(() => loadRecipe('{', 'r.json')).toThrow(/r\.json: .*invalid JSON/);
});
