/**
 * What both workers share: the lab's files (model configs and tokenizers, and the shipped checkpoints
 * under checkpoints/, served by Vite in dev and emitted as assets by `vite build`), the recipe presets,
 * the FVQA-mini world of a recipe and its search tools.
 */
import type { FvqaMini } from '../data/fvqa-mini.js';
import { localSearchTools } from '../rl/environment.js';
import { loadStoredRecipe, parseRecipe, type Recipe } from '../rl/recipe.js';
import { ProxySearchClient } from '../search/client.js';
import type { SearchTools } from '../search/types.js';
import { IdbSearchCache } from '../storage/idb-search-cache.js';
import fvqaMini from '../../recipes/fvqa-mini.json';
import fvqaMiniNoPenalty from '../../recipes/fvqa-mini-no-search-penalty.json';
import tinyConfig from '../../models/tiny-vlm/config.json';
import type { RunsDb } from './runs-store.js';

/** URLs of every file under models/ (config, tokenizer), by repo path, e.g. `models/tiny-vlm/config.json`. */
const MODEL_FILES: Record<string, string> = Object.fromEntries(
  Object.entries(import.meta.glob('../../models/*/*.json', { query: '?url', import: 'default', eager: true }) as Record<string, string>).map(([k, url]) => [k.replace('../../', ''), url]),
);

/**
 * Files of the shipped checkpoints by repo path, none when the folder is absent. A shipped checkpoint
 * (scripts/ship-checkpoint.ts) is a folder `checkpoints/<recipe>/<stage>/` with manifest.json, recipe.json
 * and checkpoint/ (model.safetensors, config.json, trainer_state.json: what `npm run train` checkpoints).
 */
const SHIPPED_FILES: Record<string, string> = Object.fromEntries(
  Object.entries(import.meta.glob('../../checkpoints/*/*/**/*.{json,safetensors}', { query: '?url', import: 'default', eager: true }) as Record<string, string>).map(([k, url]) => [k.replace('../../', ''), url]),
);

/** Prefix of model sources and paths that name a shipped checkpoint (`checkpoints/fvqa-mini/grpo`). */
export const SHIPPED_SOURCE = 'checkpoints/';
/** The shipped checkpoints of the main recipe: its warm start (SFT only) and its GRPO-trained policy. */
export const SHIPPED_WARM_START = 'checkpoints/fvqa-mini/warm-start';
export const SHIPPED_GRPO = 'checkpoints/fvqa-mini/grpo';

/** The shipped checkpoint folders (e.g. `checkpoints/fvqa-mini/grpo`) that have a manifest.json. */
export function shippedCheckpoints(): string[] {
  return Object.keys(SHIPPED_FILES).filter((k) => k.endsWith('/manifest.json')).map((k) => k.slice(0, -'/manifest.json'.length)).sort();
}

/** A shipped checkpoint, fetched: its recipe and the files of its checkpoint/ folder by name (`model.safetensors`, ...). */
export interface ShippedCheckpoint {
  recipe: Recipe;
  files: Map<string, Uint8Array>;
}

/**
 * A shipped checkpoint folder (`checkpoints/fvqa-mini/grpo`), fetched, with the recipe of its recipe.json.
 * @throws Error naming the folder when it is not shipped, a file failed to load, or recipe.json is not a valid recipe
 */
export async function readShipped(folder: string): Promise<ShippedCheckpoint> {
  if (!shippedCheckpoints().includes(folder)) throw new Error(`${folder}: no such shipped checkpoint (shipped: ${shippedCheckpoints().join(', ') || 'none'})`);
  const prefix = `${folder}/checkpoint/`;
  const files = new Map<string, Uint8Array>();
  await Promise.all(Object.keys(SHIPPED_FILES).filter((k) => k.startsWith(prefix)).map(async (k) => files.set(k.slice(prefix.length), await readLabFile(k))));
  const recipe = loadStoredRecipe(new TextDecoder().decode(await readLabFile(`${folder}/recipe.json`)), `${folder}/recipe.json`);
  return { recipe, files };
}

/** A micro model (tiny-vlm's tokenizer with a micro config, 1 layer each, 48 wide) for smoke runs: too small to learn the task. */
export const MICRO_SOURCE = 'models/tiny-vlm-micro';
export const MICRO_CONFIG = {
  ...tinyConfig,
  vision_config: { ...tinyConfig.vision_config, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 },
  text_config: { ...tinyConfig.text_config, hidden_size: 48, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2 },
};

/** The full recipe (recipes/fvqa-mini.json). */
export function fullRecipe(): Recipe {
  return parseRecipe(fvqaMini);
}

/** The "Watch GRPO learn when to search" presets: GRPO only, started from the shipped warm start. */
export type WatchPreset = 'main' | 'no-penalty';

/**
 * "Watch GRPO learn when to search": the main recipe's GRPO (or, with 'no-penalty', the ablation
 * without the search penalty) started from the shipped warm start ({@link SHIPPED_WARM_START}, whose
 * checkpoint the run begins from, as `npm run train -- --init-from`), evaluated on-demand only.
 */
export function watchRecipe(which: WatchPreset = 'main'): Recipe {
  const base = parseRecipe(which === 'main' ? fvqaMini : fvqaMiniNoPenalty);
  return parseRecipe({
    ...base,
    name: which === 'main' ? 'watch-grpo' : 'watch-grpo-no-penalty',
    description: `GRPO live from the shipped warm start (the main recipe's SFT, done when it was shipped): the search ratios of search-free and search-required questions start together and split as the policy learns when searching pays${which === 'main' ? '' : ' (here without the search penalty, the ablation: it should search more)'}. On-demand evaluation at the end.`,
    eval: { ...base.eval, modes: ['on_demand'], after_sft: false },
  });
}

/** Prefix of model sources that name a stored run's checkpoint (`runs/<id>`). */
export const RUN_SOURCE = 'runs/';

/**
 * Reads a lab file for the Trainer and the inference worker: `models/...` and shipped `checkpoints/...`
 * files by URL, the micro config from code, `runs/<id>/config.json|model.safetensors` from a run's
 * checkpoint. Tokenizer files of a run are its checkpoint's own when it has them (an imported model),
 * else those of its recipe's model.source (tiny-vlm's when the run is not stored).
 * @throws Error naming the file when it does not exist
 */
export async function readLabFile(path: string, runs?: RunsDb): Promise<Uint8Array> {
  if (path === `${MICRO_SOURCE}/config.json`) return new TextEncoder().encode(JSON.stringify(MICRO_CONFIG));
  if (path.startsWith(MICRO_SOURCE + '/')) path = path.replace(MICRO_SOURCE, 'models/tiny-vlm');
  if (SHIPPED_FILES[path]) {
    const res = await fetch(SHIPPED_FILES[path]);
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const run = /^runs\/([^/]+)\/(.+)$/.exec(path);
  if (run) {
    const file = run[2];
    const files = runs && (await runs.checkpointFiles(run[1]));
    if (file.startsWith('tokenizer') && !files?.has(file)) {
      // A trained run's tokenizer is the one its recipe's model came with (tiny-vlm's or the name-piece one).
      const source = (await runs?.getRun(run[1]))?.recipe.model.source;
      return readLabFile(`${source && source !== `runs/${run[1]}` ? source : 'models/tiny-vlm'}/${file}`, runs);
    }
    const bytes = files?.get(file);
    if (!bytes) throw new Error(`${path}: the run has no checkpoint file ${file}`);
    return bytes;
  }
  const url = MODEL_FILES[path];
  if (!url) throw new Error(`${path}: not a file of the lab (models/ has ${Object.keys(MODEL_FILES).join(', ')})`);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Search tools: the proxy client when `proxyUrl` is given, else the in-worker local engine over the world's corpus. */
export async function searchTools(recipe: Recipe, world: FvqaMini, proxyUrl?: string): Promise<{ tools: SearchTools; label: string }> {
  if (proxyUrl) return { tools: new ProxySearchClient({ baseUrl: proxyUrl, cache: await IdbSearchCache.open() }), label: `proxy ${proxyUrl}` };
  return { tools: await localSearchTools(recipe, world.corpus), label: 'in-worker local engine' };
}

/** Adapter facts for the Setup view. */
export interface AdapterReport {
  available: boolean;
  name: string;
  features: string[];
  limits: Record<string, number>;
  /** Why WebGPU is not usable, when it is not. */
  problem?: string;
}

const LIMITS = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxStorageBuffersPerShaderStage'] as const;

/** Describes the WebGPU adapter of this context (page or worker). */
export async function describeAdapter(): Promise<AdapterReport> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return { available: false, name: 'none', features: [], limits: {}, problem: 'This browser has no WebGPU (navigator.gpu): the lab runs on the CPU through WebAssembly (Setup -> Compute backend).' };
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { available: false, name: 'none', features: [], limits: {}, problem: 'WebGPU is present but no adapter was granted (GPU blocklisted or driver missing): the lab runs on the CPU through WebAssembly (Setup -> Compute backend).' };
  const { vendor, architecture, description } = adapter.info;
  return {
    available: true,
    name: [vendor, architecture, description].filter(Boolean).join(' / ') || 'unknown adapter',
    features: ['shader-f16', 'subgroups', 'timestamp-query'].filter((f) => adapter.features.has(f)),
    limits: Object.fromEntries(LIMITS.map((k) => [k, adapter.limits[k]])),
  };
}
