/**
 * GRPOConfig: TRL defaults, documentation of every field, and recipe errors that name the field.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ConfigError, GRPO_CONFIG_DOCS, GRPO_DEFAULTS, loadGRPOConfig, parseGRPOConfig, resolveGenerationBatch, searchLimits } from './config.js';

/** The ConfigError thrown by parsing `value`. */
function errorOf(value: unknown): ConfigError {
  try {
    parseGRPOConfig(value, 'test.json');
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  test("TRL's GRPOConfig / TrainingArguments defaults and MMSearch-R1's constants", () => {
    expect(GRPO_DEFAULTS).toMatchObject({
      learning_rate: 1e-6,
      num_generations: 8,
      beta: 0,
      epsilon: 0.2,
      epsilon_high: null,
      loss_type: 'dapo',
      scale_rewards: 'group',
      temperature: 1,
      max_completion_length: 512,
      num_iterations: 1,
      max_grad_norm: 1,
      adam_beta2: 0.999,
      // Lab defaults that differ from TRL's on purpose: GRPO follows the recipe's seed (TRL: 42), and
      // every step is logged so that the charts get every step (TRL: 10).
      seed: null,
      logging_steps: 1,
      lr_scheduler_type: 'linear',
      lr_scheduler_kwargs: { decay_ratio: 0.95, center_steps: 45 },
      reward: { format_penalty: 0.1, search_penalty: 0.1, reward_mode: 'EM', use_search_count_penalty: false },
      search: { max_turns: 3, image_search_limit: 1, text_search_limit: 2, results_per_search: 5 },
    });
  });

  test('every field, nested ones included, has a one-line explanation and its default', () => {
    const leaves = (o: Record<string, unknown>, prefix = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' ? [prefix + k, ...leaves(v as Record<string, unknown>, `${prefix}${k}.`)] : [prefix + k]));
    expect(GRPO_CONFIG_DOCS.map((d) => d.path)).toEqual(leaves(GRPO_DEFAULTS as unknown as Record<string, unknown>));
    for (const d of GRPO_CONFIG_DOCS) {
      expect(d.help.length, d.path).toBeGreaterThan(10);
      expect(d.help, d.path).not.toContain('\n');
    }
    expect(GRPO_CONFIG_DOCS.find((d) => d.path === 'reward.search_penalty')).toMatchObject({ default: 0.1, source: 'MMSearch-R1' });
  });

  test("sigmoid_decay takes MMSearch-R1's settings; a parsed config round-trips", () => {
    const c = parseGRPOConfig({ lr_scheduler_type: 'sigmoid_decay', lr_scheduler_kwargs: { decay_ratio: 0.5, center_steps: 20 } });
    expect(c.lr_scheduler_kwargs).toEqual({ decay_ratio: 0.5, center_steps: 20 });
    expect(parseGRPOConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
    expect(GRPO_CONFIG_DOCS.find((d) => d.path === 'lr_scheduler_type')!.help).toContain('sigmoid_decay');
    expect(parseGRPOConfig({ seed: 7 }).seed).toBe(7);
  });

  test('scale_rewards true / false mean group / none, as in TRL', () => {
    expect(parseGRPOConfig({ scale_rewards: false }).scale_rewards).toBe('none');
    expect(parseGRPOConfig({ scale_rewards: true }).scale_rewards).toBe('group');
  });
});

describe('errors name the field', () => {
  test.each([
    [{ learning_rat: 1e-6 }, 'learning_rat: unknown field'],
    [{ reward: { search_penality: 0.1 } }, 'reward.search_penality: unknown field'],
    [{ beta: -0.1 }, 'beta: Too small'],
    [{ epsilon: 1 }, 'epsilon: Too big'],
    [{ num_generations: 1 }, 'num_generations: Too small'],
    [{ num_generations: 2.5 }, 'num_generations: Invalid input: expected int'],
    [{ loss_type: 'ppo' }, 'loss_type: Invalid option'],
    [{ temperature: '1' }, 'temperature: Invalid input: expected number'],
    [{ reward: { search_penalty: 1.5 } }, 'reward.search_penalty: Too big'],
    [{ search: { max_turns: 4 } }, 'search.max_turns: Too big'],
    [{ generation_batch_size: 16, steps_per_generation: 2 }, 'steps_per_generation: generation_batch_size and steps_per_generation cannot both be set'],
    [{ generation_batch_size: 12 }, 'generation_batch_size: 12 is not a multiple of per_device_train_batch_size 8'],
    [{ per_device_train_batch_size: 4 }, 'generation_batch_size: the generation batch (4 rollouts) must hold whole groups of num_generations 8'],
    // One name for checkpoint frequency: the recipe's checkpoint_steps.
    [{ save_steps: 5 }, "save_steps: unknown field: checkpoint frequency is the recipe's top-level checkpoint_steps"],
    [{ lr_scheduler_type: 'sigmoid_decay', warmup_ratio: 0.1 }, 'warmup_ratio: sigmoid_decay has no linear warmup'],
    [{ lr_scheduler_type: 'sigmoid_decay', warmup_steps: 3 }, 'warmup_steps: sigmoid_decay has no linear warmup'],
    [{ lr_scheduler_kwargs: { center_steps: 10 } }, 'lr_scheduler_kwargs.center_steps: only lr_scheduler_type sigmoid_decay reads it (lr_scheduler_type is linear)'],
    [{ lr_scheduler_type: 'sigmoid_decay', lr_scheduler_kwargs: { center_steps: 0 } }, 'lr_scheduler_kwargs.center_steps: Too small'],
    [{ lr_scheduler_type: 'sigmoid_decay', lr_scheduler_kwargs: { num_cycles: 1 } }, 'lr_scheduler_kwargs.num_cycles: unknown field'],
    [{ seed: -1 }, 'seed: Too small'],
    [{ logging_steps: 0 }, 'logging_steps: Too small'],
  ])('%j', (value, want) => {
    const e = errorOf(value);
    expect(e.message).toContain('test.json: ');
    expect(e.message).toContain(want);
  });

  test('every issue is reported, with the offending value', () => {
    const e = errorOf({ beta: -1, foo: 1, search: { bar: 2 } });
    expect(e.issues.map((i) => i.path).sort()).toEqual(['beta', 'foo', 'search.bar']);
    expect(e.issues.find((i) => i.path === 'beta')!.message).toContain('(got -1)');
    // Cross-field rules quote the field's own value, not the whole section.
    expect(errorOf({ generation_batch_size: 12 }).issues[0].message).toMatch(/ \(got 12\)$/);
    expect(errorOf({ lr_scheduler_type: 'sigmoid_decay', warmup_ratio: 0.1 }).issues[0].message).toMatch(/ \(got 0\.1\)$/);
  });

  test('invalid JSON', () => {
    expect(() => loadGRPOConfig('{"beta": }', 'r.json')).toThrow(/r\.json: \(root\): invalid JSON/);
  });
});

describe('helpers', () => {
  test('generation batch as TRL resolves it', () => {
    // Neither set: steps_per_generation = gradient_accumulation_steps = 4, generation batch 8·4 = 32.
    expect(resolveGenerationBatch(parseGRPOConfig({ gradient_accumulation_steps: 4 }))).toEqual({ steps_per_generation: 4, generation_batch_size: 32 });
    // generation_batch_size 64 / per_device_train_batch_size 8 = 8 steps.
    expect(resolveGenerationBatch(parseGRPOConfig({ generation_batch_size: 64 }))).toEqual({ steps_per_generation: 8, generation_batch_size: 64 });
  });
  test('search limits for the rollout', () => {
    expect(searchLimits(parseGRPOConfig({ search: { text_search_limit: 1 } }))).toEqual({ maxTurns: 3, imageSearch: 1, textSearch: 1 });
  });
});

describe('recipes/smolvlm-256m-lora.json (GRPO section)', () => {
  test("validates, carries the paper's settings, and round-trips", () => {
    const text = readFileSync(new URL('../../recipes/smolvlm-256m-lora.json', import.meta.url), 'utf8');
    const c = loadGRPOConfig(JSON.stringify(JSON.parse(text).grpo));
    expect(c).toMatchObject({ learning_rate: 2e-6, beta: 0.001, num_generations: 8, max_steps: 50 });
    // 512 prompts · 8 rollouts per generation batch; 128 prompts · 8 = 64 · 16 rollouts per optimizer step.
    expect(resolveGenerationBatch(c).generation_batch_size).toBe(512 * 8);
    expect(c.per_device_train_batch_size * c.gradient_accumulation_steps).toBe(128 * 8);
    expect(parseGRPOConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
  });
});
