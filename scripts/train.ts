/**
 * `npm run train -- --recipe fvqa-mini [--seed N] [--steps N] [--out DIR] [--json] [--runtime node|wasm|chromium|cpu] [--backend auto|webgpu|wasm|cpu] [--save-rollouts] [--sft-snapshots N]`
 * Runs a recipe headless: warm-start SFT -> GRPO -> evaluation, with checkpoints, metrics.jsonl and
 * the evaluation table (eval.md) in DIR (default runs/<recipe>). Rerunning with the same DIR resumes from the
 * last checkpoint, with any runtime. `--steps N` stops after N GRPO steps in this invocation (rerun to continue).
 * `--recipe` is a name in recipes/ or a JSON file; its model.source is a folder (relative to the
 * repository or absolute) with config.json and the tokenizer files, or a hub model `hf:ORG/NAME@REV`;
 * parquet data files (data.train, data.test) are paths (same rule), http(s) URLs or `hf:ORG/NAME/FILE`
 * of a hub dataset. Hub files download through a resumable cache: `.cache/hub` (or $HUB_CACHE_DIR) for
 * the node and cpu runtimes, the browser's IndexedDB for chromium (a fresh profile per invocation);
 * $HF_ENDPOINT names another hub (a mirror), $HF_TOKEN is sent for gated repos. Recipes with
 * search.backend proxy search through the proxy at search.proxy_url (`npm run proxy`).
 * Runtimes: `node` = WebGPU through Dawn (SwiftShader on machines without a GPU); `wasm` = the WebAssembly
 * backend in Node on every core ($WASM_THREADS to change); `chromium` = the lab's trainer worker
 * (workers/trainer.worker.ts) in headless Chromium (scripts/chromium/), its files, checkpoints and events
 * bridged to this process, on `--backend` (default auto: a hardware GPU, else the faster of WebAssembly and
 * software WebGPU, measured); `cpu` = the float64 reference backend (slow; bit-exact resume). Output
 * (scripts/train-output.ts) is the same for all: progress bars on stdout, or one
 * JSON line per event with --json. `--save-rollouts` appends every GRPO trajectory (prompt, turns, tool
 * calls and results, reward components, advantage) to DIR/rollouts.jsonl (src/export/rollouts.ts).
 * `--init-from RUN` starts a new DIR from another run's warm-start checkpoint (a run stopped right after
 * SFT with `--steps 0`), for ablations that share one warm start: the recipes must agree on everything
 * before GRPO (seed, model, data, search, caption, sft); the checkpoint, its SFT metrics and its before-GRPO
 * evaluation are copied and relabelled with this recipe's name.
 * `--seed N` replaces the recipe's seed (world, initialisation, sampling), for runs over seeds; the run's
 * recipe.json records it.
 * `--sft-snapshots N` keeps a copy of the warm start every N SFT steps (a multiple of the recipe's
 * checkpoint_steps; with a caption stage also step 0, the policy SFT starts from) and at its end, each a run folder
 * DIR/snapshots/sft-STEP (recipe.json, checkpoint/) that `npm run eval -- --checkpoint` evaluates: how the
 * warm start's decisions move during SFT (docs/fvqa-mini-warm-start.md, 2026-12-07 third session).
 * Exit status: 0 done or stopped by --steps, 1 the run failed, 2 bad arguments, 130 interrupted.
 */
import type { BackendChoice } from '../src/engine/select.js';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRuntimeBackend, recipeServices, runWithDawnEnv } from './runtime.js';
import { trainOutput, type TrainResult } from './train-output.js';
import { parseCli, recipeFile } from './cli.js';

const { values } = parseCli({
  options: {
    recipe: { type: 'string' },
    seed: { type: 'string' },
    steps: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
    runtime: { type: 'string', default: 'node' },
    backend: { type: 'string', default: 'auto' },
    child: { type: 'boolean', default: false },
    'save-rollouts': { type: 'boolean', default: false },
    'init-from': { type: 'string' },
    'sft-snapshots': { type: 'string' },
  },
}, import.meta.url);
const fail = (msg: string): never => {
  console.error(`npm run train: ${msg}`);
  process.exit(2);
};
/** f's value, or exit with its error's message. */
const orFail = <T>(f: () => T): T => {
  try {
    return f();
  } catch (e) {
    return fail((e as Error).message);
  }
};
if (!values.recipe) fail('--recipe NAME|FILE is required (e.g. --recipe fvqa-mini)');
if (!['node', 'wasm', 'chromium', 'cpu'].includes(values.runtime!)) fail(`--runtime ${values.runtime}: use node (WebGPU via Dawn), wasm (the WebAssembly backend in Node), chromium (the lab's worker in headless Chromium) or cpu`);
if (values.seed !== undefined && !(Number.isInteger(Number(values.seed)) && Number(values.seed) >= 0)) fail(`--seed ${values.seed}: a whole number >= 0`);
if (values.steps !== undefined && !(Number.isInteger(Number(values.steps)) && Number(values.steps) >= 0)) fail(`--steps ${values.steps}: a whole number of GRPO steps`);
const snapshotSteps = values['sft-snapshots'] === undefined ? 0 : Number(values['sft-snapshots']);
if (values['sft-snapshots'] !== undefined && !(Number.isInteger(snapshotSteps) && snapshotSteps >= 1)) fail(`--sft-snapshots ${values['sft-snapshots']}: a whole number of SFT steps >= 1`);

if (!['auto', 'webgpu', 'wasm', 'cpu'].includes(values.backend!)) fail(`--backend ${values.backend}: use auto, webgpu, wasm or cpu (the chromium runtime's compute backend)`);
if (values.backend !== 'auto' && values.runtime !== 'chromium') fail('--backend applies to --runtime chromium; in Node choose the backend with --runtime node|wasm|cpu');
if (values.runtime === 'node') runWithDawnEnv(values.child!, fail);

const root = resolve(new URL('..', import.meta.url).pathname);
const recipePath = orFail(() => recipeFile(values.recipe!));
const { loadRecipe, loadStoredRecipe, warmStartDifferences } = await import('../src/rl/recipe.js');
const { Trainer } = await import('../src/rl/trainer.js');
const { FsCheckpointStore } = await import('../src/storage/fs-checkpoint-store.js');
const { rolloutRecords } = await import('../src/export/rollouts.js');

// The recipe as written to the run folder: the file, with --seed applied.
const recipeText = values.seed === undefined ? readFileSync(recipePath, 'utf8')
  : JSON.stringify({ ...JSON.parse(readFileSync(recipePath, 'utf8')), seed: Number(values.seed) }, null, 2) + '\n';
const r = orFail(() => loadRecipe(recipeText, recipePath));
if (snapshotSteps % r.checkpoint_steps) fail(`--sft-snapshots ${snapshotSteps}: not a multiple of the recipe's checkpoint_steps (${r.checkpoint_steps}), the steps at which SFT saves`);
const out = resolve(values.out ?? join(root, 'runs', r.name));
mkdirSync(out, { recursive: true });
if (values['init-from']) initFrom(resolve(values['init-from']));
writeFileSync(join(out, 'recipe.json'), recipeText);

/** Copies a warm-start checkpoint (see --init-from) into `out` under this recipe's name. */
function initFrom(src: string): void {
  const from = join(src, 'checkpoint');
  if (existsSync(join(out, 'checkpoint'))) fail(`--init-from: ${out} already holds a checkpoint; rerun without --init-from to resume it`);
  if (!existsSync(join(from, 'trainer_state.json')) || !existsSync(join(src, 'recipe.json'))) fail(`--init-from ${src}: no run there (expected recipe.json and checkpoint/trainer_state.json)`);
  const state = JSON.parse(readFileSync(join(from, 'trainer_state.json'), 'utf8'));
  if (state.phase !== 'grpo' || state.grpoStep !== 0) fail(`--init-from ${src}: that run is at phase ${state.phase}, GRPO step ${state.grpoStep}; it must have stopped right after SFT (train it with --steps 0)`);
  const theirs = orFail(() => loadStoredRecipe(readFileSync(join(src, 'recipe.json'), 'utf8'), join(src, 'recipe.json')));
  const diff = warmStartDifferences(theirs, r);
  if (diff.length) fail(`--init-from ${src}: its recipe differs in "${diff[0]}", so its warm start is not this recipe's`);
  cpSync(from, join(out, 'checkpoint'), { recursive: true });
  writeFileSync(join(out, 'checkpoint', 'trainer_state.json'), JSON.stringify({ ...state, recipe: r.name }, null, 2) + '\n');
  if (existsSync(join(src, 'metrics.jsonl'))) cpSync(join(src, 'metrics.jsonl'), join(out, 'metrics.jsonl'));
}

const output = trainOutput(out, { json: values.json!, saveRollouts: values['save-rollouts']! });
const readFile = async (p: string) => new Uint8Array(readFileSync(resolve(root, p)));
const runStore = new FsCheckpointStore(out);
const store = { load: () => runStore.load(), save: async (files: Map<string, Uint8Array>) => (await runStore.save(files), snapshot(files)) };

/** With --sft-snapshots: copies a checkpoint saved at a snapshot step of SFT, or at its end, to DIR/snapshots/sft-STEP. */
function snapshot(files: Map<string, Uint8Array>): void {
  if (!snapshotSteps) return;
  const state = JSON.parse(new TextDecoder().decode(files.get('trainer_state.json'))) as { phase: string; sftStep: number; grpoStep: number };
  const atStep = state.phase === 'sft' && state.sftStep % snapshotSteps === 0;
  const atEnd = state.phase === 'grpo' && state.grpoStep === 0;
  const dir = join(out, 'snapshots', `sft-${state.sftStep}`);
  if (!(atStep || atEnd) || existsSync(dir)) return;
  mkdirSync(join(dir, 'checkpoint'), { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(dir, 'checkpoint', name), bytes);
  writeFileSync(join(dir, 'recipe.json'), recipeText);
}
const maxGrpoSteps = values.steps ? Number(values.steps) : undefined;
const { search, hub, hubRemote } = await recipeServices(r, root);

/** Trains in this process (Dawn or the CPU backend). */
async function trainHere(): Promise<TrainResult> {
  const backend = await createRuntimeBackend(values.runtime!);
  output.start(r.name, backend.description);
  const trainer = new Trainer(r, {
    backend,
    readFile,
    store,
    proxyTools: search,
    hub,
    onEvent: (e) => (e.type === 'rollouts' ? values['save-rollouts'] && output.rollouts(rolloutRecords(e, r.grpo.reward, r.grpo.num_generations)) : output.event(e)),
  });
  await trainer.setup();
  await trainer.run({ maxGrpoSteps });
  return { ...trainer.state, evalTable: trainer.evalResult?.table ?? null };
}

/** Trains in the lab's worker in headless Chromium. */
async function trainInChromium(): Promise<TrainResult> {
  const { openChromiumTrainer } = await import('./chromium/runtime.js');
  const chromium = await openChromiumTrainer('npm run train', values.backend as BackendChoice);
  try {
    output.start(r.name, chromium.description);
    const res = await chromium.run(r, { readFile, store, search, onEvent: (e) => (e.type === 'rollouts' ? output.rollouts(e.records) : output.event(e)) }, { maxGrpoSteps, rolloutRecords: values['save-rollouts'], hub: hubRemote });
    return { phase: res.phase, sftStep: res.sftStep, grpoStep: res.grpoStep, evalTable: res.eval?.table ?? null };
  } finally {
    await chromium.close();
  }
}

let result: TrainResult;
try {
  result = values.runtime === 'chromium' ? await trainInChromium() : await trainHere();
} catch (e) {
  console.error(`\nnpm run train: ${(e as Error).message}`);
  process.exit(1);
}
output.finish(result);
process.exit(0);
