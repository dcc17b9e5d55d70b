/**
 * The command line's Chromium runtime (`--runtime chromium` of `npm run train` and `npm run eval`): the
 * lab's trainer worker (workers/trainer.worker.ts, the module the lab runs) in headless Chromium with
 * WebGPU on SwiftShader (the flags of gpu-env.ts, as the browser tests use), driven from Node. The
 * page (trainer.html, page.ts) gives the worker a host whose files, checkpoint, searches and events come
 * from Node through page.exposeFunction, so a run writes the same folder as the Node runtime and can
 * switch runtimes between invocations. Hub files (`hf:`) download in the browser into its IndexedDB
 * hub cache, which lives in the browser's temporary profile: each invocation downloads them again.
 */
import type { BackendChoice } from '../../src/engine/select.js';
import type { Page } from 'playwright-core';
import type { Recipe } from '../../src/rl/recipe.js';
import type { CheckpointStore } from '../../src/storage/checkpoint-store.js';
import type { SearchTools } from '../../src/search/types.js';
import type { HostedEvent, HostedOptions, HostedResult } from '../../src/lab/worker-api.js';
import { launchChromium, type LaunchedChromium } from './launch.js';
import type { NodeBindings, PageTrainer } from './page.js';

/** What Node gives a run: the recipe's files, the checkpoint store of the run folder, the event sink. */
export interface HostEnv {
  /** Reads a file a recipe names (e.g. `models/tiny-vlm/config.json`). */
  readFile(path: string): Promise<Uint8Array>;
  store: CheckpointStore;
  /** The proxy backend's searches (recipes with search.backend proxy). */
  search?: SearchTools;
  onEvent(e: HostedEvent): void;
}

export interface ChromiumTrainer {
  /** The backend the worker trains on (the WebGPU adapter's name). */
  description: string;
  /**
   * Runs `recipe` in the worker (see TrainerApi.runHosted) until done or `opts.maxGrpoSteps`.
   * @throws Error with the worker's message when the run fails, or when the page or browser dies
   */
  run(recipe: Recipe, env: HostEnv, opts?: HostedOptions): Promise<HostedResult>;
  /** Closes the browser and the dev server. */
  close(): Promise<void>;
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/**
 * Starts the dev server, Chromium and the trainer worker. Until close(), SIGINT and SIGTERM (Ctrl-C)
 * close the browser and exit the process with status 130; the run folder keeps its last checkpoint.
 * @param tool the command's name for messages, e.g. "npm run train"
 * @param backend the worker's compute backend (`--backend`; auto measures WebAssembly against software WebGPU)
 * @throws Error when no browser is installed, or when the worker has no WebGPU adapter
 */
export async function openChromiumTrainer(tool: string, backend: BackendChoice = 'auto'): Promise<ChromiumTrainer> {
  let browser: LaunchedChromium | null = null;
  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      process.off('SIGINT', interrupt).off('SIGTERM', interrupt);
      // A browser busy in a GPU step may be slow to quit; process exit kills it regardless (Playwright).
      await Promise.race([browser?.close(), new Promise((r) => setTimeout(r, 10_000))]);
    })());
  const interrupt = () => {
    // npm and tsx pass a terminal's Ctrl-C on as well: act once.
    if (closing) return;
    process.stderr.write(`\n${tool}: interrupted; closing the browser (rerun with the same folder to resume from its last checkpoint)\n`);
    void close().finally(() => process.exit(130));
  };
  process.on('SIGINT', interrupt).on('SIGTERM', interrupt);
  try {
    browser = await launchChromium({ handleSignals: false, entries: ['scripts/chromium/trainer.html', 'workers/trainer.worker.ts'] });
    const page = await browser.context.newPage();
    let env: HostEnv | null = null;
    const host = () => {
      if (!env) throw new Error('no run is in progress');
      return env;
    };
    const searchTools = () => {
      const search = host().search;
      if (!search) throw new Error('the run has no search tools (search.backend proxy needs them)');
      return search;
    };
    const bindings: NodeBindings = {
      cliReadFile: async (path) => b64(await host().readFile(path)),
      cliLoadCheckpoint: async () => {
        const files = await host().store.load();
        return files && Object.fromEntries([...files].map(([name, data]) => [name, b64(data)]));
      },
      cliSaveCheckpoint: (files) => host().store.save(new Map(Object.entries(files).map(([name, data]) => [name, bytes(data)]))),
      cliTextSearch: (query, k) => searchTools().textSearch(query, k),
      cliImageSearch: (query, k) => searchTools().imageSearch(query.base64 ? { bytes: bytes(query.base64) } : { url: query.url! }, k),
      cliEvent: async (e) => host().onEvent(e),
    };
    for (const [name, fn] of Object.entries(bindings)) await page.exposeFunction(name, fn);
    const died = pageDeath(page);
    page.on('console', (m) => {
      if (m.type() === 'error') process.stderr.write(`\n[chromium] ${m.text()}\n`);
    });
    // Vite transforms the page's modules on first load: on a busy 2-core machine that takes longer than
    // Playwright's default 30 s, so the load gets the same 120 s limit as the trainer's start.
    const pageUrl = `${browser.url}/scripts/chromium/trainer.html?backend=${backend}`;
    const started = async () => {
      await page.goto(pageUrl, { timeout: 120_000 });
      await page.waitForFunction(() => 'cliTrainer' in window, null, { timeout: 120_000 });
    };
    await Promise.race([started(), died]).catch((e: Error) => {
      throw new Error(`the trainer page did not start (${e.message.split('\n')[0]}); see the [chromium] messages above`);
    });
    const described = await Promise.race([page.evaluate(() => (window as unknown as { cliTrainer: PageTrainer }).cliTrainer.describe()), died]);
    if ('error' in described) throw new Error(/WebGPU/.test(described.error) ? `Chromium: ${described.error.replace(/ Tick .*$/, '')} (--runtime node or cpu train without the browser)` : described.error);
    const { description } = described;
    return {
      description,
      async run(recipe, runEnv, opts = {}) {
        env = runEnv;
        try {
          const r = await Promise.race([
            page.evaluate(([rc, o]) => (window as unknown as { cliTrainer: PageTrainer }).cliTrainer.run(rc, o), [recipe, opts] as const),
            died,
          ]);
          if ('error' in r) throw new Error(r.error);
          return r.result;
        } finally {
          env = null;
        }
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Rejects when the page crashes, closes or throws an uncaught error (worker failures: page.ts). */
function pageDeath(page: Page): Promise<never> {
  const p = new Promise<never>((_, reject) => {
    page.on('crash', () => reject(new Error('the Chromium page crashed (out of memory, or the GPU process died)')));
    page.on('close', () => reject(new Error('the Chromium page closed')));
    page.on('pageerror', (e) => reject(new Error(`uncaught error in the page: ${e.message}`)));
  });
  p.catch(() => {}); // observed by the calls that race with it
  return p;
}
