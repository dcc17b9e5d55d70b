/**
 * The training run end to end on a micro VLM (the tiny-vlm tokenizer, a smaller config) and a small
 * FVQA-mini world: (1) a few-step run of the fvqa-mini recipe's pipeline on WebGPU: SFT -> GRPO ->
 * evaluation, every metric finite, the share of greedy first turns that open in the protocol's
 * format (`<reason>`) rises from the untrained model's, and the checkpoint round-trips into a new trainer; (2) on the float64 CPU backend, a run
 * interrupted and resumed from its checkpoint ends bit for bit where the uninterrupted run does.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { gpuBackend } from '../engine/testing.js';
import type { WebGPUBackend } from '../engine/webgpu/backend.js';
import { FsCheckpointStore } from '../storage/fs-checkpoint-store.js';
import { parseRecipe, type Recipe } from './recipe.js';
import { microModelFiles } from './testing.js';
import { Trainer, type TrainEvent, type TrainerEnv } from './trainer.js';

const root = new URL('../../', import.meta.url).pathname;
const readFile = microModelFiles(48);

function recipe(over: { sft: Record<string, number>; grpo: Record<string, number> }): Recipe {
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  return parseRecipe({
    ...base,
    name: 'fvqa-mini-ci',
    model: { ...base.model, source: 'models/micro' },
    caption: null,
    data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, held_out_entities: 2, test_size: 8 } },
    sft: { ...base.sft, ...over.sft },
    grpo: { ...base.grpo, max_completion_length: 200, ...over.grpo, search: { ...base.grpo.search, results_per_search: 2 } },
    rollout: { max_turn_tokens: 32 },
    eval: { split: 'test', modes: ['on_demand'], batch_size: 8 },
    checkpoint_steps: 1,
  });
}

let gpu: WebGPUBackend;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'mmsearch-train-'));
  dirs.push(d);
  return d;
};
beforeAll(async () => {
  gpu = await gpuBackend();
});
afterAll(() => {
  gpu?.ctx.device.destroy();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

test('few-step fvqa-mini run: finite metrics, the format rate rises, checkpoints round-trip', async () => {
  const base = recipe({ sft: { num_train_epochs: 6, learning_rate: 0.005, warmup_ratio: 0, per_device_train_batch_size: 16, gradient_accumulation_steps: 1 }, grpo: { num_generations: 2, per_device_train_batch_size: 8, gradient_accumulation_steps: 1, max_steps: 2, learning_rate: 0.0005 } });
  const r: Recipe = { ...base, sft: { ...base.sft!, group_by_length: true }, eval: { ...base.eval, after_sft: true } };
  const metrics: Extract<TrainEvent, { type: 'metrics' }>[] = [];
  const env: TrainerEnv = { backend: gpu, readFile, store: new FsCheckpointStore(tmp()), onEvent: (e) => e.type === 'metrics' && metrics.push(e) };

  // The untrained model's format rate on the test rows.
  const before = new Trainer({ ...r, sft: null, grpo: { ...r.grpo, max_steps: 1 } }, { ...env, store: new FsCheckpointStore(tmp()) });
  await before.setup();
  before.state.phase = 'eval';
  await before.run();
  // A micro model after a few SFT steps writes the protocol's opening (`<reason>…`) before it closes
  // whole turns: count greedy first turns that open as the protocol requires.
  const formatOf = (t: Trainer) => t.evalResult!.records.filter((x) => (x.transcript[0]?.text ?? '').startsWith('<reason>')).length;
  const formatBefore = formatOf(before);

  const t = new Trainer(r, env);
  await t.setup();
  await t.run();
  expect(t.state.phase).toBe('done');
  const sft = metrics.filter((m) => m.phase === 'sft');
  const grpo = metrics.filter((m) => m.phase === 'grpo');
  expect(sft.length).toBeGreaterThan(3);
  expect(grpo).toHaveLength(2);
  for (const m of metrics) for (const [k, v] of Object.entries(m.metrics)) if (!k.startsWith('search_ratio/')) expect(Number.isFinite(v), `${m.phase} ${m.step} ${k} = ${v}`).toBe(true);
  expect(sft.at(-1)!.metrics.loss).toBeLessThan(sft[0].metrics.loss);
  expect(formatOf(t)).toBeGreaterThan(formatBefore);
  expect(t.evalResult!.table).toContain('On-demand search (policy)');
  // eval.after_sft: the warm-start policy's on-demand row, on the same rows.
  expect(t.sftEvalResult!.summaries.map((x) => [x.mode, x.rows])).toEqual([['on_demand', t.evalResult!.summaries[0].rows]]);

  // The checkpoint restores the same weights into a new trainer.
  const again = new Trainer(r, { ...env, onEvent: undefined });
  await again.setup();
  expect(again.state).toEqual(t.state);
  expect(again.sftEvalResult!.table).toBe(t.sftEvalResult!.table);
  const a = new Map(t.model.namedParameters()), b = again.model.namedParameters();
  for (const [name, p] of b) expect(Array.from(await p.data()), name).toEqual(Array.from(await a.get(name)!.data()));
  t.model.dispose();
  again.model.dispose();
  before.model.dispose();
}, 900_000);

test('resume from a checkpoint equals the uninterrupted run bit for bit (CPU backend)', async () => {
  const r = recipe({ sft: { num_train_epochs: 0.2, per_device_train_batch_size: 4, gradient_accumulation_steps: 1 }, grpo: { num_generations: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 1, max_steps: 2 } });
  const cpuEnv = (dir: string, onEvent?: TrainerEnv['onEvent']): TrainerEnv => ({ backend: new E.CpuBackend(), readFile, store: new FsCheckpointStore(dir), onEvent });
  const full = new Trainer({ ...r, eval: { ...r.eval, max_rows: 1 } }, cpuEnv(tmp()));
  await full.setup();
  await full.run({ maxGrpoSteps: 2 });

  const dir = tmp();
  const abort = new AbortController();
  const first = new Trainer({ ...r, eval: { ...r.eval, max_rows: 1 } }, cpuEnv(dir, (e) => e.type === 'metrics' && e.phase === 'sft' && e.step === 0 && abort.abort()));
  await first.setup();
  await first.run({ signal: abort.signal }); // stops after SFT step 0, checkpointed
  expect(first.state.sftStep).toBe(1);
  const resumed = new Trainer({ ...r, eval: { ...r.eval, max_rows: 1 } }, cpuEnv(dir));
  await resumed.setup();
  expect(resumed.state.sftStep).toBe(1);
  await resumed.run({ maxGrpoSteps: 2 });

  expect(resumed.state).toEqual(full.state);
  const want = new Map(full.model.namedParameters());
  for (const [name, p] of resumed.model.namedParameters()) {
    const x = await p.backend.read(p.storage, true), y = await want.get(name)!.backend.read(want.get(name)!.storage, true);
    expect(Array.from(x), name).toEqual(Array.from(y));
  }
}, 900_000);
