/**
 * Writes the TRL export of a recipe (Node): the Python project (python/trl_project/), trl_config.json,
 * protocol.json, the FVQA parquet and the model in transformers' format. See ./trl.ts.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeParquetFile } from '../data/node-io.js';
import type { FvqaRow } from '../data/types.js';
import * as E from '../engine/index.js';
import { openSafetensorsBuffer } from '../io/safetensors.js';
import { createModel, saveModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { compactInstructions } from '../protocol/prompts.js';
import { worldOf } from '../rl/environment.js';
import type { Recipe } from '../rl/recipe.js';
import { exportModelFiles, exportModelFolder, type TokenizerFiles } from './model.js';
import { writeFiles } from './node.js';
import { protocolJson, trlConfig, trlReadme, type TrlConfig } from './trl.js';

const root = new URL('../../', import.meta.url).pathname;
/** The project's Python files, copied as they are. */
export const TRL_PROJECT_FILES = ['train.py', 'mmsearch_trl.py'] as const;

/** Options of {@link writeTrlExport}. */
export interface TrlExportOptions {
  /** A run's checkpoint files (config.json, model.safetensors): the model to start from (LoRA merged). */
  checkpoint?: Map<string, Uint8Array>;
  /** The model source's tokenizer files (local sources); null for hub models. */
  tokenizer: TokenizerFiles | null;
  /** The lab's search proxy as seen from the training machines. */
  proxyUrl: string;
  backend?: E.Backend;
}

/**
 * Writes the TRL project for `recipe` into `dir`: train.py, mmsearch_trl.py, trl_config.json,
 * protocol.json, README.md, data/train.parquet and data/<eval split>.parquet (FVQA-mini recipes: the
 * recipe's world, its instructions compacted when the recipe says so; parquet recipes: referenced in
 * README, to download into data/), and model/: the checkpoint's weights, or for a local source
 * without one the recipe's seeded initialisation (as the trainer starts), or nothing for a hub model.
 * @returns the trl_config.json written
 * @throws when a local model source lacks config.json or tokenizer files
 */
export async function writeTrlExport(recipe: Recipe, dir: string, o: TrlExportOptions): Promise<TrlConfig> {
  const backend = o.backend ?? new E.CpuBackend();
  await mkdir(join(dir, 'data'), { recursive: true });
  const hub = recipe.model.source.startsWith('hf:');
  let model: string;
  if (o.checkpoint) {
    await writeFiles(join(dir, 'model'), await exportModelFiles(recipe, o.checkpoint, o.tokenizer, backend));
    model = 'model';
  } else if (!hub) {
    const config = JSON.parse(await readFile(join(root, recipe.model.source, 'config.json'), 'utf8')) as Record<string, unknown>;
    const m = createModel(parseConfig(config, `${recipe.model.source}/config.json`), backend, recipe.seed);
    const files = await saveModel(m);
    m.dispose();
    await writeFiles(join(dir, 'model'), await exportModelFolder(config, await openSafetensorsBuffer(files.get('model.safetensors')!), o.tokenizer, backend));
    model = 'model';
  } else {
    model = recipe.model.source.slice(3).replace(/@.*$/, '');
  }
  if (recipe.data.source === 'fvqa-mini') {
    const world = worldOf(recipe);
    const c = (r: FvqaRow): FvqaRow => (recipe.model.compact_instructions ? { ...r, prompt: r.prompt.map((m) => ({ ...m, content: compactInstructions(m.content) })) } : r);
    await writeParquetFile(join(dir, 'data/train.parquet'), world.splits.train.map(c));
    const split = world.splits[recipe.eval.split as keyof typeof world.splits];
    if (split) await writeParquetFile(join(dir, `data/${recipe.eval.split}.parquet`), split.map(c));
  }
  const cfg = trlConfig(recipe, model, o.proxyUrl);
  if (recipe.data.source !== 'fvqa-mini') cfg.not_carried['data (parquet)'] = `download ${recipe.data.train} to data/train.parquet (the FVQA schema; rows holding only the question get the lab's first turn)`;
  for (const f of TRL_PROJECT_FILES) await writeFile(join(dir, f), await readFile(join(root, 'python/trl_project', f)));
  await writeFile(join(dir, 'trl_config.json'), JSON.stringify(cfg, null, 2) + '\n');
  await writeFile(join(dir, 'protocol.json'), JSON.stringify(protocolJson(recipe.model.compact_instructions), null, 2) + '\n');
  await writeFile(join(dir, 'README.md'), trlReadme(recipe, cfg));
  return cfg;
}
