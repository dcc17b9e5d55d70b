/**
 * The GRPO fields a recipe sets, honoured by the Trainer (float64 CPU backend, a micro VLM from scratch,
 * GRPO only): grpo.seed drives sampling and the prompt order (same seed, same run; another seed, other
 * rollouts; the model's initialisation stays the recipe seed's), logging_steps emits interval means,
 * checkpoint_steps saves at the right steps, the sigmoid_decay schedule gives the learning rates,
 * max_prompt_length truncates prompts, and filter_groups with a limit stops a policy whose groups all
 * have identical rewards.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { loadTokenizer } from '../models/tokenizer.js';
import { TurnEncoder } from './conversation.js';
import { FsCheckpointStore } from '../storage/fs-checkpoint-store.js';
import { parseRecipe, type Recipe } from './recipe.js';
import type { CheckpointStore } from '../storage/checkpoint-store.js';
import { microModelFiles } from './testing.js';
import { epochBatches, meanTrainedTokensPerStep, sftEpochRng } from './sft-plan.js';
import { replayWarmStart, Trainer, type TrainEvent } from './trainer.js';
import { trainedTokens } from './steps.js';
import { observedOpening } from '../data/trajectories.js';
import { rollout } from './rollout.js';
import { searchLimits } from './config.js';
import { worldOf } from './environment.js';
import { drillWorldOf } from '../data/fvqa-mini.js';

const root = new URL('../../', import.meta.url).pathname;
const readFile = microModelFiles(32);

const dirs: string[] = [];
let maxPrompt = 0;
beforeAll(async () => {
  // The longest compact prompt of the training split, to set max_prompt_length just below it.
  const t = new Trainer(recipe({}), env().env);
  await t.setup();
  const tok = loadTokenizer(JSON.parse(readFileSync(join(root, 'models/tiny-vlm/tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(root, 'models/tiny-vlm/tokenizer_config.json'), 'utf8')));
  const enc = new TurnEncoder(tok, (t.model as unknown as { imageSeqLen: number }).imageSeqLen, true);
  maxPrompt = Math.max(...t.data.splits.train.map((r) => enc.prompt(r.prompt[0].content).length));
  t.model.dispose();
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** An SFT section for tests that read the warm start's data (setup generates its drills only for a run with SFT ahead). */
const WARM_START = { num_train_epochs: 1, learning_rate: 0.001, per_device_train_batch_size: 1, gradient_accumulation_steps: 1 };

function recipe(grpo: Record<string, unknown>, over: Partial<Record<'checkpoint_steps', number>> = {}): Recipe {
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  return parseRecipe({
    ...base,
    name: 'fvqa-mini-fields',
    model: { ...base.model, source: 'models/micro' },
    caption: null,
    data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, held_out_entities: 2, test_size: 8 } },
    sft: null,
    grpo: { ...base.grpo, num_generations: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 1, max_steps: 3, learning_rate: 0.001, max_completion_length: 24, ...grpo, search: { ...base.grpo.search, results_per_search: 1 } },
    rollout: { max_turn_tokens: 8 },
    eval: { split: 'test', max_rows: 1, modes: ['on_demand'], batch_size: 1 },
    checkpoint_steps: 1,
    ...over,
  });
}

/** A CPU environment on a fresh folder, recording events and the GRPO step of every checkpoint saved. */
function env() {
  const dir = mkdtempSync(join(tmpdir(), 'mmsearch-fields-'));
  dirs.push(dir);
  const fs = new FsCheckpointStore(dir);
  const saves: number[] = [];
  const store: CheckpointStore = {
    load: () => fs.load(),
    save: async (files) => {
      saves.push(JSON.parse(new TextDecoder().decode(files.get('trainer_state.json'))).grpoStep);
      await fs.save(files);
    },
  };
  const events: TrainEvent[] = [];
  return { env: { backend: new E.CpuBackend(), readFile, store, onEvent: (e: TrainEvent) => events.push(e) }, saves, events };
}

async function run(r: Recipe, maxGrpoSteps?: number) {
  const e = env();
  const t = new Trainer(r, e.env);
  await t.setup();
  const init = await Promise.all(t.model.parameters().map(async (p) => Array.from(await p.backend.read(p.storage, true))));
  await t.run({ maxGrpoSteps });
  const metrics = e.events.filter((x): x is Extract<TrainEvent, { type: 'metrics' }> => x.type === 'metrics');
  const rollouts = e.events.filter((x): x is Extract<TrainEvent, { type: 'rollouts' }> => x.type === 'rollouts');
  t.model.dispose();
  return { t, init, metrics, rollouts, saves: e.saves };
}

const sigmoid = { lr_scheduler_type: 'sigmoid_decay', lr_scheduler_kwargs: { decay_ratio: 0.5, center_steps: 1 } };
/** Metrics that do not depend on wall time (equal across runs on the CPU backend). */
const timeless = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('time/') && k !== 'tokens_per_second' && k !== 'memory/peak_bytes'));
const transcript = (r: Extract<TrainEvent, { type: 'rollouts' }>) => r.trajectories.map((t) => [t.row.data_id, t.tokens]);

test('grpo.seed, logging_steps, checkpoint_steps, sigmoid_decay and max_prompt_length in GRPO runs', async () => {
  // A: seed 7, every step logged, a checkpoint every 2 steps, max_prompt_length 3 below the longest prompt.
  const a = await run(recipe({ seed: 7, logging_steps: 1, max_prompt_length: maxPrompt - 3, ...sigmoid }, { checkpoint_steps: 2 }));
  // B: the same run, logged every 2 steps, a checkpoint every step.
  const b = await run(recipe({ seed: 7, logging_steps: 2, max_prompt_length: maxPrompt - 3, ...sigmoid }, { checkpoint_steps: 1 }));
  // C: seed 8, one step.
  const c = await run(recipe({ seed: 8, logging_steps: 1, max_prompt_length: maxPrompt - 3, ...sigmoid }), 1);

  // grpo.seed: the same seed repeats the run; another seed samples other rollouts (prompts or tokens);
  // the model's initialisation is the recipe's seed either way.
  expect(a.rollouts.map(transcript)).toEqual(b.rollouts.map(transcript));
  expect(transcript(c.rollouts[0])).not.toEqual(transcript(a.rollouts[0]));
  expect(c.init).toEqual(a.init);
  expect(a.t.state).toMatchObject({ grpoSeed: 7, genBatches: 3, grpoStep: 3, phase: 'done' });
  expect(c.t.state).toMatchObject({ grpoSeed: 8, genBatches: 1, grpoStep: 1 });

  // logging_steps 1: every step, steps 0, 1, 2. logging_steps 2: global step 2 only (the last step, 3,
  // would close an interval at 4, which never comes), the mean of steps 0 and 1, the learning rate of step 1.
  expect(a.metrics.map((m) => m.step)).toEqual([0, 1, 2]);
  expect(b.metrics.map((m) => m.step)).toEqual([1]);
  const [a0, a1] = a.metrics.map((m) => timeless(m.metrics));
  const b1 = timeless(b.metrics[0].metrics);
  expect(Object.keys(b1)).toEqual(Object.keys(a1));
  for (const [k, v] of Object.entries(b1)) {
    if (k === 'learning_rate' || k === 'grad_norm') expect(v, k).toBe(a1[k]);
    else if (Number.isNaN(a0[k]) || Number.isNaN(a1[k])) expect(v, k).toBe(Number.isNaN(a0[k]) ? a1[k] : a0[k]);
    else expect(v, k).toBeCloseTo((a0[k] + a1[k]) / 2, 12);
  }

  // sigmoid_decay, decay 0.5, center 1 (k = 10): lr·(0.5/(1 + e^(10(s - 1))) + 0.5) = 0.001 · [0.9999773, 0.75, 0.5000227].
  const lrs = a.metrics.map((m) => m.metrics.learning_rate / 0.001);
  expect(lrs[0]).toBeCloseTo(0.99997730, 7);
  expect(lrs[1]).toBeCloseTo(0.75, 12);
  expect(lrs[2]).toBeCloseTo(0.50002270, 7);

  // checkpoint_steps (the recipe's one checkpoint frequency): A (2) saves after GRPO step 2, when GRPO
  // ends (3), then after evaluation; B (1) after every step, then again when GRPO ends and after evaluation.
  expect(a.saves).toEqual([2, 3, 3]);
  expect(b.saves).toEqual([1, 2, 3, 3, 3]);

  // max_prompt_length: every trained prompt is at most maxPrompt - 3 tokens, and the longest ones were cut.
  const prompts = a.rollouts.flatMap((r) => r.trajectories.map((t) => t.promptLength));
  expect(Math.max(...prompts)).toBe(maxPrompt - 3);
  expect(a.metrics.some((m) => m.metrics['prompts/truncated_ratio'] > 0)).toBe(true);
}, 600_000);

test('filter_groups: a policy whose groups all have identical rewards draws max_num_gen_batches batches, then stops naming the field', async () => {
  // An untrained model never writes the protocol's format: every reward is 0, every group is dropped.
  const e = env();
  const t = new Trainer(recipe({ filter_groups: { enable: true, max_num_gen_batches: 2 } }), e.env);
  await t.setup();
  await expect(t.run()).rejects.toThrow(/grpo\.filter_groups\.max_num_gen_batches 2: after 2 generation batches only 0 of the 2 groups a step trains on had rewards that differ \(4 groups had identical rewards/);
  // The step was not taken, and the prompt stream did not move.
  expect(t.state).toMatchObject({ grpoStep: 0, genBatches: 0 });
  expect(e.events.some((x) => x.type === 'rollouts' || x.type === 'metrics')).toBe(false);
  t.model.dispose();
}, 300_000);

test('data.train_categories: GRPO prompts come from the listed FVQA categories only (the ablation without data balancing)', async () => {
  const base = recipe({ max_steps: 1 });
  const all = await run(base, 1);
  expect(new Set(all.t.data.splits.train.map((r) => r.category))).toEqual(new Set(['search_free', 'search_required']));
  const only = await run(parseRecipe({ ...base, data: { ...base.data, train_categories: ['search_required'] } }), 1);
  const rows = only.t.data.splits.train;
  expect(rows.length).toBe(all.t.data.splits.train.filter((r) => r.category === 'search_required').length);
  expect(only.rollouts.flatMap((r) => r.trajectories.map((t) => t.row.category))).toEqual(expect.arrayContaining(['search_required']));
  expect(only.rollouts.flatMap((r) => r.trajectories.map((t) => t.row.category)).every((c) => c === 'search_required')).toBe(true);
  // The test split is untouched: the ablation is evaluated on the same rows as the main run.
  expect(only.t.data.splits.test).toEqual(all.t.data.splits.test);
  expect(() => parseRecipe({ ...base, data: { ...base.data, train_categories: ['visual'] } })).toThrow(/train_categories/);
}, 300_000);

test('eval.temperature and eval.num_samples: sampled evaluation counts every trajectory; greedy by default', async () => {
  const evalWith = async (ev: Record<string, unknown>) => {
    const base = recipe({});
    const t = new Trainer(parseRecipe({ ...base, eval: { ...base.eval, max_rows: 2, ...ev } }), env().env);
    await t.setup();
    t.state.phase = 'eval';
    await t.run();
    t.model.dispose();
    return t.evalResult!;
  };
  const greedy = await evalWith({});
  const greedyAgain = await evalWith({ temperature: 0, num_samples: 1 });
  expect(greedyAgain.records).toEqual(greedy.records);
  const sampled = await evalWith({ temperature: 1, num_samples: 3 });
  expect(sampled.summaries[0].rows).toBe(6);
  expect(sampled.records.map((r) => r.data_id)).toEqual(greedy.records.flatMap((r) => [r.data_id, r.data_id, r.data_id]));
  // Seeded by the recipe seed: the same sampled evaluation twice gives the same trajectories.
  expect((await evalWith({ temperature: 1, num_samples: 3 })).records).toEqual(sampled.records);
  // Three samples of a barely trained policy at temperature 1 do not all repeat its greedy transcript.
  expect(sampled.records.map((r) => JSON.stringify(r.transcript))).not.toEqual(greedy.records.flatMap((r) => Array(3).fill(JSON.stringify(r.transcript))));
}, 300_000);

test('reading drills replay their searches on their drill world\'s index: the title they read and the fact they answer are in the results', async () => {
  const base = recipe({});
  const t = new Trainer(parseRecipe({ ...base, sft: WARM_START, data: { ...base.data, fvqa_mini: { ...base.data.fvqa_mini, reading_drills: 4 } } }), env().env);
  await t.setup();
  t.model.dispose();
  const drills = t.data.splits.sft.filter((r) => r.extra_info!.search_mode === 'rag' && r.extra_info!.entity_id.startsWith('drill'));
  expect(drills).toHaveLength(4);
  for (const row of drills) {
    const replay = (await replayWarmStart(row, await t.rowTools(row), 1))!;
    expect(replay).not.toBeNull();
    const name = /The top result is (\w+)\./.exec(replay.messages[3].content)![1];
    expect(replay.messages[2].content).toContain(`title: ${name}<`);
    expect(replay.messages[4].content).toContain(String(row.reward_model.ground_truth));
  }
  const world = t.data.splits.sft.find((r) => !r.extra_info!.entity_id.startsWith('drill'))!;
  expect(await t.rowTools(world)).toBe(t.tools);
  // A row of a drill world this recipe did not make is refused, naming the row and the fields that make drills.
  const stray = { ...drills[0], data_id: 'stray', extra_info: { ...drills[0].extra_info!, entity_id: 'drillg99-e000' } };
  await expect(t.rowTools(stray)).rejects.toThrow(/row stray: drill world "drillg99" is not among the world's \d+ drill corpora \(data\.fvqa_mini\.reading_drills, look_drills, grpo_drills\)/);
});

test("SFT trains a reading drill's observed look but no part of a world RAG-workflow row's imposed first turn", async () => {
  const base = recipe({});
  const t = new Trainer(parseRecipe({ ...base, sft: WARM_START, data: { ...base.data, fvqa_mini: { ...base.data.fvqa_mini, reading_drills: 3, rag_workflow_share: 0.5 } } }), env().env);
  await t.setup();
  t.model.dispose();
  const convs = await t.warmStartConversations();
  expect(convs).toHaveLength(t.data.splits.sft.length);
  const trained = (i: number) => t.tok.decode(convs[i].tokens.filter((_, k) => convs[i].lossMask[k] === 1));
  const firstTurn = (i: number) => t.data.splits.sft[i].prompt[1].content;
  const rag = t.data.splits.sft.flatMap((r, i) => (r.extra_info!.search_mode === 'rag' ? [i] : []));
  const drills = rag.filter((i) => convs[i].drill);
  const world = rag.filter((i) => !convs[i].drill);
  expect(drills).toHaveLength(3);
  expect(world.length).toBeGreaterThan(0);
  for (const i of drills) {
    const look = observedOpening(firstTurn(i));
    expect(look).toMatch(/^<reason>A \w+ \w+ \w+, \d+ marks?\./);
    expect(trained(i).trimStart().startsWith(look), trained(i)).toBe(true);
    expect(trained(i)).not.toContain(firstTurn(i).slice(look.length)); // the imposed decision is context
  }
  for (const i of world) expect(trained(i)).not.toContain(observedOpening(firstTurn(i)) || firstTurn(i));
});

test("a run past SFT (here: no SFT) generates no warm-start drills, and the same world otherwise", async () => {
  const base = recipe({});
  const r = parseRecipe({ ...base, data: { ...base.data, fvqa_mini: { ...base.data.fvqa_mini, reading_drills: 3, look_drills: 2, grpo_drills: 2 } } });
  const t = new Trainer(r, env().env);
  await t.setup();
  t.model.dispose();
  const full = worldOf(r);
  const ids = (rows: readonly { data_id: string }[]) => rows.map((row) => row.data_id);
  expect(full.splits.sft.filter((row) => drillWorldOf(row) !== null)).toHaveLength(3 + 2 * 2);
  expect(t.data.splits.sft.some((row) => drillWorldOf(row) !== null)).toBe(false);
  expect(ids(t.data.splits.sft)).toEqual(ids(full.splits.sft.filter((row) => drillWorldOf(row) === null)));
  for (const split of ['train', 'test', 'heldout'] as const) expect(ids(t.data.splits[split]!), split).toEqual(ids(full.splits[split]!));
  expect(t.data.splits.train.filter((row) => drillWorldOf(row) !== null)).toHaveLength(2); // GRPO drills stay
});

test("a drilled world reports 'data' progress: its drill creatures, its drills, then the warm start's encoding, each to its total", async () => {
  const base = recipe({});
  const e = env();
  const t = new Trainer(parseRecipe({ ...base, sft: WARM_START, data: { ...base.data, fvqa_mini: { ...base.data.fvqa_mini, reading_drills: 70, look_drills: 3 } } }), e.env);
  await t.setup();
  t.model.dispose();
  const afterSetup = e.events.length;
  await t.warmStartConversations();
  const data = (from: number, to: number) => e.events.slice(from, to).flatMap((ev) => (ev.type === 'progress' && ev.phase === 'data' ? [[ev.done, ev.total]] : []));
  const generation = data(0, afterSetup);
  // Reports are throttled (4 a second), but each phase's last one, at its total, is always sent.
  expect(generation).toContainEqual([70, 70]); // the reading drills' creatures (two drill worlds), then their rows
  expect(generation).toContainEqual([3, 3]); // the look drills'
  expect(generation.every(([done, total]) => done >= 1 && done <= total)).toBe(true);
  const encoding = data(afterSetup, e.events.length);
  expect(encoding.at(-1)).toEqual([t.data.splits.sft.length, t.data.splits.sft.length]);
  expect(encoding.map(([done]) => done)).toEqual([...encoding.map(([done]) => done)].sort((a, b) => a - b));
});

test('SFT deals reading and look drills out over its epochs (each seen once) and every world row to every epoch', async () => {
  const base = recipe({});
  /** SFT's optimizer steps in all, read off the first progress event (the run is stopped right after it). */
  const sftSteps = async (drills: object) => {
    const ac = new AbortController();
    const { env: e } = env();
    let total = -1;
    const t = new Trainer(parseRecipe({
      ...base, data: { ...base.data, fvqa_mini: { ...base.data.fvqa_mini, ...drills } },
      sft: { num_train_epochs: 2, learning_rate: 0.001, per_device_train_batch_size: 1, gradient_accumulation_steps: 1 },
    }), { ...e, onEvent: (ev) => { if (ev.type === 'progress' && ev.phase === 'sft') { total = ev.total; ac.abort(); } } });
    await t.setup();
    await t.run({ signal: ac.signal });
    t.model.dispose();
    return { total, rows: t.data.splits.sft.length };
  };
  const world = await sftSteps({});
  const drilled = await sftSteps({ reading_drills: 3, look_drills: 2 });
  expect(drilled.rows).toBe(world.rows + 3 + 2 * 2);
  expect(world.total).toBe(2 * world.rows);
  expect(drilled.total).toBe(world.total + 3 + 2 * 2);
}, 120_000);

test("GRPO drills' rollouts search their drill world's index, the world's rows the world's, in one batch", async () => {
  const base = recipe({});
  const t = new Trainer(parseRecipe({ ...base, data: { ...base.data, fvqa_mini: { ...base.data.fvqa_mini, grpo_drills: 3 } } }), env().env);
  await t.setup();
  const world = t.data.splits.train.filter((r) => !r.extra_info!.entity_id.startsWith('drillg')).slice(0, 2);
  const drills = t.data.splits.train.filter((r) => r.extra_info!.entity_id.startsWith('drillg'));
  expect(drills).toHaveLength(3);
  // RAG mode imposes the image search whatever the (untrained) policy writes.
  const { trajectories } = await rollout(t.model, t.tok, [...world, ...drills], t.tools, {
    sampling: { temperature: 0, rng: new E.Rng(0) }, limits: searchLimits(t.recipe.grpo), maxTurnTokens: 8, maxCompletionLength: 200,
    resultsPerSearch: 1, imageSize: t.imageSize, withThumbnails: true, compactInstructions: true, mode: 'rag', rowTools: t.rowTools,
  });
  t.model.dispose();
  const worldTitles = new Set(worldOf(t.recipe).corpus.images.map((im) => im.title));
  for (const tr of trajectories) {
    const title = /title: ([^\n<]+)/.exec(tr.toolTurns[0].text)![1].trim();
    const drill = tr.row.extra_info!.entity_id.startsWith('drillg');
    expect(worldTitles.has(title), `${tr.row.extra_info!.entity_id}: ${title}`).toBe(!drill);
  }
}, 120_000);

test("sft.loss_agg_mode token-sum-norm divides SFT's first step by the epoch's mean trained tokens per step, token-mean by the step's own", async () => {
  const base = recipe({});
  /** The first SFT step's metrics and the warm start's encoded conversations (the run stops after that step). */
  const firstStep = async (mode: string) => {
    const ac = new AbortController();
    const { env: e } = env();
    let metrics: Record<string, number> = {};
    const t = new Trainer(parseRecipe({ ...base, sft: { ...WARM_START, num_train_epochs: 1, per_device_train_batch_size: 2, loss_agg_mode: mode } }), {
      ...e, onEvent: (ev) => { if (ev.type === 'metrics' && ev.phase === 'sft') { metrics = ev.metrics; ac.abort(); } },
    });
    await t.setup();
    const convs = await t.warmStartConversations();
    await t.run({ signal: ac.signal });
    t.model.dispose();
    return { metrics, convs };
  };
  const mean = await firstStep('token-mean');
  const norm = await firstStep('token-sum-norm');
  const trained = mean.convs.map((c) => trainedTokens({ completion_mask: c.lossMask }));
  // The first step's trajectories, as the trainer draws them (one epoch, no length grouping).
  const first = epochBatches(trained, 2, false, sftEpochRng(base.seed, 0))[0];
  const stepTokens = first.reduce((n, i) => n + trained[i], 0);
  const constant = meanTrainedTokensPerStep(trained, 2);
  expect(constant).not.toBeCloseTo(stepTokens, 1);
  expect(norm.metrics.loss).toBeCloseTo(mean.metrics.loss, 6);
  expect(norm.metrics.grad_norm / mean.metrics.grad_norm).toBeCloseTo(stepTokens / constant, 6);
  expect(() => parseRecipe({ ...base, sft: { ...WARM_START, loss_agg_mode: 'seq-mean' } })).toThrow(/loss_agg_mode/);
}, 120_000);

test('sft.balance_decisions: each warm-start conversation carries its trained first turn\'s decision (question kind, searches or not); the field needs length grouping', async () => {
  const base = recipe({});
  const r = parseRecipe({ ...base, sft: { ...WARM_START, group_by_length: true, per_device_train_batch_size: 2, balance_decisions: true }, data: { ...base.data, fvqa_mini: { ...base.data.fvqa_mini, decision_neutral: 1, rag_workflow_share: 0.5 } } });
  const t = new Trainer(r, env().env);
  await t.setup();
  t.model.dispose();
  const convs = await t.warmStartConversations();
  const rows = t.data.splits.sft;
  expect(convs).toHaveLength(rows.length);
  convs.forEach((c, i) => {
    const row = rows[i];
    if (row.extra_info!.search_mode === 'rag') expect(c.decision, row.data_id).toBeNull();
    else expect(c.decision, row.data_id).toEqual({ kind: row.extra_info!.question_kind, searches: row.prompt.filter((m) => m.role === 'assistant').length > 1 });
  });
  // The neutral world: per kind, as many first turns answer as search.
  const count = (kind: string, searches: boolean) => convs.filter((c) => c.decision?.kind === kind && c.decision.searches === searches).length;
  for (const kind of ['visual', 'familiar_fact', 'unfamiliar_fact', 'unfamiliar_name']) expect(count(kind, true), kind).toBe(count(kind, false));
  expect(convs.some((c) => c.decision === null)).toBe(true);
  expect(() => parseRecipe({ ...base, sft: { ...WARM_START, balance_decisions: true } })).toThrow(/sft\.balance_decisions: needs sft\.group_by_length: true/);
  expect(() => parseRecipe({ ...base, sft: { ...WARM_START, group_by_length: true, balance_decisions: true } })).toThrow(/sft\.balance_decisions: needs optimizer steps of at least 2 trajectories/);
}, 120_000);
