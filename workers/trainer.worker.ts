/**
 * The trainer worker: owns its backend (a GPUDevice, the WebAssembly backend, or the CPU reference), runs a recipe through the
 * Trainer (warm-start SFT -> GRPO -> evaluation) with its run stored in IndexedDB (src/lab/runs-store.ts),
 * and streams progress, metrics and logs to the page, coalesced to at most a few messages a second.
 * Also generates FVQA-mini into the dataset store. API through comlink: {@link TrainerApi} (src/lab/worker-api.ts).
 * `runHosted` runs a recipe with files, checkpoints, searches and events supplied by the page instead of
 * IndexedDB and the proxy: the command line's Chromium runtime (scripts/chromium/) drives this same
 * worker that way. Hub models and data files (`hf:`) download through the IndexedDB hub cache.
 */
import * as Comlink from 'comlink';
import * as E from '../src/engine/index.js';
import { generateFvqaMini, SPLITS, type FvqaMiniConfig } from '../src/data/fvqa-mini.js';
import { parseRecipe, upgradeStoredRecipe, type Recipe } from '../src/rl/recipe.js';
import { rolloutRecords } from '../src/export/rollouts.js';
import type { Trajectory } from '../src/rl/rollout.js';
import type { KnobChange, Knobs } from '../src/rl/checkpoint.js';
import { Trainer, type TrainEvent } from '../src/rl/trainer.js';
import { ProxySearchClient } from '../src/search/client.js';
import { openIdbStore } from '../src/storage/idb-store.js';
import { batchesOf, type DatasetInfo } from '../src/storage/store.js';
import { bytesToBase64 } from '../src/search/image.js';
import { IdbHubCache } from '../src/storage/idb-hub-cache.js';
import { describeAdapter, readLabFile, readShipped } from '../src/lab/lab-env.js';
import { readStoredDataset, STORE_PREFIX } from '../src/lab/stored-data.js';
import { openRuns, type MetricRow, type RolloutView, type RunRecord, type RunsDb } from '../src/lab/runs-store.js';
import type { HostedOptions, HostedResult, StartOptions, TrainerApi, TrainerHost, TrainerUpdate } from '../src/lab/worker-api.js';

const FLUSH_MS = 250;

let runs: RunsDb | null = null;
const db = async () => (runs ??= await openRuns());
const created: Partial<Record<E.BackendChoice, Promise<E.CreatedBackend>>> = {};
let hubCache: IdbHubCache | null = null;
let current: { trainer: Trainer; run: RunRecord; abort: AbortController; running: Promise<void> | null } | null = null;
/** Step-through mode: every start or resume takes one GRPO step, then pauses. */
let stepThrough = false;
let listener: ((batch: TrainerUpdate[]) => void) | null = null;
let queue: TrainerUpdate[] = [];
let metricsToStore: MetricRow[] = [];
let timer: ReturnType<typeof setTimeout> | null = null;

/** Queues an update; progress events replace the queued one of their phase (coalescing). */
function send(u: TrainerUpdate): void {
  if (u.type === 'progress') queue = queue.filter((q) => !(q.type === 'progress' && q.phase === u.phase));
  queue.push(u);
  timer ??= setTimeout(flush, FLUSH_MS);
}

async function flush(): Promise<void> {
  timer = null;
  const batch = queue;
  queue = [];
  await storeMetrics();
  if (batch.length) listener?.(batch);
}

/** Writes the metrics rows not stored yet. */
async function storeMetrics(): Promise<void> {
  const rows = metricsToStore;
  metricsToStore = [];
  await (await db()).appendMetrics(rows);
}

/** The worker's backend for `choice` (created once per choice: auto picks and measures, see engine/select.ts). */
async function getBackend(choice: E.BackendChoice = 'auto'): Promise<E.Backend> {
  created[choice] ??= E.createBackend({ choice });
  return (await created[choice]!).backend;
}

const dataUrl = (bytes: Uint8Array) => `data:image/png;base64,${bytesToBase64(bytes)}`;

/** Decodes one step's trajectories for the inspector, with each token's log-prob change when the trainer re-scored them. */
function rolloutViews(trainer: Trainer, e: Extract<TrainEvent, { type: 'rollouts' }>): RolloutView[] {
  const tok = trainer.tok;
  const g = trainer.recipe.grpo;
  const imageId = tok.specialIds.image;
  const searchPenalty = trainer.knobsAt(e.step).search_penalty;
  return e.trajectories.map((t: Trajectory, i) => {
    const score = e.scores[i];
    const before = e.logprobs?.before[i], after = e.logprobs?.after[i];
    const turns: RolloutView['turns'] = [];
    t.turns.forEach((text, k) => {
      turns.push({ role: 'assistant', text, call: t.calls[k]?.kind ?? 'none' });
      const info = t.toolTurns[k];
      if (info) turns.push({ role: 'tool', parts: info.parts, error: info.error });
    });
    const tokens: RolloutView['tokens'] = [];
    for (let k = t.promptLength; k < t.tokens.length; k++) {
      const id = t.tokens[k], m = t.completion_mask[k] * t.tool_mask[k];
      if (id === imageId) {
        if (tokens.at(-1)?.t !== '[image]') tokens.push({ t: '[image]', m, i: k });
      } else tokens.push({ t: tok.decode([id]), m, i: k, ...(before && after && m ? { lp: before[k], d: after[k] - before[k] } : {}) });
    }
    return {
      group: Math.floor(i / g.num_generations), index: i % g.num_generations, question: t.question, category: t.row.category,
      groundTruth: t.row.reward_model.ground_truth, image: dataUrl(t.row.images[0].bytes), turns, tokens, ids: t.tokens,
      reward: e.rewards[i], accuracy: score.accuracy, format: score.format, penalty: score.penalty, searchPenalty, imageSearches: score.imageSearches, textSearches: score.textSearches,
      advantage: e.advantages[i], groupMean: e.meanGroupedRewards[i], groupStd: e.stdRewards[i], searched: t.toolTurns.length > 0, truncated: t.truncated,
    };
  });
}

async function setStatus(patch: Partial<RunRecord>): Promise<void> {
  if (!current) return;
  const t = current.trainer;
  const change = { phase: t.state.phase, sftStep: t.state.sftStep, grpoStep: t.state.grpoStep, ...patch };
  // Merged into the stored record: checkpoint saves update its checkpointAt and checkpointBytes.
  current.run = (await (await db()).updateRun(current.run.id, change)) ?? { ...current.run, ...change };
  send({ type: 'status', run: current.run });
}

/**
 * Whether `e` came with a lost GPU device: the engine says so, or the device reports it lost (an
 * operation in flight may fail first with another message). Forgets the device then: the next start
 * (the resume) requests a new one.
 */
async function deviceLost(e: unknown): Promise<boolean> {
  let lost = /device.*lost|lost.*device/i.test(e instanceof Error ? e.message : String(e));
  for (const choice of Object.keys(created) as E.BackendChoice[]) {
    const b = (await created[choice]!.catch(() => null))?.backend;
    if (!(b instanceof E.WebGPUBackend)) continue;
    const gone = lost || (await Promise.race([b.ctx.device.lost.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 100))]));
    if (gone) delete created[choice];
    lost ||= gone;
  }
  return lost;
}

/** A clear message for errors a user can act on. */
function explain(e: unknown, lost: boolean): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (lost) return `The GPU device was lost (${msg}). Resume the run from its last checkpoint.`;
  return msg;
}

/**
 * Runs the remaining phases until done, paused or stopped; with `grpoSteps` (step-through), pauses
 * after that many GRPO steps (the trainer has saved its checkpoint then).
 */
function runLoop(grpoSteps?: number): void {
  const c = current!;
  c.abort = new AbortController();
  const signal = c.abort.signal;
  c.running = (async () => {
    try {
      await setStatus({ status: 'running', error: undefined, deviceLost: undefined });
      await c.trainer.run({ signal, maxGrpoSteps: grpoSteps });
      if (signal.aborted) {
        await c.trainer.save();
        await setStatus({ status: signal.reason === 'stop' ? 'stopped' : 'paused' });
      } else await setStatus({ status: c.trainer.state.phase === 'done' ? 'done' : 'paused' });
    } catch (e) {
      const lost = await deviceLost(e);
      await setStatus({ status: 'failed', error: explain(e, lost), deviceLost: lost || undefined });
    } finally {
      c.running = null;
      await flush();
    }
  })();
}

/**
 * A shipped warm-start checkpoint's files as the first checkpoint of a run of `recipe` (as `npm run
 * train -- --init-from`): its trainer state is relabelled with the recipe's name.
 * @throws Error when the checkpoint is not right after SFT, or its recipe differs from `recipe` before GRPO
 */
async function warmStartFiles(folder: string, recipe: Recipe): Promise<Map<string, Uint8Array>> {
  const { recipe: theirs, files } = await readShipped(folder);
  const state = files.get('trainer_state.json');
  if (!state) throw new Error(`${folder}: no trainer_state.json`);
  const st = JSON.parse(new TextDecoder().decode(state)) as { phase: string; grpoStep: number };
  if (st.phase !== 'grpo' || st.grpoStep !== 0) throw new Error(`${folder}: the checkpoint is at phase ${st.phase}, GRPO step ${st.grpoStep}, not right after SFT`);
  for (const k of ['seed', 'model', 'data', 'search', 'caption', 'sft'] as const)
    if (JSON.stringify(theirs[k]) !== JSON.stringify(recipe[k])) throw new Error(`${folder}: its recipe differs from ${recipe.name} in "${k}", so it is not this recipe's warm start`);
  files.set('trainer_state.json', new TextEncoder().encode(JSON.stringify({ ...st, recipe: recipe.name }, null, 2) + '\n'));
  return files;
}

/** A `store:NAME` data file: the stored dataset as FVQA parquet bytes. @throws Error naming a missing dataset */
async function readFromStore(path: string): Promise<Uint8Array> {
  const store = await openIdbStore();
  try {
    return await readStoredDataset(path, store);
  } finally {
    await store.close();
  }
}

/** The worker's API; src/lab/worker-api.ts documents each method. */
const api: TrainerApi = {
  adapter: describeAdapter,

  listen(fn: (batch: TrainerUpdate[]) => void): void {
    listener = fn;
  },

  async generateDataset(config: Partial<FvqaMiniConfig>, prefix = 'fvqa-mini'): Promise<DatasetInfo[]> {
    const world = generateFvqaMini(config);
    const store = await openIdbStore();
    try {
      const out: DatasetInfo[] = [];
      for (const split of SPLITS) out.push(await store.write(`${prefix}-${split}`, batchesOf(world.splits[split]), { source: `fvqa-mini seed ${world.config.seed} ${split}` }));
      return out;
    } finally {
      await store.close();
    }
  },

  async start(recipe: unknown, opts: StartOptions = {}): Promise<RunRecord> {
    if (current?.running) throw new Error('a run is already in progress: pause or stop it first');
    const runsDb = await db();
    const stored = opts.resumeRunId ? await runsDb.getRun(opts.resumeRunId) : undefined;
    if (opts.resumeRunId && !stored) throw new Error(`run ${opts.resumeRunId} is not in storage`);
    // A stored run's recipe may carry the SFT section's former names (recipes stored before they changed).
    const r: Recipe = stored ? parseRecipe(upgradeStoredRecipe(stored.recipe)) : parseRecipe(recipe);
    const now = new Date().toISOString();
    const run: RunRecord = stored ?? {
      id: `${r.name}-${now.replace(/[-:T]/g, '').slice(0, 14)}`, recipe: r, createdAt: now, updatedAt: now, status: 'running',
      phase: r.caption ? 'caption' : r.sft ? 'sft' : 'grpo', sftStep: 0, grpoStep: 0, checkpointBytes: 0, checkpointAt: null,
    };
    // Checked before the run is stored; saved after, so that its record says it has a checkpoint (a reload offers to resume it).
    const warm = !stored && opts.initFrom ? await warmStartFiles(opts.initFrom, r) : null;
    if (!stored) await runsDb.putRun(run);
    if (warm) await runsDb.checkpointStore(run.id).save(warm);
    const b = await getBackend(opts.backend);
    current?.trainer.model?.dispose();
    const checkpoints = runsDb.checkpointStore(run.id);
    const trainer = new Trainer(r, {
      backend: b,
      readFile: (p) => (p.startsWith(STORE_PREFIX) ? readFromStore(p) : readLabFile(p, runsDb)),
      // The steps a checkpoint holds have their metrics stored first: a reload right after a save
      // resumes past those steps and would otherwise leave holes in the charts.
      store: {
        ...checkpoints,
        save: async (files) => {
          await storeMetrics();
          await checkpoints.save(files);
        },
      },
      proxyTools: r.search.backend === 'proxy' ? new ProxySearchClient({ baseUrl: opts.proxyUrl ?? r.search.proxy_url }) : undefined,
      hub: { cache: (hubCache ??= new IdbHubCache()), endpoint: opts.hubEndpoint },
      inspect: opts.inspect ?? true,
      onEvent: (e) => {
        if (e.type === 'metrics') {
          const row = { runId: run.id, phase: e.phase, step: e.step, metrics: e.metrics };
          metricsToStore.push(row);
          send({ type: 'metrics', row });
        } else if (e.type === 'rollouts') {
          const views = rolloutViews(trainer, e);
          void runsDb.putRollouts(run.id, e.step, views).then(() => send({ type: 'rollouts', step: e.step }));
        } else send(e);
      },
    });
    current = { trainer, run, abort: new AbortController(), running: null };
    try {
      await trainer.setup();
    } catch (e) {
      const lost = await deviceLost(e);
      await setStatus({ status: 'failed', error: explain(e, lost), deviceLost: lost || undefined });
      await flush();
      throw new Error(explain(e, lost));
    }
    // A resumed run re-runs the steps after its checkpoint: their stored metrics go, so charts get one point per step.
    if (stored) await runsDb.truncateMetrics(run.id, trainer.state);
    runLoop(stepThrough ? 1 : undefined);
    return current.run;
  },

  setStepThrough(on: boolean): void {
    stepThrough = on;
    if (on && current?.running) current.abort.abort('pause');
  },

  step(): void {
    if (!current || current.running) throw new Error(current ? 'the run is running: pause it (or turn on step-through) first' : 'no run to step: start one');
    runLoop(1);
  },

  async setKnob(knob: keyof Knobs, value: number): Promise<KnobChange> {
    if (!current) throw new Error('no run: start one first');
    const change = current.trainer.setKnob(knob, value);
    if (!current.running) await current.trainer.save();
    send({ type: 'log', message: `${knob} = ${value} from GRPO step ${change.step}` });
    return change;
  },

  async describeBackend(choice: E.BackendChoice = 'auto'): Promise<{ name: E.Backend['name']; description: string; reason: string; warning?: string }> {
    const c = await (created[choice] ??= E.createBackend({ choice }));
    return { name: c.backend.name, description: c.backend.description, reason: c.reason, warning: c.warning };
  },

  async runHosted(recipe: unknown, host: TrainerHost, opts: HostedOptions = {}): Promise<HostedResult> {
    const r = parseRecipe(recipe);
    const trainer = new Trainer(r, {
      backend: await getBackend(opts.backend),
      readFile: (p) => host.readFile(p),
      store: { load: () => host.loadCheckpoint(), save: (files) => host.saveCheckpoint(files) },
      proxyTools: { textSearch: (q, k) => host.textSearch(q, k), imageSearch: (q, k) => host.imageSearch(q, k) },
      hub: { cache: (hubCache ??= new IdbHubCache()), ...opts.hub },
      onEvent: (e) => {
        if (e.type !== 'rollouts') host.onEvent(e);
        else if (opts.rolloutRecords) host.onEvent({ type: 'rollouts', step: e.step, records: rolloutRecords(e, r.grpo.reward, r.grpo.num_generations) });
      },
    });
    try {
      await trainer.setup();
      if (opts.evalOnly) trainer.state.phase = 'eval';
      await trainer.run({ maxGrpoSteps: opts.maxGrpoSteps });
      const { phase, sftStep, grpoStep } = trainer.state;
      return { phase, sftStep, grpoStep, eval: trainer.evalResult };
    } catch (e) {
      throw new Error(explain(e, await deviceLost(e)));
    } finally {
      trainer.model?.dispose();
    }
  },

  async pause(): Promise<void> {
    current?.abort.abort('pause');
    await current?.running;
  },

  async resume(): Promise<void> {
    if (!current || current.running) return;
    runLoop(stepThrough ? 1 : undefined);
  },

  async stop(): Promise<void> {
    if (!current) return;
    if (current.running) {
      current.abort.abort('stop');
      await current.running;
    } else await setStatus({ status: 'stopped' });
    current.trainer.model?.dispose();
    current = null;
  },
};

Comlink.expose(api);
