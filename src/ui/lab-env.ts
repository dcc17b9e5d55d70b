/**
 * What both workers share: the lab's files (model configs and tokenizers, served by Vite in dev and
 * emitted as assets by `vite build`), the recipe presets (the full fvqa-mini recipe and the quick
 * demo on a micro model), the FVQA-mini world of a recipe and its search tools.
 */
import { generateFvqaMini, type FvqaMini } from '../data/fvqa-mini.js';
import { parseRecipe, type Recipe } from '../rl/recipe.js';
import { IdbSearchCache } from '../search/idb-cache.js';
import { ProxySearchClient } from '../search/client.js';
import { LocalSearchIndex } from '../search/local-index.js';
import type { SearchTools } from '../search/types.js';
import fvqaMini from '../../recipes/fvqa-mini.json';
import tinyConfig from '../../models/tiny-vlm/config.json';
import type { RunsDb } from './runs-store.js';

/** URLs of every file under models/ (config, tokenizer), by repo path, e.g. `models/tiny-vlm/config.json`. */
const MODEL_FILES: Record<string, string> = Object.fromEntries(
  Object.entries(import.meta.glob('../../models/*/*.json', { query: '?url', import: 'default', eager: true }) as Record<string, string>).map(([k, url]) => [k.replace('../../', ''), url]),
);

/** The quick demo's model: tiny-vlm's tokenizer with a micro config (1 layer each, 48 wide). */
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

/**
 * The quick demo: the micro model, a 16-entity world, a short SFT and 2 GRPO steps with groups of 2
 * (the settings of src/rl/trainer.test.ts), so the whole loop runs in minutes on software WebGPU.
 */
export function quickRecipe(): Recipe {
  const base = fullRecipe();
  return parseRecipe({
    ...base,
    name: 'fvqa-mini-quick',
    description: 'Quick demo: a micro VLM on a 16-entity FVQA-mini world, short SFT, 2 GRPO steps, on-demand evaluation of 8 test rows.',
    model: { ...base.model, source: MICRO_SOURCE },
    data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, heldOutEntities: 2, testSize: 8 } },
    sft: { ...base.sft, epochs: 3, learning_rate: 0.005, warmup_ratio: 0, batch_size: 16, micro_batch_size: 16 },
    grpo: { ...base.grpo, num_generations: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 1, max_steps: 2, learning_rate: 0.0005, max_completion_length: 200, search: { ...base.grpo.search, results_per_search: 2 } },
    rollout: { max_turn_tokens: 32 },
    eval: { split: 'test', modes: ['on_demand'], batch_size: 8 },
    checkpoint_steps: 1,
  });
}

/** Prefix of model sources that name a stored run's checkpoint (`runs/<id>`). */
export const RUN_SOURCE = 'runs/';

/**
 * Reads a lab file for the Trainer and the inference worker: `models/...` files by URL, the micro
 * config from code, `runs/<id>/config.json|model.safetensors` from a run's checkpoint. Tokenizer files
 * of a run are its checkpoint's own when it has them (an imported model), else tiny-vlm's, the
 * tokenizer every lab recipe trains with.
 * @throws Error naming the file when it does not exist
 */
export async function readLabFile(path: string, runs?: RunsDb): Promise<Uint8Array> {
  if (path === `${MICRO_SOURCE}/config.json`) return new TextEncoder().encode(JSON.stringify(MICRO_CONFIG));
  if (path.startsWith(MICRO_SOURCE + '/')) path = path.replace(MICRO_SOURCE, 'models/tiny-vlm');
  const run = /^runs\/([^/]+)\/(.+)$/.exec(path);
  if (run) {
    const file = run[2];
    const files = runs && (await runs.checkpointFiles(run[1]));
    if (file.startsWith('tokenizer') && !files?.has(file)) return readLabFile(`models/tiny-vlm/${file}`);
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

/** The FVQA-mini world a recipe trains on (the Trainer generates the same one). */
export function worldOf(recipe: Recipe): FvqaMini {
  return generateFvqaMini({ seed: recipe.seed, ...recipe.data.fvqa_mini });
}

/** Search tools: the proxy client when `proxyUrl` is given, else the in-worker local engine over the world's corpus. */
export async function searchTools(recipe: Recipe, world: FvqaMini, proxyUrl?: string): Promise<{ tools: SearchTools; label: string }> {
  if (proxyUrl) return { tools: new ProxySearchClient({ baseUrl: proxyUrl, cache: await IdbSearchCache.open() }), label: `proxy ${proxyUrl}` };
  return { tools: await LocalSearchIndex.build(world.corpus, { summarySentences: recipe.search.summary_sentences }), label: 'in-worker local engine' };
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
