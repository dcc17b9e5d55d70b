/**
 * `npm run export -- <command>`: the lab's runs in the formats of Hugging Face transformers, PEFT
 * and veRL (issue 9; docs/interop.md).
 *
 *   verl --recipe R --out DIR [--model-path P]    train/test parquet, run_mmsearch_r1_grpo.sh, README.md
 *   model --checkpoint RUN --out OUT [--adapter]  config.json + model.safetensors + tokenizer files + chat template
 *                                                 (+ processor files for Idefics3; --adapter: PEFT adapter files,
 *                                                 base model in OUT/base/, named by absolute path in adapter_config)
 *   golden --checkpoint RUN --out FILE            lab logits and greedy tokens for a fixed prompt (check_hf_compat.py)
 *   trl --recipe R [--checkpoint RUN] --out DIR   a runnable TRL GRPOTrainer project (python/trl_project/)
 *   metrics --run RUN --format csv [--out FILE]   metrics.jsonl as CSV (default RUN/metrics.csv)
 * RUN is a folder written by `npm run train` (recipe.json, checkpoint/, metrics.jsonl), or for model
 * and golden a model folder (config.json + model.safetensors or a sharded index, any dtype; tokenizer
 * files used when present), e.g. a fixture of scripts/make-fixtures.ts. Models are loaded on the
 * float64 CPU backend (exact; no GPU needed).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCli } from './cli.js';

const { positionals, values } = parseCli({
  allowPositionals: true,
  options: {
    recipe: { type: 'string' },
    out: { type: 'string' },
    'model-path': { type: 'string' },
    checkpoint: { type: 'string' },
    adapter: { type: 'boolean', default: false },
    run: { type: 'string' },
    format: { type: 'string', default: 'csv' },
    'proxy-url': { type: 'string' },
  },
}, import.meta.url);
const root = resolve(new URL('..', import.meta.url).pathname);
const usage = (): never => {
  throw new Error('usage: export verl --recipe R --out DIR | model --checkpoint RUN|MODEL_DIR --out OUT [--adapter] | golden --checkpoint RUN|MODEL_DIR --out FILE | trl --recipe R [--checkpoint RUN] --out DIR [--proxy-url URL] | metrics --run RUN --format csv [--out FILE]');
};

const { loadRecipe, loadStoredRecipe } = await import('../src/rl/recipe.js');

function recipeFile(nameOrPath: string): string {
  const path = existsSync(nameOrPath) ? nameOrPath : join(root, 'recipes', `${nameOrPath}.json`);
  if (!existsSync(path)) throw new Error(`recipe ${nameOrPath} not found (looked at ${nameOrPath} and ${path})`);
  return path;
}

/** A run folder's recipe and checkpoint files. */
function openRun(dir: string) {
  const ckpt = join(dir, 'checkpoint');
  if (!existsSync(join(dir, 'recipe.json')) || !existsSync(ckpt)) throw new Error(`${dir} has no recipe.json and checkpoint/ (is it a run folder of npm run train?)`);
  const recipe = loadStoredRecipe(readFileSync(join(dir, 'recipe.json'), 'utf8'), join(dir, 'recipe.json'));
  const files = new Map(readdirSync(ckpt).map((f) => [f, new Uint8Array(readFileSync(join(ckpt, f)))]));
  return { recipe, files };
}

function tokenizerOf(source: string) {
  if (source.startsWith('hf:')) throw new Error(`model.source ${source}: the CLI reads tokenizer files from local folders only`);
  const read = (f: string) => new Uint8Array(readFileSync(join(root, source, f)));
  return { 'tokenizer.json': read('tokenizer.json'), 'tokenizer_config.json': read('tokenizer_config.json') };
}

async function verl(): Promise<void> {
  if (!values.recipe || !values.out) usage();
  const path = recipeFile(values.recipe!);
  const { writeVerlExport } = await import('../src/export/node.js');
  const mapping = await writeVerlExport(loadRecipe(readFileSync(path, 'utf8'), path), resolve(values.out!), values['model-path']);
  const count = (s: string) => mapping.filter((m) => m.status === s).length;
  console.log(JSON.stringify({ out: values.out, options: count('override') + count('append'), upstream_only: count('upstream'), no_equivalent: count('none') }));
}

/** Tokenizer files of a folder, or null when it has none. */
function tokenizerIn(dir: string) {
  if (!existsSync(join(dir, 'tokenizer.json')) || !existsSync(join(dir, 'tokenizer_config.json'))) return null;
  const read = (f: string) => new Uint8Array(readFileSync(join(dir, f)));
  return { 'tokenizer.json': read('tokenizer.json'), 'tokenizer_config.json': read('tokenizer_config.json') };
}

/** A model folder's config and weights (single file or sharded index). */
async function openModelFolder(dir: string) {
  if (!existsSync(join(dir, 'config.json'))) throw new Error(`${dir}: neither a run folder (recipe.json, checkpoint/) nor a model folder (config.json)`);
  const { openSafetensorsBuffer, openShardedSafetensors } = await import('../src/io/safetensors.js');
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const open = (f: string) => openSafetensorsBuffer(new Uint8Array(readFileSync(join(dir, f))), join(dir, f));
  if (existsSync(join(dir, 'model.safetensors'))) return { config, weights: await open('model.safetensors') };
  const index = join(dir, 'model.safetensors.index.json');
  if (!existsSync(index)) throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  return { config, weights: await openShardedSafetensors(readFileSync(index, 'utf8'), open, index) };
}

const isRun = (dir: string) => existsSync(join(dir, 'recipe.json'));

async function model(): Promise<void> {
  if (!values.checkpoint || !values.out) usage();
  const dir = resolve(values.checkpoint!);
  const E = await import('../src/engine/index.js');
  const { exportModelFiles, exportModelFolder } = await import('../src/export/model.js');
  const { writeFiles } = await import('../src/export/node.js');
  let out;
  if (isRun(dir)) {
    const { recipe, files } = openRun(dir);
    out = await exportModelFiles(recipe, files, tokenizerOf(recipe.model.source), new E.CpuBackend(), { adapter: values.adapter, baseModelPath: resolve(values.out!, 'base') });
  } else {
    if (values.adapter) throw new Error('--adapter needs a run folder whose recipe has model.lora');
    const { config, weights } = await openModelFolder(dir);
    out = await exportModelFolder(config, weights, tokenizerIn(dir), new E.CpuBackend());
  }
  await writeFiles(resolve(values.out!), out);
  console.log(JSON.stringify({ out: values.out, files: [...out.keys()] }));
}

async function golden(): Promise<void> {
  if (!values.checkpoint || !values.out) usage();
  const dir = resolve(values.checkpoint!);
  const E = await import('../src/engine/index.js');
  const { goldenOutput, goldenRow } = await import('../src/export/model.js');
  const { loadTokenizer } = await import('../src/models/tokenizer.js');
  const dec = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));
  const be = new E.CpuBackend();
  let recipe = null, m, t;
  if (isRun(dir)) {
    const run = openRun(dir);
    recipe = run.recipe;
    t = tokenizerOf(recipe.model.source);
    const { loadCheckpointModel } = await import('../src/rl/checkpoint.js');
    m = await loadCheckpointModel(recipe, run.files, be);
  } else {
    const { config, weights } = await openModelFolder(dir);
    t = tokenizerIn(dir);
    const { loadPretrained } = await import('../src/models/checkpoint.js');
    m = await loadPretrained(config, weights, be);
  }
  const tok = t ? loadTokenizer(dec(t['tokenizer.json']), dec(t['tokenizer_config.json'])) : null;
  const g = await goldenOutput(recipe, m, tok, goldenRow(recipe));
  m.dispose();
  writeFileSync(resolve(values.out!), JSON.stringify(g) + '\n');
  console.log(JSON.stringify({ out: values.out, architecture: g.architecture, input_ids: g.input_ids.length, vocab: g.logits_last.length, greedy: g.greedy.tokens.length }));
}

async function metrics(): Promise<void> {
  if (!values.run) usage();
  if (values.format !== 'csv') throw new Error(`--format ${values.format}: only csv (a TensorBoard writer is not available; see docs/interop.md)`);
  const { writeMetricsCsv } = await import('../src/export/node.js');
  const out = resolve(values.out ?? join(values.run!, 'metrics.csv'));
  const rows = await writeMetricsCsv(join(resolve(values.run!), 'metrics.jsonl'), out);
  console.log(JSON.stringify({ out, rows }));
}

async function trl(): Promise<void> {
  if (!values.recipe || !values.out) usage();
  const path = recipeFile(values.recipe!);
  let recipe = loadRecipe(readFileSync(path, 'utf8'), path);
  let checkpoint: Map<string, Uint8Array> | undefined;
  if (values.checkpoint) {
    const run = openRun(resolve(values.checkpoint));
    if (run.recipe.model.source !== recipe.model.source) throw new Error(`--checkpoint ${values.checkpoint} trained ${run.recipe.model.source}, the recipe uses ${recipe.model.source}`);
    ({ files: checkpoint } = run);
    recipe = { ...recipe, model: { ...recipe.model, lora: run.recipe.model.lora } };
  }
  const { writeTrlExport } = await import('../src/export/trl-node.js');
  const tokenizer = recipe.model.source.startsWith('hf:') ? null : tokenizerOf(recipe.model.source);
  const cfg = await writeTrlExport(recipe, resolve(values.out!), { checkpoint, tokenizer, proxyUrl: values['proxy-url'] ?? recipe.search.proxy_url ?? 'http://127.0.0.1:8787' });
  console.log(JSON.stringify({ out: values.out, model: cfg.lab.model, grpo_fields: Object.keys(cfg.grpo).length, not_carried: Object.keys(cfg.not_carried) }));
}

const commands: Record<string, () => Promise<void>> = { verl, model, golden, trl, metrics };
try {
  await (commands[positionals[0] ?? ''] ?? usage)();
} catch (e) {
  console.error(`export: ${(e as Error).message}`);
  process.exit(1);
}
