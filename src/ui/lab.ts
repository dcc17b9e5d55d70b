/**
 * The page's controller: the two workers (through comlink), the lab's state (adapter, recipe, search
 * backend, the current run, its metrics, progress and logs) and a subscription for the views.
 */
import * as Comlink from 'comlink';
import { useEffect, useState } from 'preact/hooks';
import type { BackendChoice } from '../engine/select.js';
import type { Phase } from '../rl/checkpoint.js';
import type { Recipe } from '../rl/recipe.js';
import { configuredProxyUrl } from '../search/client.js';
import type { KnobChange, Knobs } from '../rl/checkpoint.js';
import { describeAdapter, fullRecipe, shippedCheckpoints, SHIPPED_WARM_START, watchRecipe, type AdapterReport } from '../lab/lab-env.js';
import { openRuns, type MetricRow, type RunRecord, type RunsDb } from '../lab/runs-store.js';
import type { InferenceApi, StartOptions, TrainerApi, TrainerUpdate } from '../lab/worker-api.js';

/** Progress of one phase (download, SFT, GRPO, eval). */
export interface PhaseProgress {
  done: number;
  total: number;
  etaSeconds: number | null;
}

/** What /api/health said, or why it could not be asked. */
export interface ProxyState {
  url: string | null;
  reachable: boolean;
  health?: unknown;
  message: string;
}

/** The lab's page state and actions. */
export class Lab {
  adapter: AdapterReport | null = null;
  /** The compute backend asked for (Setup), and what the trainer worker made of it. */
  backend: BackendChoice = 'auto';
  backendInfo: { name?: 'webgpu' | 'wasm' | 'cpu'; description: string; reason: string; warning?: string; error?: string } | null = null;
  /** The recipe a new run trains: the "Watch GRPO learn" preset when the warm start is shipped, else the main recipe from scratch. */
  recipe: Recipe = shippedCheckpoints().includes(SHIPPED_WARM_START) ? watchRecipe() : fullRecipe();
  /** A shipped warm-start checkpoint a new run starts from (the Watch presets), or null to train from the recipe's start. */
  initFrom: string | null = shippedCheckpoints().includes(SHIPPED_WARM_START) ? SHIPPED_WARM_START : null;
  /** Step-through: the run pauses after every GRPO step; "One step" takes the next. */
  stepThrough = false;
  proxy: ProxyState = { url: configuredProxyUrl() ?? null, reachable: false, message: 'checking…' };
  run: RunRecord | null = null;
  metrics: MetricRow[] = [];
  progress: Partial<Record<Phase, PhaseProgress>> = {};
  logs: string[] = [];
  /** Last GRPO step with stored rollouts (bumps the inspector). */
  rolloutStep: number | null = null;
  /** A stored run that was interrupted (tab closed, crashed, or its GPU device lost) and can be resumed. */
  resumable: RunRecord | null = null;
  error: string | null = null;
  readonly trainer: Comlink.Remote<TrainerApi>;
  readonly inference: Comlink.Remote<InferenceApi>;
  private listeners = new Set<() => void>();
  private runsDb: Promise<RunsDb> = openRuns();

  constructor() {
    this.trainer = Comlink.wrap<TrainerApi>(new Worker(new URL('../../workers/trainer.worker.ts', import.meta.url), { type: 'module', name: 'trainer' }));
    this.inference = Comlink.wrap<InferenceApi>(new Worker(new URL('../../workers/inference.worker.ts', import.meta.url), { type: 'module', name: 'inference' }));
    void this.trainer.listen(Comlink.proxy((batch: TrainerUpdate[]) => this.apply(batch)));
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Tells the views that state changed. */
  changed(): void {
    for (const fn of this.listeners) fn();
  }

  runs(): Promise<RunsDb> {
    return this.runsDb;
  }

  /** Asks the trainer worker which backend `this.backend` gives (auto measures, so this takes a second). */
  async describeBackend(): Promise<void> {
    const asked = this.backend;
    this.backendInfo = null;
    this.changed();
    const info = await this.trainer.describeBackend(asked).catch((e: unknown) => ({ description: 'unavailable', reason: '', error: e instanceof Error ? e.message : String(e) }));
    if (asked === this.backend) this.backendInfo = info;
    this.changed();
  }

  /** Adapter, proxy health and an interrupted run to offer for resuming. */
  async init(): Promise<void> {
    this.adapter = await describeAdapter().catch((e) => ({ available: false, name: 'none', features: [], limits: {}, problem: String(e) }));
    void this.describeBackend();
    this.changed();
    await Promise.all([this.checkProxy(), this.findResumable()]);
  }

  /** Asks the proxy's /api/health; an unreachable proxy switches searches to the in-worker engine. */
  async checkProxy(): Promise<void> {
    const url = this.proxy.url;
    if (!url) {
      this.proxy = { url: null, reachable: false, message: 'No search proxy configured (start the lab with npm start): searches use the in-worker local engine.' };
    } else {
      try {
        const res = await fetch(new URL('/api/health', url), { signal: AbortSignal.timeout(3000) });
        this.proxy = { url, reachable: res.ok, health: await res.json(), message: res.ok ? `proxy at ${url}` : `proxy answered HTTP ${res.status}` };
      } catch (e) {
        this.proxy = { url, reachable: false, message: `Search proxy at ${url} is unreachable (${(e as Error).message}): searches use the in-worker local engine.` };
      }
    }
    if (!this.proxy.reachable && this.recipe.search.backend === 'proxy') this.recipe = { ...this.recipe, search: { ...this.recipe.search, backend: 'local' } };
    this.changed();
  }

  private async findResumable(): Promise<void> {
    const runs = await (await this.runsDb).listRuns();
    this.resumable = runs.find((r) => (r.status === 'running' || r.status === 'paused' || (r.status === 'failed' && r.deviceLost)) && r.checkpointAt) ?? null;
    this.changed();
  }

  private apply(batch: TrainerUpdate[]): void {
    for (const u of batch) {
      if (u.type === 'metrics') this.metrics.push(u.row);
      else if (u.type === 'progress') this.progress[u.phase] = { done: u.done, total: u.total, etaSeconds: u.etaSeconds };
      else if (u.type === 'log') this.logs = [...this.logs.slice(-199), u.message];
      else if (u.type === 'rollouts') this.rolloutStep = u.step;
      else if (u.type === 'status') {
        this.run = u.run;
        if (u.run.error) this.logs = [...this.logs, `error: ${u.run.error}`];
      }
    }
    this.changed();
  }

  private startOptions(): StartOptions {
    return { backend: this.backend, proxyUrl: this.proxy.reachable ? this.proxy.url ?? undefined : undefined };
  }

  /** Picks a recipe to train, with the shipped warm start it starts from (or null). */
  useRecipe(recipe: Recipe, initFrom: string | null = null): void {
    this.recipe = recipe;
    this.initFrom = initFrom;
    this.changed();
  }

  /** Step-through on or off (a running run pauses after its current step). */
  setStepThrough = (on: boolean) => this.guard(async () => {
    this.stepThrough = on;
    await this.trainer.setStepThrough(on);
  });

  /** Takes one GRPO step of the paused run. */
  oneStep = () => this.guard(() => this.trainer.step());

  /** Changes a knob of the current run from its next GRPO step on. */
  async setKnob(knob: keyof Knobs, value: number): Promise<KnobChange | null> {
    let change: KnobChange | null = null;
    await this.guard(async () => void (change = await this.trainer.setKnob(knob, value)));
    return change;
  }

  /** Starts a new run of the current recipe. */
  async start(): Promise<void> {
    await this.guard(async () => {
      this.metrics = [];
      this.progress = {};
      this.logs = [];
      this.rolloutStep = null;
      this.run = await this.trainer.start(this.recipe, { ...this.startOptions(), initFrom: this.initFrom ?? undefined });
    });
  }

  /** Resumes a stored run from its checkpoint (after a reload, a stop or a lost device). */
  async resumeStored(run: RunRecord): Promise<void> {
    await this.guard(async () => {
      this.resumable = null;
      this.metrics = [];
      this.progress = {};
      this.logs = [`resuming ${run.id} from its checkpoint (${run.checkpointAt})`];
      this.recipe = run.recipe;
      this.run = await this.trainer.start(null, { ...this.startOptions(), resumeRunId: run.id });
      // Read after the start: the worker has dropped the rows of steps it runs again. Rows that
      // streamed in meanwhile are stored too (the worker stores before it sends), so keep one of each.
      const stored = await (await this.runsDb).metrics(run.id);
      const key = (m: MetricRow) => `${m.phase}:${m.step}`;
      const seen = new Set(stored.map(key));
      this.metrics = [...stored, ...this.metrics.filter((m) => !seen.has(key(m)))];
    });
  }

  pause = () => this.guard(() => this.trainer.pause());
  resume = () => this.guard(() => this.trainer.resume());
  stop = () => this.guard(() => this.trainer.stop());

  /** Runs an action, showing its error in the banner instead of the console. */
  async guard(fn: () => Promise<void>): Promise<void> {
    this.error = null;
    try {
      await fn();
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
    this.changed();
  }
}

/** Re-renders the calling component whenever the lab changes. */
export function useLab(lab: Lab): Lab {
  const [, tick] = useState(0);
  useEffect(() => lab.subscribe(() => tick((n) => n + 1)), [lab]);
  return lab;
}

/** Seconds as `1h 02m`, `3m 05s` or `12s`. */
export function formatDuration(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '–';
  const r = Math.round(s);
  if (r >= 3600) return `${Math.floor(r / 3600)}h ${String(Math.floor((r % 3600) / 60)).padStart(2, '0')}m`;
  if (r >= 60) return `${Math.floor(r / 60)}m ${String(r % 60).padStart(2, '0')}s`;
  return `${r}s`;
}

/** Bytes as KiB / MiB / GiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Saves a Blob as a download. */
export function download(name: string, data: BlobPart, type = 'application/octet-stream'): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
