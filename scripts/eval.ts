/**
 * `npm run eval -- --checkpoint DIR [--split test,heldout] [--modes direct,rag,on_demand] [--max-rows N] [--temperature T --samples N] [--json] [--runtime node|wasm|chromium|cpu] [--backend auto|webgpu|wasm|cpu]`
 * Evaluates a run's checkpoint (DIR as written by `npm run train`: recipe.json + checkpoint/) in the
 * recipe's modes (or --modes) of MMSearch-R1's Table 1 (direct answer, RAG workflow, on-demand search), greedy, on
 * each split of --split (default: the recipe's eval split, and FVQA-mini's heldout split: entities never
 * seen in SFT or GRPO). Prints a table per split, or with --json one array of {@link EvalRow}: per split
 * and mode, accuracy and search ratio (percent) overall, byCategory and byKind (question kind), each marked with the policy's
 * stage and decoding; the run's own before-GRPO evaluation (checkpoint/eval-sft.json, recipe eval.after_sft) is
 * included as stage "before_grpo". Writes eval-<split>.json (per-question transcripts) and
 * eval-<split>.md to DIR (eval-<split>-t<T>.json/md when sampled). `--temperature T` (> 0) samples `--samples N`
 * trajectories per row at temperature T instead of greedy decoding (recipe eval.temperature, eval.num_samples),
 * e.g. at the GRPO temperature to see the search decisions GRPO starts from. The checkpoint is read, never written. Runtimes as in scripts/train.ts
 * (`chromium`: the lab's trainer worker in headless Chromium).
 */
import type { BackendChoice } from '../src/engine/select.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRuntimeBackend, recipeServices, runWithDawnEnv } from './runtime.js';
import { progressLine } from './train-output.js';
import type { TrainEvent } from '../src/rl/trainer.js';
import type { HostedEvent, HostedResult } from '../src/lab/worker-api.js';
import type { ModeSummary } from '../src/rl/evaluate.js';
import { parseCli } from './cli.js';

type EvalResult = NonNullable<HostedResult['eval']>;
/** One line of `--json`: a mode's summary on one split, for the policy before or after GRPO. */
export type EvalRow = ModeSummary & { stage: 'before_grpo' | 'after_grpo'; split: string; temperature: number; samples: number };

const { values } = parseCli({
  options: {
    checkpoint: { type: 'string' },
    split: { type: 'string' },
    'max-rows': { type: 'string' },
    modes: { type: 'string' },
    temperature: { type: 'string', default: '0' },
    samples: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
    runtime: { type: 'string', default: 'node' },
    backend: { type: 'string', default: 'auto' },
    child: { type: 'boolean', default: false },
  },
}, import.meta.url);
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
const { loadStoredRecipe } = await import('../src/rl/recipe.js');
const { Trainer } = await import('../src/rl/trainer.js');
const base = loadStoredRecipe(readFileSync(join(dir, 'recipe.json'), 'utf8'), join(dir, 'recipe.json'));
const splits = (values.split ?? (base.data.source === 'fvqa-mini' ? `${base.eval.split},heldout` : base.eval.split)).split(',').filter(Boolean);
const temperature = Number(values.temperature), samples = Number(values.samples);
if (!(temperature >= 0)) fail(`--temperature ${values.temperature}: a number >= 0 (0: greedy)`);
if (!(Number.isInteger(samples) && samples >= 1)) fail(`--samples ${values.samples}: a whole number >= 1`);
if (samples > 1 && temperature === 0) fail('--samples N > 1 needs --temperature T > 0 (greedy decoding gives the same trajectory every time)');
const MODES = ['direct', 'rag', 'on_demand'] as const;
const modes = values.modes ? values.modes.split(',') : base.eval.modes;
for (const m of modes) if (!(MODES as readonly string[]).includes(m)) fail(`--modes: "${m}" is not one of ${MODES.join(', ')}`);
const decoding = { temperature, samples: temperature > 0 ? samples : 1 };
const suffix = temperature > 0 ? `-t${temperature}` : '';
const recipeFor = (split: string) => ({
  ...base, eval: { ...base.eval, split, modes: modes as (typeof MODES)[number][], temperature, num_samples: decoding.samples, max_rows: values['max-rows'] ? Number(values['max-rows']) : base.eval.max_rows },
});
const state = JSON.parse(readFileSync(join(dir, 'checkpoint', 'trainer_state.json'), 'utf8')) as { grpoStep: number };
const stage = state.grpoStep > 0 ? 'after_grpo' : 'before_grpo';
// Read-only: the run's checkpoint is loaded but never overwritten.
const { FsCheckpointStore } = await import('../src/storage/fs-checkpoint-store.js');
const source = new FsCheckpointStore(dir);
const store = { load: () => source.load(), save: async () => {} };
const readFile = async (p: string) => new Uint8Array(readFileSync(resolve(root, p)));
const { search, hub, hubRemote } = await recipeServices(base, root);
let current = '';
const onEvent = (e: TrainEvent | HostedEvent) => {
  if (!values.json && e.type === 'progress') process.stdout.write(progressLine(`eval ${current}`, e.done, e.total, null));
};

/** Evaluates each split in this process (Dawn or the CPU backend). */
async function evalHere(each: (split: string, r: EvalResult) => void): Promise<void> {
  const backend = await createRuntimeBackend(values.runtime!);
  for (const split of splits) {
    current = split;
    const trainer = new Trainer(recipeFor(split), { backend, readFile, store, proxyTools: search, hub, onEvent });
    await trainer.setup();
    trainer.state.phase = 'eval';
    await trainer.run();
    trainer.model.dispose();
    each(split, trainer.evalResult!);
  }
}

/** Evaluates each split in the lab's trainer worker in headless Chromium. */
async function evalInChromium(each: (split: string, r: EvalResult) => void): Promise<void> {
  const { openChromiumTrainer } = await import('./chromium/runtime.js');
  const chromium = await openChromiumTrainer('npm run eval', values.backend as BackendChoice);
  try {
    for (const split of splits) {
      current = split;
      each(split, (await chromium.run(recipeFor(split), { readFile, store, search, onEvent }, { evalOnly: true, hub: hubRemote })).eval!);
    }
  } finally {
    await chromium.close();
  }
}

const rows: EvalRow[] = [];
// The run's own evaluation of its warm start, when it trained one (recipe eval.after_sft).
const sftEval = join(dir, 'checkpoint', 'eval-sft.json');
if (stage === 'after_grpo' && temperature === 0 && existsSync(sftEval))
  for (const s of JSON.parse(readFileSync(sftEval, 'utf8')).summaries as ModeSummary[]) rows.push({ stage: 'before_grpo', split: base.eval.split, temperature: 0, samples: 1, ...s });
try {
  await (values.runtime === 'chromium' ? evalInChromium : evalHere)((split, r) => {
    writeFileSync(join(dir, `eval-${split}${suffix}.json`), JSON.stringify({ decoding, summaries: r.summaries, records: r.records }, null, 2) + '\n');
    writeFileSync(join(dir, `eval-${split}${suffix}.md`), r.table + '\n');
    for (const s of r.summaries) rows.push({ stage, split, ...decoding, ...s });
    const how = temperature > 0 ? `${decoding.samples} samples per row at temperature ${temperature}` : 'greedy';
    if (!values.json) console.log(`\n${split} split, ${stage.replace('_', ' ')} (GRPO step ${state.grpoStep}), ${how}:\n${r.table}`);
  });
} catch (e) {
  console.error(`\nnpm run eval: ${(e as Error).message}`);
  process.exit(1);
}
if (values.json) console.log(JSON.stringify(rows));
process.exit(0);
