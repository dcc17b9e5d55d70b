/**
 * Node-only writers of the exports (the CLI, scripts/export.ts, and tests): the veRL folder, model
 * files, metrics CSV. Browser code uses the pure builders in verl.ts, model.ts and metrics.ts.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeParquetFile } from '../data/node-io.js';
import { worldOf } from '../rl/environment.js';
import type { Recipe } from '../rl/recipe.js';
import { parseJsonl } from '../io/jsonl.js';
import { metricsToCsv } from './metrics.js';
import { launchScript, verlMapping, verlReadme, verlRow, type MappingEntry, type VerlFiles } from './verl.js';

/** Writes every file of a map under `dir` (relative paths may contain folders). */
export async function writeFiles(dir: string, files: Map<string, Uint8Array | string>): Promise<void> {
  for (const [name, data] of files) {
    const path = join(dir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, data);
  }
}

/**
 * Writes the veRL export of a recipe to `dir`: train.parquet, test.parquet and heldout.parquet
 * (FVQA-mini generated as the trainer does: `{seed: recipe.seed, ...data.fvqa_mini}`; the eval split
 * as test, the held-out entities' questions as heldout; rows as MMSearch-R1's loader expects them,
 * {@link verlRow}), the launch script run_mmsearch_r1_grpo.sh (executable) and README.md. Parquet
 * recipes reference their files.
 * @param modelPath actor_rollout_ref.model.path (default `$MODEL_PATH`, which the script defaults to Qwen2.5-VL-7B-Instruct)
 * @throws when the eval split does not exist, or as {@link verlMapping}
 */
export async function writeVerlExport(recipe: Recipe, dir: string, modelPath = '$MODEL_PATH'): Promise<MappingEntry[]> {
  await mkdir(dir, { recursive: true });
  let files: VerlFiles | null = null;
  let paths;
  if (recipe.data.source === 'fvqa-mini') {
    const data = worldOf(recipe);
    const test = data.splits[recipe.eval.split as keyof typeof data.splits];
    if (!test) throw new Error(`eval.split ${recipe.eval.split}: FVQA-mini has train, test, heldout and sft`);
    files = { train: 'train.parquet', test: 'test.parquet', heldout: 'heldout.parquet' };
    await writeParquetFile(join(dir, files.train), data.splits.train.map((r) => verlRow(r, 'fvqa_mini_train')));
    await writeParquetFile(join(dir, files.test), (recipe.eval.max_rows ? test.slice(0, recipe.eval.max_rows) : test).map((r) => verlRow(r, `fvqa_mini_${recipe.eval.split}`)));
    await writeParquetFile(join(dir, files.heldout), data.splits.heldout.map((r) => verlRow(r, 'fvqa_mini_heldout')));
    paths = { modelPath, trainFiles: '$HERE/train.parquet', valFiles: '[$HERE/test.parquet,$HERE/heldout.parquet]' };
  } else {
    // Hub files (hf:ORG/NAME/FILE) are downloaded first: veRL reads local parquet.
    const local = (f: string | undefined, env: string) => (f && !f.startsWith('hf:') ? f : `\${${env}:?download ${f ?? 'the parquet file'}}`);
    paths = { modelPath, trainFiles: local(recipe.data.train, 'TRAIN_DATA_PATH'), valFiles: local(recipe.data.test, 'VAL_DATA_PATH') };
  }
  const mapping = verlMapping(recipe, paths);
  await writeFile(join(dir, 'run_mmsearch_r1_grpo.sh'), launchScript(recipe, mapping), { mode: 0o755 });
  await writeFile(join(dir, 'README.md'), verlReadme(recipe, mapping, files));
  return mapping;
}

/** Converts a metrics.jsonl file to CSV at `out`. @returns the number of rows */
export async function writeMetricsCsv(jsonlPath: string, out: string): Promise<number> {
  const records = parseJsonl(await readFile(jsonlPath, 'utf8'), jsonlPath);
  await writeFile(out, metricsToCsv(records));
  return records.length;
}
