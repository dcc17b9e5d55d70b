/**
 * `npm run dataset -- <command>`: FVQA-mini generation, FVQA parquet / JSONL import into the dataset
 * store, inspection and parquet export (issue 5).
 *
 *   generate fvqa-mini --seed 1 --out DIR [--entities N] [--held-out N] [--familiar-share X] [--test-size N]
 *   generate fvqa-mini --recipe RECIPE [--seed N] --out DIR
 *                                                      the world a recipe trains on (its data.fvqa_mini, drills and
 *                                                      their corpora included; --seed replaces the recipe's seed)
 *   import FILE|URL [--name NAME] [--store DIR]        parquet (file or http(s) URL, Range reads) or .jsonl
 *   inspect FILE|URL [--json]                          rows, columns, categories, images decodable, first rows
 *   export NAME --format parquet --out FILE [--store DIR] [--seed N]
 *                                                      NAME: a stored dataset, or fvqa-mini-{train,test,heldout,sft}
 *   list [--store DIR]                                 stored datasets with sizes
 * The store defaults to .cache/datasets (the Node filesystem form of the lab's IndexedDB store).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { generateFvqaMini, SPLITS, type FvqaMini, type FvqaMiniConfig } from '../src/data/fvqa-mini.js';
import { decodeImage } from '../src/data/image.js';
import { fvqaMiniStats, jsonlFileBatches, openParquetSource, writeFvqaMiniDir, writeParquetFile } from '../src/data/node-io.js';
import { fvqaParquetBatches, inspectFvqaParquet } from '../src/data/parquet.js';
import { questionFromUserTurn } from '../src/protocol/prompts.js';
import type { FvqaRow, Progress } from '../src/data/types.js';
import { recordToRow } from '../src/data/validate.js';
import { openFsStore } from '../src/storage/fs-store.js';
import { loadRecipe, parseRecipe } from '../src/rl/recipe.js';
import { worldOf } from '../src/rl/environment.js';
import { parseCli, recipeFile } from './cli.js';

const { positionals, values } = parseCli({
  allowPositionals: true,
  options: {
    seed: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
    store: { type: 'string', default: '.cache/datasets' },
    json: { type: 'boolean', default: false },
    format: { type: 'string', default: 'parquet' },
    entities: { type: 'string' },
    'held-out': { type: 'string' },
    'familiar-share': { type: 'string' },
    'test-size': { type: 'string' },
    recipe: { type: 'string' },
  },
}, import.meta.url);

/** One progress line on stderr, rewritten in place. */
function progress(p: Progress): void {
  const total = p.total === null ? '' : `/${p.total}`;
  const unit = p.unit === 'bytes' ? 'bytes' : p.unit;
  process.stderr.write(`\r${p.phase}: ${p.done}${total} ${unit}      `);
  if (p.total !== null && p.done >= p.total) process.stderr.write('\n');
}

const num = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${flag} expects a number, got "${v}"`);
  return n;
};

function usage(): never {
  throw new Error('usage: dataset generate fvqa-mini [--recipe RECIPE] --seed N --out DIR | import FILE|URL [--name N] | inspect FILE [--json] | export NAME --format parquet --out FILE | list');
}

/** The world flags of `generate fvqa-mini`, each with the FvqaMiniConfig field it sets. */
const WORLD_FLAGS = { entities: 'entities', 'held-out': 'heldOutEntities', 'familiar-share': 'familiarShare', 'test-size': 'testSize' } as const;

/** The world of `--recipe`, with `--seed` in place of the recipe's seed. @throws Error naming what is wrong. */
function recipeWorld(): FvqaMini {
  const worldFlags = Object.keys(WORLD_FLAGS).filter((f) => values[f as keyof typeof WORLD_FLAGS] !== undefined);
  if (worldFlags.length) throw new Error(`--recipe sets the world (its data.fvqa_mini): drop ${worldFlags.map((f) => `--${f}`).join(', ')}`);
  const path = recipeFile(values.recipe!);
  const parsed = loadRecipe(readFileSync(path, 'utf8'), path);
  const recipe = values.seed === undefined ? parsed : parseRecipe({ ...parsed, seed: num(values.seed, 'seed') }, path);
  if (recipe.data.source !== 'fvqa-mini') throw new Error(`recipe ${recipe.name}: data.source is ${recipe.data.source}, not fvqa-mini: it has no world to generate`);
  return worldOf(recipe, progress);
}

async function generate(): Promise<void> {
  if (positionals[1] !== 'fvqa-mini' || !values.out) usage();
  const t0 = performance.now();
  let m: FvqaMini;
  if (values.recipe !== undefined) m = recipeWorld();
  else {
    const overrides: Partial<FvqaMiniConfig> = { seed: num(values.seed, 'seed') ?? 1 };
    for (const [flag, field] of Object.entries(WORLD_FLAGS)) {
      const v = num(values[flag as keyof typeof WORLD_FLAGS], flag);
      if (v !== undefined) overrides[field] = v;
    }
    m = generateFvqaMini(overrides, progress);
  }
  await writeFvqaMiniDir(m, values.out, progress);
  process.stderr.write(`\ngenerated in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  console.log(JSON.stringify({ out: values.out, ...fvqaMiniStats(m) }, null, 1));
}

async function importCmd(): Promise<void> {
  const src = positionals[1] ?? usage();
  const name = values.name ?? basename(src).replace(/[?#].*$/, '').replace(/\.(parquet|pq|jsonl)$/, '').replace(/[^A-Za-z0-9._-]/g, '_');
  const store = await openFsStore(values.store!);
  let batches: AsyncIterable<FvqaRow[]>;
  if (src.endsWith('.jsonl')) batches = jsonlFileBatches(src, { onProgress: progress });
  else {
    const file = await openParquetSource(src, (n) => process.stderr.write(`\rfetched ${(n / 1e6).toFixed(1)} MB   `));
    batches = fvqaParquetBatches(file, { idPrefix: name, onProgress: progress });
  }
  const info = await store.write(name, batches, { source: src });
  console.log(JSON.stringify(info, null, 1));
}

async function inspect(): Promise<void> {
  const src = positionals[1] ?? usage();
  const report: Record<string, unknown> = { file: src };
  const errors: string[] = [];
  const categories: Record<string, number> = {};
  const images = { total: 0, decodable: 0 };
  const first: unknown[] = [];
  let valid = 0;
  const look = (r: FvqaRow) => {
    valid++;
    if (first.length < 3) {
      const user = r.prompt.filter((m) => m.role === 'user')[0];
      first.push({
        data_id: r.data_id, data_source: r.data_source, category: r.category, question: user ? questionFromUserTurn(user.content) : null,
        ground_truth: r.reward_model.ground_truth, candidate_answers: r.reward_model.candidate_answers, turns: r.prompt.length,
        images: r.images.map((i) => ({ bytes: i.bytes.length, ...safeSize(i.bytes) })),
      });
    }
  };
  if (src.endsWith('.jsonl')) {
    report.format = 'jsonl';
    try {
      for await (const b of jsonlFileBatches(src)) for (const r of b) {
        categories[r.category ?? 'none'] = (categories[r.category ?? 'none'] ?? 0) + 1;
        images.total += r.images.length;
        images.decodable += r.images.length;
        look(r);
      }
    } catch (e) {
      errors.push((e as Error).message);
    }
    report.rows = valid + errors.length;
  } else {
    report.format = 'parquet';
    const file = await openParquetSource(src);
    try {
      const info = await inspectFvqaParquet(file);
      Object.assign(report, { rows: info.rows, columns: info.columns, row_groups: info.rowGroups });
      // Read raw records so that one bad row does not hide the rest of the report.
      for (let s = 0; s < info.rows; s += 64) {
        const recs = await parquetReadObjects({ file, metadata: info.metadata, rowStart: s, rowEnd: Math.min(info.rows, s + 64), utf8: false });
        recs.forEach((rec, k) => {
          const c = typeof rec.category === 'string' ? rec.category : 'none';
          categories[c] = (categories[c] ?? 0) + 1;
          for (const im of Array.isArray(rec.images) ? rec.images : []) {
            images.total++;
            if (im?.bytes instanceof Uint8Array && safeSize(im.bytes).width) images.decodable++;
          }
          try {
            look(recordToRow(rec, s + k, { idPrefix: basename(src).replace(/\.(parquet|pq)$/, '') }));
          } catch (e) {
            if (errors.length < 20) errors.push((e as Error).message);
          }
        });
      }
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  Object.assign(report, { valid_rows: valid, categories, images, errors, first_rows: first });
  if (values.json) console.log(JSON.stringify(report, null, 1));
  else {
    console.log(`${src}: ${report.rows ?? '?'} rows (${valid} valid), columns ${(report.columns as string[] | undefined)?.join(', ') ?? '-'}`);
    console.log(`categories ${JSON.stringify(categories)}; images decodable ${images.decodable}/${images.total}`);
    for (const e of errors) console.log(`error: ${e}`);
  }
  if (errors.length) process.exitCode = 1;
}

function safeSize(bytes: Uint8Array): { width?: number; height?: number } {
  try {
    const { width, height } = decodeImage(bytes);
    return { width, height };
  } catch {
    return {};
  }
}

async function exportCmd(): Promise<void> {
  const name = positionals[1] ?? usage();
  if (values.format !== 'parquet') throw new Error(`--format ${values.format}: only parquet is supported`);
  if (!values.out) usage();
  const store = await openFsStore(values.store!);
  let rows: AsyncIterable<FvqaRow> | FvqaRow[];
  const generated = /^fvqa-mini-(train|test|heldout|sft)$/.exec(name);
  if (await store.info(name)) {
    rows = (async function* () {
      for await (const b of store.rows(name)) yield* b;
    })();
  } else if (generated) {
    rows = generateFvqaMini({ seed: num(values.seed, 'seed') ?? 1 }, progress).splits[generated[1] as (typeof SPLITS)[number]];
  } else {
    const known = (await store.list()).map((d) => d.name);
    throw new Error(`no dataset "${name}" in ${values.store} (have: ${known.join(', ') || 'none'}); generated ones: ${SPLITS.map((s) => `fvqa-mini-${s}`).join(', ')}`);
  }
  const n = await writeParquetFile(values.out, rows, { onProgress: progress });
  process.stderr.write('\n');
  console.log(JSON.stringify({ name, out: values.out, rows: n }));
}

async function list(): Promise<void> {
  const store = await openFsStore(values.store!);
  console.log(JSON.stringify(await store.list(), null, 1));
}

const commands: Record<string, () => Promise<void>> = { generate, import: importCmd, inspect, export: exportCmd, list };
try {
  await (commands[positionals[0] ?? ''] ?? usage)();
} catch (e) {
  console.error(`dataset: ${(e as Error).message}`);
  process.exit(1);
}
