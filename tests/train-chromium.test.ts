/**
 * `npm run train -- --runtime chromium` end to end (child processes, headless Chromium, software
 * WebGPU): a micro VLM (tiny-vlm's tokenizer, a 1-layer config, in a temporary model folder) trains
 * 2 SFT steps and 1 GRPO step, stopped by --steps; a second invocation on the same folder resumes from
 * the checkpoint, takes the last GRPO step and evaluates; `npm run eval --runtime chromium` evaluates
 * the result; a missing model file fails with the file's name and exit status 1; `--init-from` starts
 * an ablation from another run's warm-start checkpoint and refuses runs that do not match; `--sft-snapshots`
 * keeps the warm start's SFT steps as run folders that `npm run eval` reads.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';

const root = join(import.meta.dirname, '..');
let tmp: string;

/** Runs a script of scripts/ with tsx; resolves with its exit status and output (never rejects on a status). */
function cli(script: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('npx', ['tsx', `scripts/${script}.ts`, ...args], { cwd: root, maxBuffer: 1 << 26, timeout: 240_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

type Row = { phase: string; step: number } & Record<string, number | null>;
const metricsOf = (dir: string): Row[] => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const steps = (rows: Row[], phase: string) => rows.filter((r) => r.phase === phase).map((r) => r.step);

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mmsearch-train-chromium-'));
  // The micro model of src/rl/trainer.test.ts as a folder: its config and tiny-vlm's tokenizer files.
  const tiny = JSON.parse(readFileSync(join(root, 'models/tiny-vlm/config.json'), 'utf8'));
  const micro = {
    ...tiny,
    vision_config: { ...tiny.vision_config, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 },
    text_config: { ...tiny.text_config, hidden_size: 48, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2 },
  };
  const model = join(tmp, 'micro');
  mkdirSync(model);
  writeFileSync(join(model, 'config.json'), JSON.stringify(micro));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(root, 'models/tiny-vlm', f), join(model, f));
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  const recipe = {
    ...base,
    name: 'cli-chromium-ci',
    model: { ...base.model, source: model },
    caption: null,
    data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, held_out_entities: 2, test_size: 8 } },
    // 0.1 epoch of the warm-start rows in batches of 8: 2 SFT steps.
    sft: { ...base.sft, num_train_epochs: 0.1, learning_rate: 0.005, warmup_ratio: 0, per_device_train_batch_size: 8, gradient_accumulation_steps: 1 },
    grpo: { ...base.grpo, num_generations: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 1, max_steps: 2, max_completion_length: 64, search: { ...base.grpo.search, results_per_search: 2 } },
    rollout: { max_turn_tokens: 32 },
    eval: { split: 'test', modes: ['on_demand'], batch_size: 2, max_rows: 2, after_sft: true },
    checkpoint_steps: 1,
  };
  writeFileSync(join(tmp, 'recipe.json'), JSON.stringify(recipe));
  writeFileSync(join(tmp, 'broken.json'), JSON.stringify({ ...recipe, model: { ...recipe.model, source: join(tmp, 'missing') } }));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test('train in Chromium, interrupt by --steps, resume in a second invocation, evaluate', async () => {
  const run = join(tmp, 'run');
  const first = await cli('train', '--recipe', join(tmp, 'recipe.json'), '--out', run, '--runtime', 'chromium', '--steps', '1', '--json');
  expect(first.code, first.stderr).toBe(0);
  // --json: one event per line, the same events the Node runtime prints.
  const events = first.stdout.trim().split('\n').map((l) => JSON.parse(l));
  expect(events.filter((e) => e.type === 'metrics').map((e) => `${e.phase} ${e.step}`)).toEqual(['sft 0', 'sft 1', 'grpo 0']);
  expect(events.some((e) => e.type === 'progress' && e.phase === 'grpo' && e.done === 1 && e.total === 2)).toBe(true);
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'trainer_state.json', 'config.json']) expect(existsSync(join(run, 'checkpoint', f)), f).toBe(true);
  expect(JSON.parse(readFileSync(join(run, 'checkpoint', 'trainer_state.json'), 'utf8'))).toMatchObject({ phase: 'grpo', sftStep: 2, grpoStep: 1 });

  const second = await cli('train', '--recipe', join(tmp, 'recipe.json'), '--out', run, '--runtime', 'chromium', '--save-rollouts');
  expect(second.code, second.stderr).toBe(0);
  expect(second.stdout).toContain('resumed at grpo, SFT step 2, GRPO step 1');
  expect(second.stdout).toMatch(/\[grpo 1\] reward /);
  expect(second.stdout).toContain('phase done: SFT steps 2, GRPO steps 2');
  // The resumed invocation continued the step counts: each step once in metrics.jsonl, all finite
  // (per-category search ratios are NaN, written as null, when a batch has no row of the category).
  const rows = metricsOf(run);
  expect(steps(rows, 'sft')).toEqual([0, 1]);
  expect(steps(rows, 'grpo')).toEqual([0, 1]);
  for (const r of rows)
    for (const [k, v] of Object.entries(r)) if (k !== 'phase' && !k.startsWith('search_ratio/')) expect(Number.isFinite(v), `${r.phase} ${r.step} ${k} = ${v}`).toBe(true);
  expect(rows.find((r) => r.phase === 'grpo')!['memory/peak_bytes']).toBeGreaterThan(0);
  expect(readFileSync(join(run, 'eval.md'), 'utf8')).toContain('On-demand search (policy)');
  expect(existsSync(join(run, 'checkpoint', 'eval.md'))).toBe(true);
  // --save-rollouts in the second invocation: GRPO step 1's 4 trajectories.
  const rollouts = readFileSync(join(run, 'rollouts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(rollouts.map((r) => [r.step, r.group])).toEqual([[1, 0], [1, 0], [1, 1], [1, 1]]);

  const evaluated = await cli('eval', '--checkpoint', run, '--runtime', 'chromium', '--json');
  expect(evaluated.code, evaluated.stderr).toBe(0);
  // --json: per split (the recipe's test split, then FVQA-mini's heldout one) and mode, marked with the policy's stage;
  // The run's own before-GRPO evaluation (eval.after_sft) comes first, marked as such.
  expect(JSON.parse(evaluated.stdout.trim().split('\n').at(-1)!)).toEqual([
    expect.objectContaining({ stage: 'before_grpo', split: 'test', mode: 'on_demand', rows: 2, byCategory: expect.any(Object) }),
    expect.objectContaining({ stage: 'after_grpo', split: 'test', mode: 'on_demand', rows: 2, byCategory: expect.any(Object) }),
    expect.objectContaining({ stage: 'after_grpo', split: 'heldout', mode: 'on_demand', rows: 2, byCategory: expect.any(Object) }),
  ]);
  for (const split of ['test', 'heldout']) expect(readFileSync(join(run, `eval-${split}.md`), 'utf8')).toContain('On-demand search (policy)');
}, 600_000);

test('a failure in the worker reaches the terminal: message, exit status 1', async () => {
  const r = await cli('train', '--recipe', join(tmp, 'broken.json'), '--out', join(tmp, 'broken'), '--runtime', 'chromium');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/npm run train: .*missing\/tokenizer\.json/);
}, 300_000);

test('--init-from: an ablation starts from another run\'s warm start (Node runtime); mismatches are refused', async () => {
  const recipe = JSON.parse(readFileSync(join(tmp, 'recipe.json'), 'utf8'));
  const warm = join(tmp, 'warm');
  const sft = await cli('train', '--recipe', join(tmp, 'recipe.json'), '--out', warm, '--runtime', 'node', '--steps', '0', '--sft-snapshots', '1');
  expect(sft.code, sft.stderr).toBe(0);
  // --sft-snapshots 1: a run folder per SFT step; the last holds the warm start's weights, the first others.
  expect(readdirSync(join(warm, 'snapshots')).sort()).toEqual(['sft-1', 'sft-2']);
  const weights = (dir: string) => readFileSync(join(dir, 'checkpoint', 'model.safetensors'));
  expect(weights(join(warm, 'snapshots', 'sft-2')).equals(weights(warm))).toBe(true);
  expect(weights(join(warm, 'snapshots', 'sft-1')).equals(weights(warm))).toBe(false);
  expect(JSON.parse(readFileSync(join(warm, 'snapshots', 'sft-1', 'checkpoint', 'trainer_state.json'), 'utf8'))).toMatchObject({ phase: 'sft', sftStep: 1 });
  const snapshotEval = await cli('eval', '--checkpoint', join(warm, 'snapshots', 'sft-1'), '--split', 'test', '--modes', 'on_demand', '--runtime', 'node', '--json');
  expect(snapshotEval.code, snapshotEval.stderr).toBe(0);
  expect(JSON.parse(snapshotEval.stdout.trim().split('\n').at(-1)!)).toEqual([expect.objectContaining({ stage: 'before_grpo', split: 'test', mode: 'on_demand', rows: 2 })]);
  const badSnapshots = await cli('train', '--recipe', join(tmp, 'recipe.json'), '--out', join(tmp, 'bad-snapshots'), '--runtime', 'node', '--sft-snapshots', '0');
  expect(badSnapshots.code).toBe(2);
  expect(badSnapshots.stderr).toContain('--sft-snapshots 0: a whole number of SFT steps >= 1');
  // The ablation differs only after the warm start (the search penalty), as recipes/fvqa-mini-no-search-penalty.json.
  const ablation = { ...recipe, name: 'cli-ablation-ci', grpo: { ...recipe.grpo, reward: { ...recipe.grpo.reward, search_penalty: 0 } } };
  writeFileSync(join(tmp, 'ablation.json'), JSON.stringify(ablation));
  const run = join(tmp, 'ablation');
  const r = await cli('train', '--recipe', join(tmp, 'ablation.json'), '--out', run, '--runtime', 'node', '--steps', '1', '--init-from', warm);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain('resumed at grpo, SFT step 2, GRPO step 0');
  // Its metrics hold the shared warm start's SFT steps, then its own GRPO step; the weights it started from are the warm start's.
  expect(steps(metricsOf(run), 'sft')).toEqual([0, 1]);
  expect(steps(metricsOf(run), 'grpo')).toEqual([0]);
  expect(JSON.parse(readFileSync(join(run, 'checkpoint', 'trainer_state.json'), 'utf8'))).toMatchObject({ recipe: 'cli-ablation-ci', phase: 'grpo', grpoStep: 1 });

  // The ablation without data balancing differs in data.train_categories only, which picks GRPO's prompts: accepted.
  writeFileSync(join(tmp, 'unbalanced.json'), JSON.stringify({ ...recipe, name: 'cli-unbalanced-ci', data: { ...recipe.data, train_categories: ['search_required'] } }));
  const unbalanced = await cli('train', '--recipe', join(tmp, 'unbalanced.json'), '--out', join(tmp, 'unbalanced'), '--runtime', 'node', '--steps', '0', '--init-from', warm);
  expect(unbalanced.code, unbalanced.stderr).toBe(0);
  // GRPO drills only add GRPO prompts: accepted. Reading drills are warm-start rows: refused.
  const withDrills = (name: string, drills: object) => {
    writeFileSync(join(tmp, `${name}.json`), JSON.stringify({ ...recipe, name, data: { ...recipe.data, fvqa_mini: { ...recipe.data.fvqa_mini, ...drills } } }));
    return cli('train', '--recipe', join(tmp, `${name}.json`), '--out', join(tmp, name), '--runtime', 'node', '--steps', '0', '--init-from', warm);
  };
  const grpoDrills = await withDrills('cli-grpo-drills-ci', { grpo_drills: 2 });
  expect(grpoDrills.code, grpoDrills.stderr).toBe(0);
  const readingDrills = await withDrills('cli-reading-drills-ci', { reading_drills: 2 });
  expect(readingDrills.code).toBe(2);
  expect(readingDrills.stderr).toContain('its recipe differs in "data"');
  writeFileSync(join(tmp, 'other-sft.json'), JSON.stringify({ ...ablation, name: 'other', sft: { ...ablation.sft, learning_rate: 0.001 } }));
  const differs = await cli('train', '--recipe', join(tmp, 'other-sft.json'), '--out', join(tmp, 'other'), '--runtime', 'node', '--init-from', warm);
  expect(differs.code).toBe(2);
  expect(differs.stderr).toContain('its recipe differs in "sft"');
  const late = await cli('train', '--recipe', join(tmp, 'ablation.json'), '--out', join(tmp, 'late'), '--runtime', 'node', '--init-from', run);
  expect(late.code).toBe(2);
  expect(late.stderr).toContain('it must have stopped right after SFT');
}, 600_000);
