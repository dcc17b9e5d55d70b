/**
 * Training runs in IndexedDB (database `mmsearch-runs`), shared by the trainer worker (writer) and the
 * page (reader, Storage view): run records (recipe, status, position), metrics history, the latest
 * checkpoint of each run (all files in one record, replaced in one transaction: atomic) and the
 * rollouts of the last steps for the inspector.
 */
import { openDB, type IDBPDatabase } from 'idb';
import type { Recipe } from '../rl/recipe.js';
import type { Phase } from '../rl/checkpoint.js';
import type { CheckpointStore } from '../storage/checkpoint-store.js';

export const RUNS_DB = 'mmsearch-runs';
/** Rollout steps kept per run (older ones are dropped). */
export const ROLLOUT_STEPS_KEPT = 20;

export type RunStatus = 'running' | 'paused' | 'stopped' | 'done' | 'failed';

/** One run as listed. */
export interface RunRecord {
  id: string;
  recipe: Recipe;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  phase: Phase;
  sftStep: number;
  grpoStep: number;
  error?: string;
  /** The run failed because the GPU device was lost: it can resume from its checkpoint on a new device. */
  deviceLost?: boolean;
  checkpointBytes: number;
  checkpointAt: string | null;
  /** The file a model was imported from (Storage's "Import a model"); absent for trained runs. */
  importedFrom?: string;
}

/** One metrics event of a run. */
export interface MetricRow {
  runId: string;
  phase: Phase;
  step: number;
  metrics: Record<string, number>;
}

/** One trajectory as the rollout inspector shows it (decoded in the worker). */
export interface RolloutView {
  group: number;
  index: number;
  question: string;
  category: string | null;
  groundTruth: string;
  /** The question image as a data: URL. */
  image: string;
  /** Assistant turns and tool results in order; tool parts carry thumbnails as data: URLs. */
  turns: ({ role: 'assistant'; text: string; call: string } | { role: 'tool'; parts: ({ type: 'text'; text: string } | { type: 'image'; url: string })[]; error: boolean })[];
  /**
   * Completion tokens as text pieces (image-token runs collapsed into one piece): `m` the loss mask
   * (completion_mask · tool_mask: 0 on inserted tool results), `i` the index of the piece's first token in
   * `ids`; with the inspector on, `lp` the token's log-probability before the step's update and `d` how
   * much the update changed it (after − before), on the policy's own tokens.
   */
  tokens: { t: string; m: number; i: number; lp?: number; d?: number }[];
  /** The whole token sequence (prompt included), for re-scoring. */
  ids: number[];
  reward: number;
  accuracy: number;
  format: number;
  /** P, the multiplier of accuracy: 1 - search_penalty when the trajectory searched, else 1. */
  penalty: number;
  /** The search penalty the step used (a knob may have changed it). */
  searchPenalty: number;
  imageSearches: number;
  textSearches: number;
  advantage: number;
  /** The group's mean reward and the std its advantages were divided by. */
  groupMean: number;
  groupStd: number;
  searched: boolean;
  truncated: boolean;
}

interface CheckpointRecord {
  runId: string;
  files: [string, Uint8Array][];
  savedAt: string;
}

/** Storage is full; the message says what to free. */
export class RunsQuotaError extends Error {
  override name = 'RunsQuotaError';
}

const isQuota = (e: unknown) => (e as { name?: string })?.name === 'QuotaExceededError';
const fileBytes = (files: Iterable<[string, Uint8Array]>) => [...files].reduce((n, [, b]) => n + b.byteLength, 0);

/** Metrics rows as the CLI's metrics.jsonl records: `{phase, step, ...metrics}`. */
export function metricRecords(rows: readonly MetricRow[]): Record<string, unknown>[] {
  return rows.map((r) => ({ phase: r.phase, step: r.step, ...r.metrics }));
}

/** The runs database. Open with {@link openRuns}. */
export class RunsDb {
  constructor(readonly db: IDBPDatabase<unknown>) {}

  async listRuns(): Promise<RunRecord[]> {
    const all = (await this.db.getAll('runs')) as RunRecord[];
    return all.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    return (await this.db.get('runs', id)) as RunRecord | undefined;
  }

  async putRun(run: RunRecord): Promise<void> {
    await this.db.put('runs', { ...run, updatedAt: new Date().toISOString() });
  }

  /** Merges `patch` into a stored run. */
  async updateRun(id: string, patch: Partial<RunRecord>): Promise<RunRecord | undefined> {
    const tx = this.db.transaction('runs', 'readwrite');
    const run = (await tx.store.get(id)) as RunRecord | undefined;
    if (run) await tx.store.put({ ...run, ...patch, updatedAt: new Date().toISOString() });
    await tx.done;
    return run && { ...run, ...patch };
  }

  async appendMetrics(rows: readonly MetricRow[]): Promise<void> {
    if (!rows.length) return;
    const tx = this.db.transaction('metrics', 'readwrite');
    await Promise.all([...rows.map((r) => tx.store.add(r)), tx.done]);
  }

  async metrics(runId: string): Promise<MetricRow[]> {
    return (await this.db.getAllFromIndex('metrics', 'runId', runId)) as MetricRow[];
  }

  /**
   * Drops the metrics of steps a resumed run will run again: caption rows from step `captionStep` on,
   * SFT rows from `sftStep` on, GRPO rows from `grpoStep` on (the checkpoint's position), so that charts
   * get one point per step.
   * @returns how many rows were dropped
   */
  async truncateMetrics(runId: string, from: { captionStep: number; sftStep: number; grpoStep: number }): Promise<number> {
    const tx = this.db.transaction('metrics', 'readwrite');
    let dropped = 0;
    for (let c = await tx.store.index('runId').openCursor(runId); c; c = await c.continue()) {
      const row = c.value as MetricRow;
      const first = row.phase === 'caption' ? from.captionStep : row.phase === 'sft' ? from.sftStep : row.phase === 'grpo' ? from.grpoStep : Infinity;
      if (row.step >= first) {
        await c.delete();
        dropped++;
      }
    }
    await tx.done;
    return dropped;
  }

  /** A {@link CheckpointStore} for the Trainer: every save replaces the run's files in one transaction. */
  checkpointStore(runId: string): CheckpointStore {
    return {
      load: async () => {
        const rec = (await this.db.get('checkpoints', runId)) as CheckpointRecord | undefined;
        return rec ? new Map(rec.files) : null;
      },
      save: async (files) => {
        const savedAt = new Date().toISOString();
        try {
          const tx = this.db.transaction(['checkpoints', 'runs'], 'readwrite');
          await tx.objectStore('checkpoints').put({ runId, files: [...files], savedAt } satisfies CheckpointRecord, runId);
          const run = (await tx.objectStore('runs').get(runId)) as RunRecord | undefined;
          if (run) await tx.objectStore('runs').put({ ...run, checkpointBytes: fileBytes(files), checkpointAt: savedAt, updatedAt: savedAt });
          await tx.done;
        } catch (e) {
          if (isQuota(e)) throw new RunsQuotaError('Storage is full: the checkpoint was not saved (the previous one is kept). Delete old runs or datasets in Storage, then resume.');
          throw e;
        }
      },
    };
  }

  /** The run's latest checkpoint files, or null. */
  async checkpointFiles(runId: string): Promise<Map<string, Uint8Array> | null> {
    return this.checkpointStore(runId).load();
  }

  /** Stores one step's rollouts and drops steps older than the last {@link ROLLOUT_STEPS_KEPT}. */
  async putRollouts(runId: string, step: number, views: RolloutView[]): Promise<void> {
    const tx = this.db.transaction('rollouts', 'readwrite');
    await tx.store.put(views, [runId, step]);
    const keys = (await tx.store.getAllKeys(IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]))) as [string, number][];
    for (const k of keys.slice(0, Math.max(0, keys.length - ROLLOUT_STEPS_KEPT))) await tx.store.delete(k);
    await tx.done;
  }

  async rolloutSteps(runId: string): Promise<number[]> {
    const keys = (await this.db.getAllKeys('rollouts', IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]))) as [string, number][];
    return keys.map((k) => k[1]);
  }

  async rollouts(runId: string, step: number): Promise<RolloutView[]> {
    return ((await this.db.get('rollouts', [runId, step])) as RolloutView[] | undefined) ?? [];
  }

  /** Removes a run with its metrics, checkpoint and rollouts, in one transaction. */
  async deleteRun(runId: string): Promise<void> {
    const tx = this.db.transaction(['runs', 'metrics', 'checkpoints', 'rollouts'], 'readwrite');
    await tx.objectStore('runs').delete(runId);
    await tx.objectStore('checkpoints').delete(runId);
    await tx.objectStore('rollouts').delete(IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]));
    for (const key of await tx.objectStore('metrics').index('runId').getAllKeys(runId)) await tx.objectStore('metrics').delete(key);
    await tx.done;
  }

  close(): void {
    this.db.close();
  }
}

/** Opens (creating if needed) the runs database. */
export async function openRuns(): Promise<RunsDb> {
  const db = await openDB(RUNS_DB, 1, {
    upgrade(db) {
      db.createObjectStore('runs', { keyPath: 'id' });
      db.createObjectStore('metrics', { autoIncrement: true }).createIndex('runId', 'runId');
      db.createObjectStore('checkpoints');
      db.createObjectStore('rollouts');
    },
  });
  return new RunsDb(db);
}
