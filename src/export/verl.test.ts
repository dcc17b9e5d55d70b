/**
 * The veRL export: the launch script parsed back and compared with the recipe, option by option,
 * against MMSearch-R1's config keys (copied below from multimodal-search-r1@583c6b4
 * mmsearch_r1/trainer/multimodal/config/ppo_trainer.yaml: plain overrides must exist there, "+"
 * ones must not); the parquet read back with the lab's reader equals the generated rows; README
 * lists every field without an equivalent.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile } from 'hyparquet';
import { afterAll, describe, expect, test } from 'vitest';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { readFvqaParquet } from '../data/parquet.js';
import type { FvqaRow } from '../data/types.js';
import { parseRecipe, type Recipe } from '../rl/recipe.js';
import { writeVerlExport } from './node.js';
import { hydraValue, launchScript, parseLaunchScript, verlMapping } from './verl.js';

const root = new URL('../../', import.meta.url).pathname;
const recipeJson = (name: string) => JSON.parse(readFileSync(join(root, `recipes/${name}.json`), 'utf8'));
/**
 * The fvqa-mini recipe with the values the expectations below were worked out from pinned, so that
 * tuning the shipped recipe does not change what these tests check.
 */
const pinnedFvqaMini = () => {
  const r = recipeJson('fvqa-mini');
  return {
    ...r,
    grpo: { ...r.grpo, learning_rate: 0.00005, per_device_train_batch_size: 16, gradient_accumulation_steps: 4, max_steps: 30, max_completion_length: 400, epsilon: 0.2, reward: { format_penalty: 0.1, search_penalty: 0.1 }, search: { ...r.grpo.search, results_per_search: 3 } },
    rollout: { max_turn_tokens: 48 },
    checkpoint_steps: 5,
  };
};
const SMALL = { entities: 16, heldOutEntities: 2, testSize: 8 };

/** Keys of MMSearch-R1's ppo_trainer.yaml that the export may set without "+". */
const MMS_YAML_KEYS = new Set([
  'algorithm.adv_estimator', 'data.train_files', 'data.val_files', 'data.train_batch_size', 'data.max_prompt_length', 'data.max_response_length',
  'data.image_key', 'data.user_prompt_round_1', 'data.user_prompt_after_image_search', 'data.user_prompt_after_text_search',
  'actor_rollout_ref.model.path', 'actor_rollout_ref.actor.ppo_mini_batch_size', 'actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu',
  'actor_rollout_ref.actor.grad_clip', 'actor_rollout_ref.actor.clip_ratio', 'actor_rollout_ref.actor.clip_ratio_high', 'actor_rollout_ref.actor.clip_ratio_low',
  'actor_rollout_ref.actor.entropy_coeff', 'actor_rollout_ref.actor.use_multi_turn_response_mask', 'actor_rollout_ref.actor.use_kl_loss',
  'actor_rollout_ref.actor.kl_loss_coef', 'actor_rollout_ref.actor.kl_loss_type', 'actor_rollout_ref.actor.ppo_epochs',
  'actor_rollout_ref.actor.optim.lr', 'actor_rollout_ref.actor.optim.lr_warmup_steps_ratio', 'actor_rollout_ref.actor.optim.warmup_style',
  'actor_rollout_ref.actor.optim.lr_sigmoid_decay_warmup', 'actor_rollout_ref.rollout.name', 'actor_rollout_ref.rollout.temperature',
  'actor_rollout_ref.rollout.top_k', 'actor_rollout_ref.rollout.top_p', 'actor_rollout_ref.rollout.n', 'actor_rollout_ref.rollout.max_gen_round',
  'actor_rollout_ref.rollout.response_length_total', 'actor_rollout_ref.rollout.search.topk', 'actor_rollout_ref.rollout.search.image_search_limit',
  'actor_rollout_ref.rollout.search.text_search_limit', 'trainer.total_epochs', 'trainer.total_training_steps', 'trainer.logger', 'trainer.nnodes',
  'trainer.n_gpus_per_node', 'trainer.save_freq', 'trainer.critic_warmup',
]);

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'mmsearch-verl-'));
  dirs.push(d);
  return d;
};
const paths = { modelPath: '/models/x', trainFiles: '$HERE/train.parquet', valFiles: '$HERE/test.parquet' };
const parsed = (r: Recipe) => parseLaunchScript(launchScript(r, verlMapping(r, paths)));

describe('fvqa-mini recipe', () => {
  const recipe = parseRecipe({ ...pinnedFvqaMini(), data: { source: 'fvqa-mini', fvqa_mini: SMALL } });
  let dir = '';

  test('writes the folder; the script carries every mapped option with the recipe\'s values', async () => {
    dir = tmp();
    await writeVerlExport(recipe, dir, '/models/tiny');
    expect(statSync(join(dir, 'run_mmsearch_r1_grpo.sh')).mode & 0o111).not.toBe(0);
    const script = readFileSync(join(dir, 'run_mmsearch_r1_grpo.sh'), 'utf8');
    const { overrides: o, upstream } = parseLaunchScript(script);
    const g = recipe.grpo;
    const want: Record<string, string> = {
      'actor_rollout_ref.model.path': '/models/tiny',
      'data.train_files': '$HERE/train.parquet',
      'data.val_files': '$HERE/test.parquet',
      '+data.seed': '1',
      'actor_rollout_ref.rollout.n': '8',
      // 16 rollouts x 4 micro-batches = 64 rollouts per step = 8 prompts x 8.
      'data.train_batch_size': '8',
      'actor_rollout_ref.actor.ppo_mini_batch_size': '8',
      'actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu': '16',
      'actor_rollout_ref.actor.ppo_epochs': '1',
      'actor_rollout_ref.actor.use_kl_loss': 'False',
      'actor_rollout_ref.actor.kl_loss_coef': '0',
      'actor_rollout_ref.actor.kl_loss_type': 'low_var_kl',
      'actor_rollout_ref.actor.clip_ratio_low': '0.2',
      'actor_rollout_ref.actor.clip_ratio_high': '0.2',
      'actor_rollout_ref.actor.optim.lr': '0.00005',
      'actor_rollout_ref.actor.optim.lr_warmup_steps_ratio': '0',
      'actor_rollout_ref.actor.optim.warmup_style': 'constant',
      '+actor_rollout_ref.actor.optim.weight_decay': '0.01',
      '+actor_rollout_ref.actor.optim.betas': '[0.9,0.999]',
      'actor_rollout_ref.actor.grad_clip': '1',
      'actor_rollout_ref.rollout.temperature': String(g.temperature),
      'actor_rollout_ref.rollout.top_k': '-1',
      'data.max_prompt_length': String(g.max_prompt_length),
      'data.max_response_length': '48',
      'actor_rollout_ref.rollout.response_length_total': '400',
      'actor_rollout_ref.rollout.max_gen_round': '3',
      'actor_rollout_ref.rollout.search.image_search_limit': '1',
      'actor_rollout_ref.rollout.search.text_search_limit': '2',
      'actor_rollout_ref.rollout.search.topk': '3',
      '+trainer.format_penalty': '0.1',
      '+trainer.search_penalty': '0.1',
      '+trainer.reward_mode': 'EM',
      '+trainer.use_search_count_penalty': 'False',
      '+trainer.grpo_denormalize': 'False',
      '+algorithm.filter_groups.enable': 'False',
      'trainer.total_training_steps': '30',
      'trainer.save_freq': '5',
      'algorithm.adv_estimator': 'grpo',
      'actor_rollout_ref.rollout.name': 'vllm_multiturn_mmsearch',
      'actor_rollout_ref.actor.use_multi_turn_response_mask': 'True',
    };
    for (const [k, v] of Object.entries(want)) expect(o.get(k), k).toBe(v);
    for (const k of o.keys()) expect(k.startsWith('+') ? !MMS_YAML_KEYS.has(k.slice(1)) : MMS_YAML_KEYS.has(k), k).toBe(true);
    // dapo has no MMSearch-R1 option; the upstream veRL equivalent is a comment.
    expect(upstream.get('actor_rollout_ref.actor.loss_agg_mode')).toBe('token-mean');
    expect(o.has('actor_rollout_ref.actor.loss_agg_mode')).toBe(false);
    expect(script).toContain('python3 -m mmsearch_r1.trainer.multimodal.main_ppo \\');
  });

  test('README lists every field without an equivalent', () => {
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    for (const f of ['sft.*', 'model.compact_instructions', 'grpo.mask_truncated_completions', 'model.init', 'search.backend, search.proxy_url, search.summary_sentences'])
      expect(readme, f).toContain(`\`${f}\``);
    expect(readme).toContain('| recipe field | veRL / MMSearch-R1 option |');
  });

  test('parquet reads back with the lab\'s reader as the recipe\'s FVQA-mini splits', async () => {
    const data = generateFvqaMini({ seed: recipe.seed, ...SMALL });
    for (const [file, rows] of [['train.parquet', data.splits.train], ['test.parquet', data.splits.test]] as const) {
      const got: FvqaRow[] = [];
      await readFvqaParquet(await asyncBufferFromFile(join(dir, file)), (b) => void got.push(...b));
      expect(got.length, file).toBe(rows.length);
      got.forEach((r, i) => {
        expect(r.data_id).toBe(rows[i].data_id);
        expect(r.prompt).toEqual(rows[i].prompt);
        expect(r.reward_model).toEqual(rows[i].reward_model);
        expect(r.category).toBe(rows[i].category);
        expect(r.images.map((im) => im.bytes)).toEqual(rows[i].images.map((im) => im.bytes));
      });
    }
  });
});

describe('mapping rules', () => {
  test('the paper recipe (smolvlm-256m-lora): 512 prompts x 8, mini-batch 128, KL 0.001 low_var_kl, LoRA upstream only', () => {
    const r = parseRecipe(recipeJson('smolvlm-256m-lora'));
    const { overrides: o, upstream } = parsed(r);
    expect(o.get('data.train_batch_size')).toBe('512');
    expect(o.get('actor_rollout_ref.actor.ppo_mini_batch_size')).toBe('128');
    expect(o.get('actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu')).toBe('64');
    expect(o.get('actor_rollout_ref.actor.use_kl_loss')).toBe('True');
    expect(o.get('actor_rollout_ref.actor.kl_loss_coef')).toBe('0.001');
    expect(o.get('actor_rollout_ref.actor.optim.lr')).toBe('0.000002');
    expect(o.get('actor_rollout_ref.model.path')).toBe('HuggingFaceTB/SmolVLM-256M-Instruct');
    expect(o.get('actor_rollout_ref.rollout.search.topk')).toBe('5');
    expect(o.get('trainer.total_training_steps')).toBe('50');
    expect(upstream.get('actor_rollout_ref.model.lora_rank')).toBe('16');
    expect(upstream.get('actor_rollout_ref.model.lora_alpha')).toBe('32');
  });

  test('loss_type, scale_rewards, epsilon_high, schedules and filter_groups', () => {
    const base = pinnedFvqaMini();
    const r = (grpo: Record<string, unknown>) => parseRecipe({ ...base, grpo: { ...base.grpo, ...grpo } });
    const agg = (loss_type: string) => parsed(r({ loss_type })).upstream.get('actor_rollout_ref.actor.loss_agg_mode');
    expect([agg('grpo'), agg('bnpo'), agg('dr_grpo'), agg('dapo')]).toEqual(['seq-mean-token-mean', 'token-mean', 'seq-mean-token-sum-norm', 'token-mean']);
    const dr = parsed(r({ scale_rewards: 'none', epsilon_high: 0.28, beta: 0.04, num_iterations: 2 }));
    expect(dr.overrides.get('+trainer.grpo_denormalize')).toBe('True');
    expect(dr.upstream.get('algorithm.norm_adv_by_std_in_grpo')).toBe('False');
    expect(dr.overrides.get('actor_rollout_ref.actor.clip_ratio_high')).toBe('0.28');
    expect(dr.overrides.get('actor_rollout_ref.actor.clip_ratio_low')).toBe('0.2');
    expect(dr.overrides.get('actor_rollout_ref.actor.use_kl_loss')).toBe('True');
    expect(dr.overrides.get('actor_rollout_ref.actor.kl_loss_coef')).toBe('0.04');
    expect(dr.overrides.get('actor_rollout_ref.actor.ppo_epochs')).toBe('2');
    const cos = parsed(r({ lr_scheduler_type: 'cosine', warmup_steps: 3 }));
    expect(cos.upstream.get('actor_rollout_ref.actor.optim.warmup_style')).toBe('cosine');
    expect(cos.overrides.get('actor_rollout_ref.actor.optim.lr_warmup_steps_ratio')).toBe('0.1');
    const fg = parsed(r({ filter_groups: { enable: true, max_num_gen_batches: 4 } })).overrides;
    expect([fg.get('+algorithm.filter_groups.enable'), fg.get('+algorithm.filter_groups.metric'), fg.get('+algorithm.filter_groups.max_num_gen_batches')]).toEqual(['True', 'seq_final_reward', '4']);
    expect(() => verlMapping(r({ per_device_train_batch_size: 4, gradient_accumulation_steps: 1, generation_batch_size: 64 }), paths)).toThrow(/whole groups/);
  });

  test('hydraValue', () => {
    expect([hydraValue(true), hydraValue(null), hydraValue(1e-7), hydraValue([0.9, 0.999]), hydraValue('EM'), hydraValue('a b')]).toEqual(['True', 'null', '1e-7', '[0.9,0.999]', 'EM', "'a b'"]);
  });
});
