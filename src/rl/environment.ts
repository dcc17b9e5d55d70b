/**
 * A recipe's run environment, built in one place: the tokenizer and the policy model (a lab folder such
 * as `models/tiny-vlm`, or the hub: `hf:ORG/NAME@REV`), the data (the FVQA-mini world the recipe's seed
 * generates, or FVQA parquet files) and the search tools (the local index over the world's corpus, or
 * the proxy). The trainer, the lab's workers, the command-line tools and the exporters all build what
 * they need of a run here; where files come from (Node's fs, fetch, IndexedDB, the hub cache) comes in
 * through {@link RunSources}.
 */
import type * as E from '../engine/index.js';
import { drillWorldOf, generateFvqaMini, type FvqaMini } from '../data/fvqa-mini.js';
import { bufferFromBlob, bufferFromBytes, rangeBufferFromUrl, readFvqaParquet } from '../data/parquet.js';
import type { FvqaRow, ProgressCallback } from '../data/types.js';
import { parseHfDatasetFile } from '../hub/ref.js';
import { HubRepo, type HubRepoOptions } from '../hub/repo.js';
import { openSafetensorsBuffer, type TensorSource } from '../io/safetensors.js';
import { applyLora, createModel, loadPretrained, type PolicyModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { loadTokenizer, type LabTokenizer } from '../models/tokenizer.js';
import { ProxySearchClient, type ProxyClientOptions } from '../search/client.js';
import { LocalSearchIndex } from '../search/local-index.js';
import type { SearchCorpus } from '../search/corpus.js';
import type { SearchTools } from '../search/types.js';
import { resolveGenerationBatch } from './config.js';
import { fvqaMiniConfig, inRecipeTerms, type Recipe } from './recipe.js';

/** Where a run's files and services come from. */
export interface RunSources {
  /** Reads a file of the lab (e.g. `models/tiny-vlm/config.json`): Node fs or fetch. */
  readFile(path: string): Promise<Uint8Array>;
  /** Search tools for the proxy backend (the local backend is built in-process). */
  proxyTools?: SearchTools;
  /**
   * The hub, for `hf:` model sources and data files: the download cache (FsHubCache in Node,
   * IdbHubCache in a worker), the endpoint (default https://huggingface.co) and download progress.
   */
  hub?: HubRepoOptions;
  /** Log lines (rows read from a data file). */
  log?(message: string): void;
  /** Progress of generating a fvqa-mini world (a drilled world takes minutes). */
  onProgress?: ProgressCallback;
}

/** What a run trains and evaluates with. */
export interface RunEnvironment {
  model: PolicyModel;
  tok: LabTokenizer;
  /** The side of the model's square input images, in pixels. */
  imageSize: number;
  /** The rows by split: FVQA-mini's train, test, heldout and sft, or the parquet files' train and test (train filtered by data.train_categories). */
  data: { splits: Record<string, FvqaRow[]> };
  tools: SearchTools;
  /**
   * The tools a row's searches run on (warm-start replays, GRPO rollouts): `tools`, or for a row about an
   * FVQA-mini drill creature (reading or GRPO drill) the local index over its drill world's corpus
   * (built once per drill world, on first use).
   * @throws (rejects) Error naming the row when its drill world is not in the generated data
   */
  rowTools: (row: FvqaRow) => Promise<SearchTools>;
}

/**
 * The FVQA-mini world of a recipe (data.source fvqa-mini): its splits and search corpus, drills included;
 * `onProgress` reports the generation's phases. `warmStartDrills: false` leaves out the reading and look
 * drills, rows of the sft split only (the other splits, the corpus and the GRPO drills are the same).
 * @throws Error naming the recipe's data.fvqa_mini field whose value the generator rejects.
 */
export function worldOf(recipe: Recipe, onProgress?: ProgressCallback, { warmStartDrills = true } = {}): FvqaMini {
  const config = fvqaMiniConfig(recipe);
  try {
    return generateFvqaMini(warmStartDrills ? config : { ...config, readingDrills: 0, lookDrills: 0 }, onProgress);
  } catch (e) {
    throw new Error(`recipe ${recipe.name}: ${inRecipeTerms(e instanceof Error ? e.message : String(e))}`);
  }
}

/** The local search engine over a corpus (a world's, or a drill world's), as the recipe's search section sets it up. */
export function localSearchTools(recipe: Recipe, corpus: SearchCorpus): Promise<LocalSearchIndex> {
  return LocalSearchIndex.build(corpus, { summarySentences: recipe.search.summary_sentences });
}

/**
 * The search proxy's client for a recipe whose search.backend is proxy (at search.proxy_url), else
 * undefined: what {@link RunSources.proxyTools} takes.
 */
export function proxySearchTools(recipe: Recipe, opts: Omit<ProxyClientOptions, 'baseUrl'> = {}): ProxySearchClient | undefined {
  return recipe.search.backend === 'proxy' ? new ProxySearchClient({ baseUrl: recipe.search.proxy_url, ...opts }) : undefined;
}

/**
 * Builds the tokenizer, the policy (pretrained weights or fresh ones from the recipe's seed, LoRA
 * attached when the recipe has one), the data and the search tools of a recipe. Hub files are
 * downloaded first (or served by the cache of `sources.hub`). `warmStartDrills: false`: see worldOf.
 * @throws Error naming the file (and row and field, for bad data rows) when a model or data file is
 *   missing or malformed, when an `hf:` source has no `sources.hub`, when the model is not a
 *   vision-language model, when the proxy backend has no `sources.proxyTools`, or when the training
 *   split is smaller than one GRPO step's prompts
 */
export async function buildRunEnvironment(r: Recipe, backend: E.Backend, sources: RunSources, { warmStartDrills = true } = {}): Promise<RunEnvironment> {
  const proxy = r.search.backend === 'proxy' ? requireProxy(sources) : null;
  const files = modelFiles(r.model.source, sources);
  const tok = loadTokenizer(await files.json('tokenizer.json'), await files.json('tokenizer_config.json'));
  const raw = await files.json('config.json');
  const config = parseConfig(raw, files.where('config.json'));
  if (config.architecture !== 'Idefics3ForConditionalGeneration') throw new Error(`${r.model.source}: the FVQA recipes need a vision-language model (Idefics3ForConditionalGeneration)`);
  const model = r.model.init === 'pretrained' ? await loadPretrained(raw, await files.weights(), backend) : createModel(config, backend, r.seed);
  if (r.model.lora) applyLora(model, r.model.lora, r.seed);
  let data: RunEnvironment['data'], tools: SearchTools;
  let rowTools = (_row: FvqaRow): Promise<SearchTools> => Promise.resolve(tools);
  if (r.data.source === 'fvqa-mini') {
    const world = worldOf(r, sources.onProgress, { warmStartDrills });
    data = world;
    tools = proxy ?? (await localSearchTools(r, world.corpus));
    // Drill worlds are practice outside the world, so no proxy serves them: their own local indexes do.
    const drillTools = new Map<string, Promise<SearchTools>>();
    rowTools = (row) => {
      const d = drillWorldOf(row);
      if (d === null) return Promise.resolve(tools);
      const corpus = world.drillCorpora[d];
      if (!corpus) return Promise.reject(new Error(`row ${row.data_id}: drill world "${d}" is not among the world's ${Object.keys(world.drillCorpora).length} drill corpora (data.fvqa_mini.reading_drills, look_drills, grpo_drills)`));
      let t = drillTools.get(d);
      if (!t) drillTools.set(d, (t = localSearchTools(r, corpus)));
      return t;
    };
  } else {
    // The recipe schema allows parquet only with the proxy backend: no generated corpus to search.
    data = { splits: { train: await parquetRows(r, 'train', sources), test: await parquetRows(r, 'test', sources) } };
    tools = proxy!;
  }
  const keep = r.data.train_categories;
  if (keep) data.splits.train = data.splits.train.filter((row) => keep.includes(row.category as (typeof keep)[number]));
  const { generation_batch_size } = resolveGenerationBatch(r.grpo);
  const prompts = generation_batch_size / r.grpo.num_generations;
  if (data.splits.train.length < prompts) throw new Error(`the training split has ${data.splits.train.length} rows; a GRPO step takes ${prompts} prompts (generation batch ${generation_batch_size} / num_generations ${r.grpo.num_generations})`);
  return { model, tok, imageSize: config.vision.image_size, data, tools, rowTools };
}

function requireProxy(sources: RunSources): SearchTools {
  if (!sources.proxyTools) throw new Error('search.backend proxy: no proxy client was given');
  return sources.proxyTools;
}

/** The files of a model source: JSON files by name, and the weights. */
interface ModelFiles {
  /** Where a file comes from, for messages. */
  where(file: string): string;
  json(file: string): Promise<Record<string, unknown>>;
  weights(): Promise<TensorSource>;
}

/** model.source's files: a lab folder through sources.readFile, or a hub repository through sources.hub. */
function modelFiles(src: string, sources: RunSources): ModelFiles {
  if (src.startsWith('hf:')) {
    const repo = new HubRepo(src, hubOptions(sources, `model.source ${src}`));
    return { where: (f) => repo.url(f), json: (f) => repo.json(f), weights: () => repo.weights() };
  }
  return {
    where: (f) => `${src}/${f}`,
    json: async (f) => JSON.parse(new TextDecoder().decode(await sources.readFile(`${src}/${f}`))),
    weights: async () => openSafetensorsBuffer(await sources.readFile(`${src}/model.safetensors`), `${src}/model.safetensors`),
  };
}

/** @throws Error naming `what` when the sources have no hub */
function hubOptions(sources: RunSources, what: string): HubRepoOptions {
  if (!sources.hub) throw new Error(`${what}: hub files need a download cache, and this environment gave none (TrainerEnv.hub)`);
  return sources.hub;
}

/**
 * The rows of data.train or data.test, validated (src/data/validate.ts). The file is a hub dataset
 * file (`hf:ORG/NAME[@REV]/FILE`, downloaded through the hub cache, so a resumed run reads it
 * locally), an http(s) URL (read with HTTP Range requests) or a path given to sources.readFile.
 * @throws Error naming the setting and file, and for a bad row its number and field
 */
async function parquetRows(recipe: Recipe, split: 'train' | 'test', sources: RunSources): Promise<FvqaRow[]> {
  const source = recipe.data[split]!;
  const where = `data.${split} ${source}`;
  const hub = source.startsWith('hf:') ? hubOptions(sources, where) : null;
  const rows: FvqaRow[] = [];
  try {
    const hf = hub && parseHfDatasetFile(source);
    const file = hf ? bufferFromBlob(await new HubRepo(hf.ref, hub).download(hf.file))
      : /^https?:\/\//.test(source) ? await rangeBufferFromUrl(source) : bufferFromBytes(await sources.readFile(source));
    await readFvqaParquet(file, (batch) => void rows.push(...batch), { idPrefix: split });
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
  }
  if (!rows.length) throw new Error(`${where}: the file has no rows`);
  const imageless = rows.findIndex((row) => !row.images.length);
  // Rollouts put the question's image first in every prompt.
  if (imageless >= 0) throw new Error(`${where}: row ${imageless}, field images: no image (every question needs its image)`);
  sources.log?.(`${where}: ${rows.length} rows`);
  return rows;
}
