/**
 * `npm run train -- --recipe fvqa-mini [--steps N] [--out DIR] [--json] [--runtime node|cpu] [--save-rollouts]`
 * Runs a recipe headless: warm-start SFT -> GRPO -> evaluation, with checkpoints, metrics.jsonl and
 * the evaluation table in DIR (default runs/<recipe>). Rerunning with the same DIR resumes from the
 * last checkpoint. `--steps N` stops after N GRPO steps in this invocation (rerun to continue).
 * Runtimes: `node` = WebGPU through Dawn (SwiftShader on machines without a GPU), `cpu` = the float64
 * reference backend (slow; bit-exact resume). `--save-rollouts` appends every GRPO trajectory (prompt, turns,
 * tool calls and results, reward components, advantage) to DIR/rollouts.jsonl (src/export/rollouts.ts). `--runtime chromium` (the CLI driving the lab's trainer worker in headless Chromium) is not built yet;
 * the same worker runs in Chrome through `npm start`.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createRuntimeBackend, runWithDawnEnv } from './runtime.js';

const { values } = parseArgs({
  options: {
    recipe: { type: 'string' },
    steps: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
    runtime: { type: 'string', default: 'node' },
    child: { type: 'boolean', default: false },
    'save-rollouts': { type: 'boolean', default: false },
  },
});
const fail = (msg: string): never => {
  console.error(`npm run train: ${msg}`);
  process.exit(2);
};
if (!values.recipe) fail('--recipe NAME|FILE is required (e.g. --recipe fvqa-mini)');
if (!['node', 'cpu'].includes(values.runtime!)) fail(`--runtime ${values.runtime}: use node (WebGPU via Dawn) or cpu (--runtime chromium is not built yet; the lab runs the same trainer in Chrome via npm start)`);

if (values.runtime === 'node') runWithDawnEnv(values.child!, fail);

const root = resolve(new URL('..', import.meta.url).pathname);
const recipePath = existsSync(values.recipe!) ? values.recipe! : join(root, 'recipes', `${values.recipe}.json`);
if (!existsSync(recipePath)) fail(`recipe ${values.recipe} not found (looked at ${values.recipe} and ${recipePath})`);
const { loadRecipe } = await import('../src/rl/recipe.js');
const { Trainer } = await import('../src/rl/trainer.js');
const { FsCheckpointStore } = await import('../src/rl/fs-store.js');
const E = await import('../src/engine/index.js');
const { rolloutRecords, toJsonl } = await import('../src/export/rollouts.js');

let recipe;
try {
  recipe = loadRecipe(readFileSync(recipePath, 'utf8'), recipePath);
} catch (e) {
  fail((e as Error).message);
}
const out = resolve(values.out ?? join(root, 'runs', recipe!.name));
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'recipe.json'), readFileSync(recipePath));

const backend = await createRuntimeBackend(values.runtime!);
if (!values.json) console.log(`recipe ${recipe!.name} on ${backend.description}; output in ${out}`);

const fmt = (s: number | null) => (s === null || !Number.isFinite(s) ? '?' : s > 90 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);
const trainer = new Trainer(recipe!, {
  backend,
  readFile: async (p) => new Uint8Array(readFileSync(join(root, p))),
  store: new FsCheckpointStore(out),
  onEvent: (e) => {
    if (e.type === 'rollouts') {
      if (values['save-rollouts']) appendFileSync(join(out, 'rollouts.jsonl'), toJsonl(rolloutRecords(e, recipe!.grpo.reward, recipe!.grpo.num_generations)));
      return;
    }
    if (e.type === 'metrics') appendFileSync(join(out, 'metrics.jsonl'), JSON.stringify({ phase: e.phase, step: e.step, ...e.metrics }) + '\n');
    if (values.json) console.log(JSON.stringify(e));
    else if (e.type === 'progress') process.stdout.write(`\r[${e.phase}] ${e.done}/${e.total}  ETA ${fmt(e.etaSeconds)}    ${e.done === e.total ? '\n' : ''}`);
    else if (e.type === 'log') console.log(`\n${e.message}`);
    else if (e.type === 'metrics' && e.phase === 'grpo')
      console.log(`\n[grpo ${e.step}] reward ${e.metrics.reward?.toFixed(3)} acc ${e.metrics['rewards/accuracy/mean']?.toFixed(3)} format ${e.metrics['rewards/format/mean']?.toFixed(3)} search ${e.metrics.search_ratio?.toFixed(3)}`);
  },
});
try {
  await trainer.setup();
  await trainer.run({ maxGrpoSteps: values.steps ? Number(values.steps) : undefined });
} catch (e) {
  console.error(`\nnpm run train: ${(e as Error).message}`);
  process.exit(1);
}
if (trainer.evalResult) {
  writeFileSync(join(out, 'eval.md'), trainer.evalResult.table + '\n');
  if (!values.json) console.log(`\n${trainer.evalResult.table}`);
}
if (!values.json) console.log(`\nphase ${trainer.state.phase}: SFT steps ${trainer.state.sftStep}, GRPO steps ${trainer.state.grpoStep}`);
process.exit(0);
