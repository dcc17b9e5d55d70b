/**
 * The veRL export: the launch script parsed back and compared with the recipe, option by option;
 * every override checked against MMSearch-R1's config keys and types (mmsearch-r1-config.ts, recorded
 * from multimodal-search-r1@583c6b4); the script run with DRY_RUN=1 on 1 to 8 GPUs gives batch sizes
 * that pass veRL's own checks (restated below from ray_trainer.py, fsdp_workers.py, dp_actor.py);
 * the parquet read back with pyarrow and compared field by field with the authors' sample
 * (python/check_verl_export.py), and with the lab's reader; README lists every field without an
 * equivalent.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile } from 'hyparquet';
import { afterAll, describe, expect, test } from 'vitest';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { readFvqaParquet } from '../data/parquet.js';
import type { FvqaRow } from '../data/types.js';
import { parseRecipe, type Recipe } from '../rl/recipe.js';
import { writeParquetFile } from '../data/node-io.js';
import { FIXTURE } from '../data/testing.js';
import { runPython } from '../../scripts/python-env.js';
import { checkOverride, hydraKind } from './mmsearch-r1-config.js';
import { writeVerlExport } from './node.js';
import { hydraValue, launchScript, parseLaunchScript, verlMapping, verlRow, VERL_MAX_PROMPT_LENGTH } from './verl.js';

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
    grpo: { ...r.grpo, scale_rewards: 'group', learning_rate: 0.00005, per_device_train_batch_size: 16, gradient_accumulation_steps: 4, max_steps: 30, max_completion_length: 400, epsilon: 0.2, reward: { format_penalty: 0.1, search_penalty: 0.1 }, search: { ...r.grpo.search, results_per_search: 3 } },
    rollout: { max_turn_tokens: 48 },
    checkpoint_steps: 5,
  };
};
const SMALL = { entities: 16, heldOutEntities: 2, testSize: 8 };

/** The script's arguments after bash expands them (DRY_RUN=1), as option -> value. */
function dryRun(script: string, env: Record<string, string>): Map<string, string> {
  const r = spawnSync('bash', [script], { env: { ...process.env, DRY_RUN: '1', ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script} DRY_RUN failed: ${r.stderr}`);
  return new Map(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/**
 * veRL's batch-size rules at MMSearch-R1@583c6b4 / verl@8e9e737, restated: train_batch_size x n
 * divisible by the GPUs (ray_trainer.py:316); each GPU's mini-batch ppo_mini_batch_size x n / GPUs a
 * whole number (fsdp_workers.py:113) of at least one micro-batch and divisible by it (dp_actor.py:267:
 * gradient_accumulation = mini // micro, a divisor); mini-batches tile the step's batch.
 */
function verlBatchProblems(o: Map<string, string>): string[] {
  const num = (k: string) => Number(o.get(k));
  const world = num('trainer.n_gpus_per_node') * num('trainer.nnodes');
  const n = num('actor_rollout_ref.rollout.n');
  const train = num('data.train_batch_size'), mini = num('actor_rollout_ref.actor.ppo_mini_batch_size'), micro = num('actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu');
  const p: string[] = [];
  if ((train * n) % world) p.push(`train_batch_size ${train} x n ${n} not divisible by ${world} GPUs`);
  if ((mini * n) % world) p.push(`ppo_mini_batch_size ${mini} x n not divisible by ${world} GPUs`);
  const miniPerGpu = (mini * n) / world;
  if (!(micro >= 1 && micro <= miniPerGpu && miniPerGpu % micro === 0)) p.push(`micro ${micro} does not divide the ${miniPerGpu} rollouts of each GPU's mini-batch`);
  if (train % mini) p.push(`train_batch_size ${train} is not a whole number of mini-batches of ${mini}`);
  for (const k of ['actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu', 'actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu']) if (!(num(k) >= 1)) p.push(`${k} unset`);
  if (num('actor_rollout_ref.rollout.tensor_model_parallel_size') !== 1) p.push('tensor_model_parallel_size must be 1 to run on any GPU count');
  return p;
}

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
  const recipe = parseRecipe({ ...pinnedFvqaMini(), data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, held_out_entities: 2, test_size: 8 } } });
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
      'data.val_files': '[$HERE/test.parquet,$HERE/heldout.parquet]',
      '+data.seed': '1',
      'actor_rollout_ref.rollout.n': '8',
      // Fitted to the GPUs by the script (checked with DRY_RUN below).
      'data.train_batch_size': '$TRAIN_PROMPTS',
      'actor_rollout_ref.actor.ppo_mini_batch_size': '$MINI_PROMPTS',
      'actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu': '$MICRO',
      'actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu': '$MICRO',
      'actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu': '$MICRO',
      'actor_rollout_ref.rollout.tensor_model_parallel_size': '1',
      'actor_rollout_ref.model.use_remove_padding': 'True',
      'actor_rollout_ref.actor.ppo_epochs': '1',
      // beta 0: KL in the loss with weight 0 (use_kl_loss False would call apply_kl_penalty: KeyError).
      'actor_rollout_ref.actor.use_kl_loss': 'True',
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
      'data.max_prompt_length': String(VERL_MAX_PROMPT_LENGTH),
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
      'trainer.test_freq': '30',
      '+trainer.val_before_train': String(recipe.eval.after_sft ? 'True' : 'False'),
      'algorithm.adv_estimator': 'grpo',
      'actor_rollout_ref.rollout.name': 'vllm_multiturn_mmsearch',
      'actor_rollout_ref.actor.use_multi_turn_response_mask': 'True',
    };
    for (const [k, v] of Object.entries(want)) expect(o.get(k), k).toBe(v);
    for (const [k, v] of o) if (!v.includes('$')) expect(checkOverride(k, v), k).toBeNull();
    // dapo has no MMSearch-R1 option; the upstream veRL equivalent is a comment.
    expect(upstream.get('actor_rollout_ref.actor.loss_agg_mode')).toBe('token-mean');
    expect(o.has('actor_rollout_ref.actor.loss_agg_mode')).toBe(false);
    expect(script).toContain('exec python3 -m mmsearch_r1.trainer.multimodal.main_ppo "${ARGS[@]}" "$@"');
  });

  test('DRY_RUN on 1 to 8 GPUs (and 2 nodes): batch sizes pass veRL\'s checks, every expanded override has the trainer\'s key and type', () => {
    const script = join(dir, 'run_mmsearch_r1_grpo.sh');
    for (const [gpus, nodes] of [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1], [7, 1], [8, 1], [8, 2]]) {
      const o = dryRun(script, { N_GPUS: String(gpus), N_NODES: String(nodes), MODEL_PATH: '/m' });
      expect(verlBatchProblems(o), `${gpus} GPUs x ${nodes}`).toEqual([]);
      for (const [k, v] of o) expect(checkOverride(k, v), `${gpus} GPUs: ${k}=${v}`).toBeNull();
      expect(o.get('data.val_files')).toBe(`[${dir}/test.parquet,${dir}/heldout.parquet]`);
    }
    // One GPU keeps the recipe's sizes; eight split the 64 rollouts of a mini-batch into 8 per GPU.
    expect(['data.train_batch_size', 'actor_rollout_ref.actor.ppo_mini_batch_size', 'actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu'].map((k) => dryRun(script, { N_GPUS: '1' }).get(k))).toEqual(['8', '8', '16']);
    expect(dryRun(script, { N_GPUS: '8' }).get('actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu')).toBe('8');
    // Fewer GPUs than the authors' 8: the actor's parameters and optimizer state are offloaded.
    expect([1, 4, 8].map((n) => dryRun(script, { N_GPUS: String(n) }).get('actor_rollout_ref.actor.fsdp_config.param_offload'))).toEqual(['True', 'True', 'False']);
    expect(dryRun(script, {}).get('actor_rollout_ref.model.path')).toBe('/models/tiny');
    // The rules are not vacuous: the recipe's own sizes on 8 GPUs (micro 16 > 8 rollouts per GPU) fail them.
    const raw = dryRun(script, { N_GPUS: '8' });
    raw.set('actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu', '16');
    expect(verlBatchProblems(raw).join()).toMatch(/does not divide/);
    expect(checkOverride('data.max_prompt_length', 'x')).toMatch(/a str, the trainer reads a int/);
    expect(checkOverride('+trainer.test_freq', '5')).toMatch(/drop the "\+"/);
    expect(hydraKind('1e-7')).toBe('float');
  });

  test('parquet: pyarrow reads it, field by field as the authors\' sample, one <image> per image after the round-1 prompt, tokens under max_prompt_length, routed to the search reward', () => {
    const r = runPython(['python/check_verl_export.py', '--export', dir, '--sample', FIXTURE, '--max-prompt-length', String(VERL_MAX_PROMPT_LENGTH)]);
    const report = JSON.parse(r.stdout);
    expect(report.files.map((f: { problems: string[] }) => f.problems).flat(), r.stderr).toEqual([]);
    expect(r.status).toBe(0);
    expect(report.files.map((f: { file: string }) => f.file)).toEqual(['sample:mini_data.pq', 'heldout.parquet', 'test.parquet', 'train.parquet']);
    expect(report.files[3].data_sources).toEqual(['mmsearch_r1/fvqa_mini_train']);
    for (const f of report.files) expect(f.prompt_token_bound).toBeLessThanOrEqual(VERL_MAX_PROMPT_LENGTH);
  }, 120_000);

  test('the check rejects the lab\'s own rows (instructions and <image> in the prompt, data_source fvqa_mini/train)', async () => {
    const bad = tmp();
    const rows = generateFvqaMini({ seed: 1, ...SMALL }).splits.test.slice(0, 3);
    await writeParquetFile(join(bad, 'test.parquet'), rows);
    const r = runPython(['python/check_verl_export.py', '--export', bad, '--sample', FIXTURE]);
    expect(r.status).toBe(1);
    const problems = JSON.parse(r.stdout).files[1].problems.join('\n');
    expect(problems).toMatch(/holds <image>/);
    expect(problems).toMatch(/2 <image> after the round-1 prompt for 1 images/);
    expect(problems).toMatch(/not routed to the search reward/);
  }, 120_000);

  test('README lists every field without an equivalent', () => {
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    for (const f of ['sft.*', 'model.compact_instructions', 'grpo.mask_truncated_completions', 'model.init', 'search.backend, search.proxy_url, search.summary_sentences'])
      expect(readme, f).toContain(`\`${f}\``);
    expect(readme).toContain('| recipe field | veRL / MMSearch-R1 option |');
  });

  test('parquet reads back with the lab\'s reader as the recipe\'s FVQA-mini splits (bare questions)', async () => {
    const data = generateFvqaMini({ seed: recipe.seed, ...SMALL });
    for (const [file, split] of [['train.parquet', 'train'], ['test.parquet', 'test'], ['heldout.parquet', 'heldout']] as const) {
      const rows = data.splits[split].map((r) => verlRow(r, `fvqa_mini_${split}`));
      expect(rows[0].prompt[0].content).toBe(data.splits[split][0].extra_info!.question);
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
  test('the paper recipe (smolvlm-256m-lora): 512 prompts x 8, mini-batch 128, KL 0.001 low_var_kl, Qwen2.5-VL, LoRA not carried (MMSearch-R1 has none)', async () => {
    const r = parseRecipe(recipeJson('smolvlm-256m-lora'));
    const { overrides: o, upstream } = parsed(r);
    const d = tmp();
    await writeVerlExport(r, d);
    const x = dryRun(join(d, 'run_mmsearch_r1_grpo.sh'), { N_GPUS: '8', TRAIN_DATA_PATH: '/d/train.parquet', VAL_DATA_PATH: '/d/test.parquet' });
    expect(x.get('data.train_batch_size')).toBe('512');
    expect(x.get('actor_rollout_ref.actor.ppo_mini_batch_size')).toBe('128');
    // 128 prompts x 8 / 8 GPUs = 128 rollouts per GPU; the recipe's 64 divides it.
    expect(x.get('actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu')).toBe('64');
    expect(x.get('actor_rollout_ref.model.path')).toBe('Qwen/Qwen2.5-VL-7B-Instruct');
    expect(verlBatchProblems(x)).toEqual([]);
    expect(readFileSync(join(d, 'README.md'), 'utf8')).toMatch(/MMSearch-R1's workers \(fsdp_workers.py at 583c6b4\) build no LoRA/);
    expect(o.get('actor_rollout_ref.actor.use_kl_loss')).toBe('True');
    expect(o.get('actor_rollout_ref.actor.kl_loss_coef')).toBe('0.001');
    expect(o.get('actor_rollout_ref.actor.optim.lr')).toBe('0.000002');
    expect(o.get('actor_rollout_ref.model.path')).toBe('/models/x');
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
