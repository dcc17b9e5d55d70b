/**
 * The page the command line opens in headless Chromium (scripts/chromium/runtime.ts): starts the lab's
 * trainer worker and bridges its host (files, checkpoint, searches, events) to the functions Node exposes on
 * `window` (page.exposeFunction). Bytes cross to Node as base64: the binding carries JSON only.
 */
import * as Comlink from 'comlink';
import type { BackendChoice } from '../../src/engine/select.js';
import { base64ToBytes, bytesToBase64 } from '../../src/search/image.js';
import type { ImageSearchResult, TextSearchResult } from '../../src/search/types.js';
import type { HostedEvent, HostedOptions, HostedResult, TrainerApi, TrainerHost } from '../../src/lab/worker-api.js';

/** What Node exposes on the page before it loads. */
export interface NodeBindings {
  cliReadFile(path: string): Promise<string>;
  cliLoadCheckpoint(): Promise<Record<string, string> | null>;
  cliSaveCheckpoint(files: Record<string, string>): Promise<void>;
  cliTextSearch(query: string, k: number): Promise<TextSearchResult[]>;
  /** The image as base64 bytes or a URL. */
  cliImageSearch(query: { base64?: string; url?: string }, k: number): Promise<ImageSearchResult[]>;
  cliEvent(e: HostedEvent): Promise<void>;
}

/** What this page offers Node (`window.cliTrainer`); failures come back as `{ error }` with the worker's message. */
export interface PageTrainer {
  describe(): Promise<{ description: string } | { error: string }>;
  run(recipe: unknown, opts: HostedOptions): Promise<{ result: HostedResult } | { error: string }>;
}

const node = window as unknown as Window & NodeBindings & { cliTrainer: PageTrainer };
const worker = new Worker(new URL('../../workers/trainer.worker.ts', import.meta.url), { type: 'module', name: 'trainer' });
const api = Comlink.wrap<TrainerApi>(worker);
// A worker that fails to load or throws outside a call never answers Comlink: race every call with this.
const workerFailed = new Promise<never>((_, reject) => {
  worker.onerror = (e) => reject(new Error(`the trainer worker failed: ${e.message || 'it could not be loaded (see the browser console)'}`));
});

// Events are forwarded in order, and a run returns only after Node has taken every one of them.
let events: Promise<void> = Promise.resolve();
const host: TrainerHost = {
  readFile: async (path) => base64ToBytes(await node.cliReadFile(path)),
  loadCheckpoint: async () => {
    const files = await node.cliLoadCheckpoint();
    return files && new Map(Object.entries(files).map(([name, b64]) => [name, base64ToBytes(b64)]));
  },
  saveCheckpoint: (files) => node.cliSaveCheckpoint(Object.fromEntries([...files].map(([name, bytes]) => [name, bytesToBase64(bytes)]))),
  textSearch: (query, k) => node.cliTextSearch(query, k),
  imageSearch: (query, k) => node.cliImageSearch(query.bytes ? { base64: bytesToBase64(query.bytes) } : { url: query.url }, k),
  onEvent: (e) => {
    events = events.then(() => node.cliEvent(e));
  },
};

/** The compute backend asked for on the command line (`--backend`, passed as ?backend=). */
const backendChoice = (new URLSearchParams(location.search).get('backend') ?? 'auto') as BackendChoice;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

node.cliTrainer = {
  async describe() {
    try {
      const d = await Promise.race([api.describeBackend(backendChoice), workerFailed]);
      return { description: `${d.description} (${d.reason})` };
    } catch (e) {
      return { error: message(e) };
    }
  },
  async run(recipe, opts) {
    try {
      const result = await Promise.race([api.runHosted(recipe, Comlink.proxy(host), { ...opts, backend: backendChoice }), workerFailed]);
      await events;
      return { result };
    } catch (e) {
      return { error: message(e) };
    }
  },
};
