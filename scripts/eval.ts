/**
 * `npm run eval -- --checkpoint DIR [--split test] [--max-rows N] [--json] [--runtime node|wasm|chromium|cpu] [--backend auto|webgpu|wasm|cpu]`
 * Evaluates a run's checkpoint (DIR as written by `npm run train`: recipe.json + checkpoint/) in the
 * three modes of MMSearch-R1's Table 1 (direct answer, RAG workflow, on-demand search), greedy.
 * Prints the table (or the summaries as JSON) and writes eval-<split>.json (per-question
 * transcripts) and eval-<split>.md to DIR. The checkpoint is read, never written. Runtimes as in
 * scripts/train.ts (`chromium`: the lab's trainer worker in headless Chromium).
 */
import type { BackendChoice } from '../src/engine/select.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createRuntimeBackend, recipeServices, runWithDawnEnv } from './runtime.js';
import { progressLine } from './train-output.js';
import type { TrainEvent } from '../src/rl/trainer.js';
import type { HostedEvent, HostedResult } from '../workers/trainer.worker.js';

type EvalResult = NonNullable<HostedResult['eval']>;

const { values } = parseArgs({
  options: {
    checkpoint: { type: 'string' },
    split: { type: 'string', default: 'test' },
    'max-rows': { type: 'string' },
    json: { type: 'boolean', default: false },
    runtime: { type: 'string', default: 'node' },
    backend: { type: 'string', default: 'auto' },
    child: { type: 'boolean', default: false },
  },
});
const fail = (msg: string): never => {
  console.error(`npm run eval: ${msg}`);
  process.exit(2);
};
if (!values.checkpoint) fail('--checkpoint DIR is required (a folder written by npm run train)');
const dir = resolve(values.checkpoint!);
if (!existsSync(join(dir, 'recipe.json')) || !existsSync(join(dir, 'checkpoint'))) fail(`${dir} has no recipe.json and checkpoint/ (is it a run folder of npm run train?)`);
if (!['node', 'wasm', 'chromium', 'cpu'].includes(values.runtime!)) fail(`--runtime ${values.runtime}: use node, wasm, chromium or cpu`);
if (!['auto', 'webgpu', 'wasm', 'cpu'].includes(values.backend!)) fail(`--backend ${values.backend}: use auto, webgpu, wasm or cpu (the chromium runtime's compute backend)`);
if (values.backend !== 'auto' && values.runtime !== 'chromium') fail('--backend applies to --runtime chromium; in Node choose the backend with --runtime node|wasm|cpu');
if (values.runtime === 'node') runWithDawnEnv(values.child!, fail);

const root = resolve(new URL('..', import.meta.url).pathname);
const { loadRecipe } = await import('../src/rl/recipe.js');
const { Trainer } = await import('../src/rl/trainer.js');
const base = loadRecipe(readFileSync(join(dir, 'recipe.json'), 'utf8'), join(dir, 'recipe.json'));
const recipe = { ...base, eval: { ...base.eval, split: values.split!, max_rows: values['max-rows'] ? Number(values['max-rows']) : base.eval.max_rows } };
// Read-only: the run's checkpoint is loaded but never overwritten.
const { FsCheckpointStore } = await import('../src/rl/fs-store.js');
const source = new FsCheckpointStore(dir);
const store = { load: () => source.load(), save: async () => {} };
const readFile = async (p: string) => new Uint8Array(readFileSync(resolve(root, p)));
const { search, hub, hubRemote } = await recipeServices(recipe, root);
const onEvent = (e: TrainEvent | HostedEvent) => {
  if (!values.json && e.type === 'progress') process.stdout.write(progressLine(`eval ${values.split}`, e.done, e.total, null));
};

/** Evaluates in this process (Dawn or the CPU backend). */
async function evalHere(): Promise<EvalResult> {
  const trainer = new Trainer(recipe, { backend: await createRuntimeBackend(values.runtime!), readFile, store, proxyTools: search, hub, onEvent });
  await trainer.setup();
  trainer.state.phase = 'eval';
  await trainer.run();
  return trainer.evalResult!;
}

/** Evaluates in the lab's trainer worker in headless Chromium. */
async function evalInChromium(): Promise<EvalResult> {
  const { openChromiumTrainer } = await import('./chromium/runtime.js');
  const chromium = await openChromiumTrainer('npm run eval', values.backend as BackendChoice);
  try {
    return (await chromium.run(recipe, { readFile, store, search, onEvent }, { evalOnly: true, hub: hubRemote })).eval!;
  } finally {
    await chromium.close();
  }
}

let r: EvalResult;
try {
  r = values.runtime === 'chromium' ? await evalInChromium() : await evalHere();
} catch (e) {
  console.error(`\nnpm run eval: ${(e as Error).message}`);
  process.exit(1);
}
writeFileSync(join(dir, `eval-${values.split}.json`), JSON.stringify({ summaries: r.summaries, records: r.records }, null, 2) + '\n');
writeFileSync(join(dir, `eval-${values.split}.md`), r.table + '\n');
console.log(values.json ? JSON.stringify(r.summaries) : `\n${r.table}`);
process.exit(0);
