/**
 * The recipe's caption stage on a micro VLM (float64 CPU backend): it trains exactly what the perception
 * probe (scripts/perception-probe.ts, whose runs docs/fvqa-mini-warm-start.md reports) trains, a run
 * interrupted mid-stage resumes bit for bit, its metrics carry the read-back of unseen looks, and the
 * recipe rejects the stage where it cannot run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { createModel } from '../models/checkpoint.js';
import { parseConfig, type VLMConfig } from '../models/config.js';
import type { Idefics3ForConditionalGeneration } from '../models/idefics3.js';
import { loadTokenizer } from '../models/tokenizer.js';
import { FsCheckpointStore } from '../storage/fs-checkpoint-store.js';
import { perceptionProbe } from './captioning.js';
import { TurnEncoder } from './conversation.js';
import { parseRecipe, type Recipe } from './recipe.js';
import { microModelFiles } from './testing.js';
import { Trainer, type TrainEvent, type TrainerEnv } from './trainer.js';

const root = new URL('../../', import.meta.url).pathname;
const readFile = microModelFiles(32);
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'mmsearch-caption-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const caption = { max_steps: 4, learning_rate: 3e-3, per_device_train_batch_size: 2, warmup_ratio: 0.25, eval_steps: 2, eval_looks: 3 };
function recipe(captionFields: Partial<Recipe['caption'] & object> = {}): Recipe {
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  return parseRecipe({
    ...base,
    name: 'caption-ci',
    seed: 5,
    model: { ...base.model, source: 'models/micro', init: 'scratch' },
    data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, held_out_entities: 2, test_size: 8 } },
    caption: { ...caption, ...captionFields },
    sft: null,
    checkpoint_steps: 1,
  });
}
const cpuEnv = (dir: string, onEvent?: TrainerEnv['onEvent']): TrainerEnv => ({ backend: new E.CpuBackend(), readFile, store: new FsCheckpointStore(dir), onEvent });
const weights = async (m: { namedParameters(): [string, E.Tensor][] }) =>
  new Map(await Promise.all(m.namedParameters().map(async ([n, p]) => [n, Array.from(await p.backend.read(p.storage, true))] as const)));

test('the caption stage trains what the perception probe trains, logs the read-back of unseen looks, then hands over to GRPO', async () => {
  const events: Extract<TrainEvent, { type: 'metrics' }>[] = [];
  const t = new Trainer(recipe(), cpuEnv(tmp(), (e) => e.type === 'metrics' && events.push(e)));
  await t.setup();
  expect(t.state.phase).toBe('caption');
  await t.run({ maxGrpoSteps: 0 });
  expect(t.state).toMatchObject({ phase: 'grpo', captionStep: 4, sftStep: 0, grpoStep: 0 });
  expect(events.map((e) => [e.phase, e.step])).toEqual([0, 1, 2, 3].map((s) => ['caption', s]));
  for (const e of events) for (const v of Object.values(e.metrics)) expect(Number.isFinite(v)).toBe(true);
  // eval_steps 2: the read-back after steps 2 and 4 (event steps 1 and 3), percentages of 3 looks.
  expect(events.map((e) => 'caption/colour' in e.metrics)).toEqual([false, true, false, true]);
  for (const k of ['parsed', 'pattern', 'colour', 'shape', 'marks']) expect([0, 33.3, 66.7, 100]).toContain(events[3].metrics[`caption/${k}`]);

  // The probe, from the same fresh weights (the recipe's seed), with the stage's settings.
  const raw = JSON.parse(new TextDecoder().decode(await readFile('models/micro/config.json')));
  const config = parseConfig(raw) as VLMConfig;
  const model = createModel(config, new E.CpuBackend(), 5) as Idefics3ForConditionalGeneration;
  const tiny = (f: string) => JSON.parse(readFileSync(join(root, 'models/tiny-vlm', f), 'utf8'));
  const tok = loadTokenizer(tiny('tokenizer.json'), tiny('tokenizer_config.json'));
  const rows = await perceptionProbe(model, tok, new TurnEncoder(tok, model.imageSeqLen, true), {
    learningRate: caption.learning_rate, warmupRatio: caption.warmup_ratio, steps: 4, batchSize: 2, evalEvery: 2, evalLooks: 3, seed: 5, imageSize: raw.vision_config.image_size,
  });
  expect(rows.map((r) => r.colour)).toEqual([events[1].metrics['caption/colour'], events[3].metrics['caption/colour']]);
  const want = await weights(model), got = await weights(t.model);
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [n, w] of got) expect(w, n).toEqual(want.get(n));
}, 300_000);

test('a run stopped mid-caption resumes bit for bit (CPU backend)', async () => {
  const full = new Trainer(recipe(), cpuEnv(tmp()));
  await full.setup();
  await full.run({ maxGrpoSteps: 0 });

  const dir = tmp();
  const abort = new AbortController();
  const first = new Trainer(recipe(), cpuEnv(dir, (e) => e.type === 'metrics' && e.step === 1 && abort.abort()));
  await first.setup();
  await first.run({ signal: abort.signal });
  expect(first.state).toMatchObject({ phase: 'caption', captionStep: 2 });
  const resumed = new Trainer(recipe(), cpuEnv(dir));
  await resumed.setup();
  expect(resumed.state.captionStep).toBe(2);
  await resumed.run({ maxGrpoSteps: 0 });
  expect(resumed.state).toEqual(full.state);
  const want = await weights(full.model);
  for (const [n, w] of await weights(resumed.model)) expect(w, n).toEqual(want.get(n));
}, 300_000);

test('name copies: each caption step trains them too, the read-back logs copy metrics, and a stopped run resumes bit for bit', async () => {
  const events: Extract<TrainEvent, { type: 'metrics' }>[] = [];
  const full = new Trainer(recipe({ name_copies: 2 }), cpuEnv(tmp(), (e) => e.type === 'metrics' && events.push(e)));
  await full.setup();
  await full.run({ maxGrpoSteps: 0 });
  expect(events.map((e) => 'copy/action' in e.metrics)).toEqual([false, true, false, true]);
  for (const k of ['copy/reasoning', 'copy/action']) expect([0, 33.3, 66.7, 100]).toContain(events[3].metrics[k]);
  // The copies change what the stage trains: the weights differ from captions alone.
  const captionsOnly = new Trainer(recipe(), cpuEnv(tmp()));
  await captionsOnly.setup();
  await captionsOnly.run({ maxGrpoSteps: 0 });
  const want = await weights(full.model), alone = await weights(captionsOnly.model);
  expect([...want].some(([n, w]) => w.some((v, i) => v !== alone.get(n)![i]))).toBe(true);

  const dir = tmp();
  const abort = new AbortController();
  const first = new Trainer(recipe({ name_copies: 2 }), cpuEnv(dir, (e) => e.type === 'metrics' && e.step === 2 && abort.abort()));
  await first.setup();
  await first.run({ signal: abort.signal });
  expect(first.state).toMatchObject({ phase: 'caption', captionStep: 3 });
  const resumed = new Trainer(recipe({ name_copies: 2 }), cpuEnv(dir));
  await resumed.setup();
  await resumed.run({ maxGrpoSteps: 0 });
  expect(resumed.state).toEqual(full.state);
  for (const [n, w] of await weights(resumed.model)) expect(w, n).toEqual(want.get(n));
}, 300_000);

test('name copies from a later step: the steps before it train captions alone, the steps from it train copies too', async () => {
  // Stopped after step 2 (event step 1), a run whose copies begin at step 2 holds the weights of a captions-only run.
  const stopAfter = async (fields: Partial<Recipe['caption'] & object>, eventStep: number) => {
    const abort = new AbortController();
    const t = new Trainer(recipe(fields), cpuEnv(tmp(), (e) => e.type === 'metrics' && e.step === eventStep && abort.abort()));
    await t.setup();
    await t.run({ signal: abort.signal, maxGrpoSteps: 0 });
    return weights(t.model);
  };
  const late = { name_copies: 2, name_copies_from_step: 2 };
  const lateAt2 = await stopAfter(late, 1), captionsAt2 = await stopAfter({}, 1);
  for (const [n, w] of lateAt2) expect(w, n).toEqual(captionsAt2.get(n));
  // Step 3 (event step 2) trains copies: the weights leave the captions-only run's.
  const lateAt3 = await stopAfter(late, 2), captionsAt3 = await stopAfter({}, 2);
  expect([...lateAt3].some(([n, w]) => w.some((v, i) => v !== captionsAt3.get(n)![i]))).toBe(true);
}, 300_000);

test('the recipe rejects captioning with FVQA parquet data, naming the field', () => {
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  const r = { ...base, data: { source: 'parquet', train: 'a.parquet', test: 'b.parquet' }, search: { backend: 'proxy' }, sft: null, caption: {} };
  expect(() => parseRecipe(r)).toThrow(/caption: must be null with data\.source parquet/);
  expect(() => parseRecipe({ ...base, caption: { max_steps: 0 } })).toThrow(/caption\.max_steps/);
  expect(() => parseRecipe({ ...base, caption: { max_steps: 10, name_copies: 2, name_copies_from_step: 10 } })).toThrow(/caption\.name_copies_from_step: 10 is not below caption\.max_steps 10/);
  expect(parseRecipe({ ...base, caption: {} }).caption).toEqual({ max_steps: 1500, learning_rate: 3e-4, per_device_train_batch_size: 8, warmup_ratio: 0.05, weight_decay: 0.01, max_grad_norm: 1, eval_steps: 500, eval_looks: 200, name_copies: 0, name_copies_from_step: 0 });
});
