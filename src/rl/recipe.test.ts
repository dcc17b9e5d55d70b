/** Every recipe in recipes/ validates; bad recipes are rejected with the field named. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { ConfigError } from './config.js';
import { fvqaMiniConfig, fvqaMiniRecipeKey, loadRecipe, loadStoredRecipe, parseRecipe, recipeDifferences, warmStartDifferences } from './recipe.js';
import { DEFAULT_FVQA_MINI } from '../data/fvqa-mini.js';
import { worldOf } from './environment.js';

const dir = new URL('../../recipes/', import.meta.url).pathname;

test('the shipped recipes validate', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  expect(files).toEqual(expect.arrayContaining(['fvqa-mini.json', 'fvqa-mini-no-search-penalty.json']));
  for (const f of files) {
    const r = loadRecipe(readFileSync(join(dir, f), 'utf8'), f);
    expect(r.name).toBe(f.replace(/\.json$/, ''));
  }
  // Each main recipe and its two ablations (the paper's), which start from its warm start.
  for (const name of ['fvqa-mini', 'fvqa-mini-balanced', 'fvqa-mini-caption', 'fvqa-mini-name-copies', 'fvqa-mini-unrecognised-looks']) {
    const main = loadRecipe(readFileSync(join(dir, `${name}.json`), 'utf8'));
    const ablation = loadRecipe(readFileSync(join(dir, `${name}-no-search-penalty.json`), 'utf8'));
    // The ablation differs from the main recipe only in its name, description, the search penalty and the
    // evaluated modes (its point is the on-demand search ratio).
    expect({ ...ablation, name: main.name, description: main.description, grpo: { ...ablation.grpo, reward: main.grpo.reward }, eval: { ...ablation.eval, modes: main.eval.modes } }).toEqual(main);
    expect(ablation.eval.modes).toEqual(['on_demand']);
    expect(ablation.grpo.reward.search_penalty).toBe(0);
    expect(main.grpo.reward.search_penalty).toBe(0.1);
    // The ablation without data balancing: GRPO prompts from search_required only, nothing else changed.
    const unbalanced = loadRecipe(readFileSync(join(dir, `${name}-search-required-only.json`), 'utf8'));
    expect({ ...unbalanced, name: main.name, description: main.description, data: { ...unbalanced.data, train_categories: null }, eval: { ...unbalanced.eval, modes: main.eval.modes } }).toEqual(main);
    expect(unbalanced.data.train_categories).toEqual(['search_required']);
    expect(main.data.train_categories).toBeNull();
  }
  // fvqa-mini-balanced (the main recipe until 2026-12-07) is fvqa-mini-caption (captioning, the name-piece tokenizer) with
  // a warm start neutral in what it trains: the guess's own first word, token-sum-norm and balanced steps (micro-batches
  // of 4, two to a step: the same 8 trajectories per optimizer step); and GRPO advantages scaled by the batch's reward std.
  const read = (n: string) => loadRecipe(readFileSync(join(dir, `${n}.json`), 'utf8'));
  const [balanced, caption] = ['fvqa-mini-balanced', 'fvqa-mini-caption'].map(read);
  expect(balanced.caption).not.toBeNull();
  expect(balanced.model.source).toBe('models/tiny-vlm-name-pieces');
  expect(balanced.data.fvqa_mini.recognition_first).toBe(3);
  expect(balanced.sft).toMatchObject({ loss_agg_mode: 'token-sum-norm', balance_decisions: true, per_device_train_batch_size: 4, gradient_accumulation_steps: 2 });
  expect({
    ...balanced, name: caption.name, description: caption.description,
    data: { ...balanced.data, fvqa_mini: { ...balanced.data.fvqa_mini, recognition_first: 2 } },
    sft: { ...balanced.sft!, loss_agg_mode: 'token-mean', balance_decisions: false, per_device_train_batch_size: 8, gradient_accumulation_steps: 1 },
    grpo: { ...balanced.grpo, scale_rewards: 'group' },
  }).toEqual(caption);
  expect(balanced.grpo.scale_rewards).toBe('batch');
  // fvqa-mini-name-copies: fvqa-mini-balanced with 8 name copies per caption step from the first, and look statements.
  const copies = read('fvqa-mini-name-copies');
  expect(balanced.caption!.name_copies).toBe(0);
  expect(balanced.data.fvqa_mini.visual_statement).toBeUndefined();
  expect({
    ...balanced, name: copies.name, description: copies.description, caption: { ...balanced.caption!, name_copies: 8 },
    data: { ...balanced.data, fvqa_mini: { ...balanced.data.fvqa_mini, visual_statement: 1 } },
  }).toEqual(copies);
  // fvqa-mini-unrecognised-looks states looks for unrecognised creatures only; the main recipe is it with the warm
  // start's learning rate decayed to 0.
  const [looks, main] = ['fvqa-mini-unrecognised-looks', 'fvqa-mini'].map(read);
  expect({ ...copies, name: looks.name, description: looks.description, data: { ...copies.data, fvqa_mini: { ...copies.data.fvqa_mini, visual_statement: 2 } } }).toEqual(looks);
  expect(looks.sft!.lr_scheduler_type).toBe('cosine_with_min_lr');
  expect({ ...looks, name: main.name, description: main.description, sft: { ...looks.sft!, lr_scheduler_type: 'cosine' } }).toEqual(main);
});

test('warm-start and whole-recipe differences: an ablation shares the warm start, another recipe does not', () => {
  const read = (n: string) => loadRecipe(readFileSync(join(dir, `${n}.json`), 'utf8'));
  const [main, noPenalty, unbalanced, caption] = ['fvqa-mini', 'fvqa-mini-no-search-penalty', 'fvqa-mini-search-required-only', 'fvqa-mini-caption'].map(read);
  expect([warmStartDifferences(noPenalty, main), recipeDifferences(noPenalty, main)]).toEqual([[], ['grpo', 'eval']]);
  // train_categories only picks GRPO's prompts: the data section differs, its warm-start part does not.
  expect([warmStartDifferences(unbalanced, main), recipeDifferences(unbalanced, main)]).toEqual([[], ['data', 'eval']]);
  expect(warmStartDifferences(main, { ...main, data: { ...main.data, fvqa_mini: { ...main.data.fvqa_mini, grpo_drills: 0 } } })).toEqual([]);
  expect(warmStartDifferences(caption, main)).toEqual(['data', 'caption', 'sft']);
  // Another seed is another world: its warm start differs, though recipeDifferences leaves the seed aside.
  expect([warmStartDifferences({ ...main, seed: 2 }, main), recipeDifferences({ ...main, seed: 2, name: 'x' }, main)]).toEqual([['seed'], []]);
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
  expect(err({ ...ok, sft: { num_train_epochs: 0 } })).toMatch(/sft\.num_train_epochs/);
  // The SFT section's former names: rejected, each error naming the TrainingArguments field that replaced it.
  expect(err({ ...ok, sft: { epochs: 2 } })).toMatch(/sft\.epochs: unknown field: renamed num_train_epochs/);
  expect(err({ ...ok, sft: { micro_batch_size: 8 } })).toMatch(/sft\.micro_batch_size: unknown field: renamed per_device_train_batch_size/);
  expect(err({ ...ok, sft: { batch_size: 16 } })).toMatch(/sft\.batch_size: unknown field: .*gradient_accumulation_steps/);
  expect(err({ ...ok, sft: { save_steps: 16 } })).toMatch(/sft\.save_steps: unknown field: checkpoint frequency is the recipe's top-level checkpoint_steps/);
  expect(err({ ...ok, grpo: { num_generations: 1 } })).toMatch(/grpo\.num_generations/);
  // TRL's save_steps: the recipe has one name for checkpoint frequency, and the error says which.
  expect(err({ ...ok, grpo: { save_steps: 5 } })).toMatch(/grpo\.save_steps: unknown field: checkpoint frequency is the recipe's top-level checkpoint_steps/);
  expect(parseRecipe({ ...ok, checkpoint_steps: 5 }).checkpoint_steps).toBe(5);
  expect(err({ ...ok, model: {} })).toMatch(/model\.source/);
  // data.fvqa_mini is snake_case like every recipe field: a generator field's camelCase name is refused with the key to use.
  expect(err({ ...ok, data: { fvqa_mini: { heldOutEntities: 2 } } })).toMatch(/data\.fvqa_mini\.heldOutEntities: unknown field: renamed held_out_entities/);
  expect(err({ ...ok, data: { fvqa_mini: { held_out: 2 } } })).toMatch(/data\.fvqa_mini\.held_out: unknown field: FVQA-mini settings are .*held_out_entities/);
  expect(() => loadRecipe('{', 'r.json')).toThrow(/r\.json: .*invalid JSON/);
});

test('a stored recipe with the SFT section\'s former names loads as the same optimizer steps', () => {
  const stored = { name: 'x', model: { source: 'models/tiny-vlm' }, data: {}, sft: { epochs: 14, batch_size: 16, micro_batch_size: 8, learning_rate: 0.003 } };
  const r = loadStoredRecipe(JSON.stringify(stored), 'runs/x/recipe.json');
  expect(r.sft).toMatchObject({ num_train_epochs: 14, per_device_train_batch_size: 8, gradient_accumulation_steps: 2, learning_rate: 0.003 });
  // A batch below the micro-batch was one micro-batch of the whole batch.
  expect(loadStoredRecipe(JSON.stringify({ ...stored, sft: { batch_size: 4, micro_batch_size: 8 } })).sft).toMatchObject({ per_device_train_batch_size: 4, gradient_accumulation_steps: 1 });
  expect(() => loadStoredRecipe(JSON.stringify({ ...stored, sft: { batch_size: 12, micro_batch_size: 8 } }), 'r.json')).toThrow(/r\.json: sft\.batch_size 12 is not a multiple of sft\.micro_batch_size 8/);
  expect(() => loadRecipe(JSON.stringify(stored))).toThrow(/sft\.epochs: unknown field: renamed num_train_epochs/);
});

test('data.fvqa_mini keys are the generator fields in snake_case; stored recipes with the former camelCase keys load as the same world', () => {
  const snake = loadRecipe(JSON.stringify({ name: 'x', seed: 4, model: { source: 'models/tiny-vlm' }, data: { fvqa_mini: { held_out_entities: 3, test_size: 12, hazy_fact_share: 0.3 } } }));
  expect(fvqaMiniConfig(snake)).toEqual({ seed: 4, heldOutEntities: 3, testSize: 12, hazyFactShare: 0.3 });
  // Every generator field has a recipe key, and back (no field lost to the naming).
  for (const f of Object.keys(DEFAULT_FVQA_MINI)) expect(fvqaMiniConfig(parseRecipe({ name: 'x', model: { source: 'm' }, data: { fvqa_mini: { [fvqaMiniRecipeKey(f)]: 1 } } }))).toHaveProperty(f, 1);
  const stored = { name: 'x', seed: 4, model: { source: 'models/tiny-vlm' }, data: { fvqa_mini: { heldOutEntities: 3, testSize: 12, hazyFactShare: 0.3 } } };
  expect(loadStoredRecipe(JSON.stringify(stored))).toEqual(snake);
  // A data.fvqa_mini seed overrides the recipe's, as before.
  expect(fvqaMiniConfig(parseRecipe({ ...stored, data: { fvqa_mini: { seed: 9 } } })).seed).toBe(9);
});

test("the world's generator rejects out-of-range data.fvqa_mini values under their recipe names", () => {
  const bad = (fvqa_mini: object) => () => worldOf(parseRecipe({ name: 'x', model: { source: 'models/tiny-vlm' }, data: { fvqa_mini } }));
  expect(bad({ reading_drills: -1 })).toThrow('recipe x: data.fvqa_mini.reading_drills must be a whole number in [0, 81920], got -1');
  expect(bad({ rag_chain_share: 2 })).toThrow('recipe x: data.fvqa_mini.rag_chain_share must be in [0, 1], got 2');
  expect(bad({ entities: 8, held_out_entities: 8 })).toThrow('recipe x: data.fvqa_mini.held_out_entities (8) must be below entities (8)');
});
