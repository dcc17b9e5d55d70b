/**
 * `npx tsx scripts/ship-checkpoint.ts RUN_DIR OUT_DIR --command "<the command that trained RUN_DIR>" [--dtype f16|f32] [--runtime wasm]`
 *
 * Packs a run folder of `npm run train` into a checkpoint that ships with the lab (issue 16): OUT_DIR/recipe.json,
 * OUT_DIR/checkpoint/{model.safetensors, config.json, trainer_state.json} (no optimizer state: a shipped
 * warm start starts GRPO with a fresh optimizer, as `--init-from` of a warm start does) and OUT_DIR/manifest.json:
 * the recipe, the world seed, the command, the sha256 of every file, the evaluation of the shipped weights
 * (greedy; every mode of the recipe on the test and heldout splits, plus the run's own numbers at full
 * precision for comparison) and `checks`: the on-demand answers and search calls of fixed test rows
 * (two per question kind) that tests/shipped-checkpoints.test.ts re-checks. Weights are stored as F16 by
 * default; the script fails when F16 changes any evaluated answer or search decision (then ship F32).
 * `npm run eval -- --checkpoint OUT_DIR` and `npm run train -- --init-from OUT_DIR` accept the result.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { f32ToF16 } from '../src/engine/dtype.js';
import { openSafetensorsBuffer, serializeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import type { EvalRecord, ModeSummary } from '../src/rl/evaluate.js';
import { loadStoredRecipe, type Recipe } from '../src/rl/recipe.js';
import { FsCheckpointStore } from '../src/storage/fs-checkpoint-store.js';
import { Trainer } from '../src/rl/trainer.js';
import { createRuntimeBackend } from './runtime.js';
import { parseCli } from './cli.js';

const { values, positionals } = parseCli({
  allowPositionals: true,
  options: { command: { type: 'string' }, dtype: { type: 'string', default: 'f16' }, runtime: { type: 'string', default: 'wasm' } },
}, import.meta.url);
const fail = (msg: string): never => {
  console.error(`ship-checkpoint: ${msg}`);
  process.exit(2);
};
const [runArg, outArg] = positionals;
if (!runArg || !outArg || !values.command) fail('usage: npx tsx scripts/ship-checkpoint.ts RUN_DIR OUT_DIR --command "<command>" [--dtype f16|f32]');
if (!['f16', 'f32'].includes(values.dtype!)) fail(`--dtype ${values.dtype}: f16 or f32`);
const root = resolve(new URL('..', import.meta.url).pathname);
const run = resolve(runArg), out = resolve(outArg);
for (const f of ['recipe.json', 'checkpoint/model.safetensors', 'checkpoint/trainer_state.json', 'checkpoint/config.json'])
  if (!existsSync(join(run, f))) fail(`${run} has no ${f} (is it a run folder of npm run train?)`);

/** Fixed check rows per shipped checkpoint: this many per question kind, the first of the test split (evalSubset order). */
const CHECKS_PER_KIND = 2;

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'checkpoint'), { recursive: true });
cpSync(join(run, 'recipe.json'), join(out, 'recipe.json'));
for (const f of ['config.json', 'trainer_state.json']) cpSync(join(run, 'checkpoint', f), join(out, 'checkpoint', f));
const weights = await openSafetensorsBuffer(readFileSync(join(run, 'checkpoint', 'model.safetensors')), 'model.safetensors');
const tensors = new Map<string, TensorToWrite>();
for (const name of weights.names()) {
  const v = await weights.readF32(name);
  tensors.set(name, values.dtype === 'f16' ? { dtype: 'F16', shape: weights.info(name).shape, data: f32ToF16(v) } : { dtype: 'F32', shape: weights.info(name).shape, data: v });
}
writeFileSync(join(out, 'checkpoint', 'model.safetensors'), serializeSafetensors(tensors));

const recipe = loadStoredRecipe(readFileSync(join(out, 'recipe.json'), 'utf8'), join(out, 'recipe.json'));
const backend = await createRuntimeBackend(values.runtime!);
const readFile = async (p: string) => new Uint8Array(readFileSync(resolve(root, p)));

/** Greedy evaluation of the shipped weights (read-only store). */
async function evaluateShipped(r: Recipe): Promise<{ summaries: ModeSummary[]; records: EvalRecord[] }> {
  const source = new FsCheckpointStore(out);
  const t = new Trainer(r, { backend, readFile, store: { load: () => source.load(), save: async () => {} } });
  await t.setup();
  t.state.phase = 'eval';
  await t.run();
  t.model.dispose();
  return t.evalResult!;
}

const splits = ['test', 'heldout'];
const modes = ['direct', 'rag', 'on_demand'] as const;
const evaluation: (ModeSummary & { split: string })[] = [];
const records = new Map<string, EvalRecord[]>();
for (const split of splits) {
  process.stdout.write(`evaluating the ${values.dtype} weights on ${split}...\n`);
  const r = await evaluateShipped({ ...recipe, eval: { ...recipe.eval, split, modes: [...modes], max_rows: null } });
  evaluation.push(...r.summaries.map((s) => ({ split, ...s })));
  records.set(split, r.records);
}
// The run's own evaluation at full precision (if it has one for this split): F16 must not change an answer.
const reference = ['eval-test.json', 'checkpoint/eval.json'].map((f) => join(run, f)).find((f) => existsSync(f));
if (values.dtype === 'f16' && reference) {
  const full = JSON.parse(readFileSync(reference, 'utf8')).records as EvalRecord[];
  const mine = new Map(records.get('test')!.map((x) => [`${x.mode}/${x.data_id}`, x]));
  const changed = full.filter((x) => mine.has(`${x.mode}/${x.data_id}`) && (mine.get(`${x.mode}/${x.data_id}`)!.answer !== x.answer || mine.get(`${x.mode}/${x.data_id}`)!.searched !== x.searched));
  if (changed.length) fail(`F16 weights change ${changed.length} answers or search decisions of ${relative(root, reference)} (e.g. ${changed[0].mode} ${changed[0].data_id}); ship with --dtype f32`);
}
const checks = (await evaluateShipped({ ...recipe, eval: { ...recipe.eval, split: 'test', modes: ['on_demand'], max_rows: 4 * CHECKS_PER_KIND } })).records.map((x) => ({
  data_id: x.data_id, question: x.question, answer: x.answer, correct: x.correct, image_searches: x.imageSearches, text_searches: x.textSearches,
}));

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const files = ['recipe.json', ...readdirSync(join(out, 'checkpoint')).map((f) => `checkpoint/${f}`)].sort();
const state = JSON.parse(readFileSync(join(out, 'checkpoint', 'trainer_state.json'), 'utf8'));
const manifest = {
  recipe: recipe.name,
  world_seed: recipe.seed,
  stage: state.grpoStep > 0 ? 'after_grpo' : 'warm_start',
  sft_steps: state.sftStep,
  grpo_steps: state.grpoStep,
  command: values.command,
  weights_dtype: values.dtype!.toUpperCase(),
  files: Object.fromEntries(files.map((f) => [f, sha256(join(out, f))])),
  evaluation,
  evaluation_full_precision: reference ? JSON.parse(readFileSync(reference, 'utf8')).summaries : null,
  checks: { split: 'test', mode: 'on_demand', decoding: 'greedy', rows: checks },
};
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log(`wrote ${relative(root, out)}: ${files.length} files, ${checks.length} check rows`);
process.exit(0);
