/**
 * The inference worker: owns its GPUDevice; loads a policy (a fresh preset model, a stored run's
 * checkpoint with its LoRA adapter, or a hub model), then chats with the tool protocol, streaming
 * tokens, tool calls and results back, or runs the three-mode evaluation. It also turns a run's
 * checkpoint into Hugging Face files (a model folder or a PEFT adapter, as one ZIP) and imports such a
 * folder back as a stored checkpoint. API through comlink: {@link InferenceApi} (src/lab/worker-api.ts).
 */
import * as Comlink from 'comlink';
import * as E from '../src/engine/index.js';
import { firstUserTurn } from '../src/protocol/prompts.js';
import type { FvqaMini } from '../src/data/fvqa-mini.js';
import type { FvqaRow } from '../src/data/types.js';
import { IdbHubCache } from '../src/storage/idb-hub-cache.js';
import { openSafetensorsBuffer } from '../src/io/safetensors.js';
import { exportModelFiles } from '../src/export/model.js';
import { loadCheckpointModel } from '../src/rl/checkpoint.js';
import { readZip, writeZip } from '../src/export/zip.js';
import { createModel, loadPretrained, type PolicyModel } from '../src/models/checkpoint.js';
import { parseConfig } from '../src/models/config.js';
import { loadFromHub } from '../src/models/hub.js';
import { loadTokenizer, type LabTokenizer } from '../src/models/tokenizer.js';
import { evalSubset, evaluate, table1, type ModeSummary } from '../src/rl/evaluate.js';
import { loadStoredRecipe, recipeRolloutOptions, type Recipe } from '../src/rl/recipe.js';
import { rollout, type SearchMode } from '../src/rl/rollout.js';
import { bytesToBase64 } from '../src/search/image.js';
import type { SearchTools } from '../src/search/types.js';
import { fullRecipe, readLabFile, readShipped, searchTools, SHIPPED_SOURCE } from '../src/lab/lab-env.js';
import { worldOf } from '../src/rl/environment.js';
import { openRuns, type RunRecord, type RunsDb } from '../src/lab/runs-store.js';
import type { ChatEvent, ChatSample, InferenceApi, LoadedModel, ModelSpec, SampledDecisions } from '../src/lab/worker-api.js';

let runs: RunsDb | null = null;
const created: Partial<Record<E.BackendChoice, Promise<E.CreatedBackend>>> = {};
type Loaded = { key: string; model: PolicyModel; tok: LabTokenizer; recipe: Recipe; world: FvqaMini; tools: SearchTools; label: string; searchLabel: string };
let loaded: Loaded | null = null;
/** The tail of the calls that load or use the model: each waits for the one before (see `inTurn`). */
let queue: Promise<unknown> = Promise.resolve();

/** The worker's backend for `choice` (created once per choice: auto picks and measures, see engine/select.ts). */
async function getBackend(choice: E.BackendChoice = 'auto'): Promise<E.Backend> {
  created[choice] ??= E.createBackend({ choice });
  return (await created[choice]!).backend;
}

/** Runs `f` after every load and model call made before it, so that none swaps or disposes the model under another. */
function inTurn<T>(f: () => Promise<T>): Promise<T> {
  const run = queue.then(f);
  queue = run.catch(() => undefined);
  return run;
}

/** Runs `f` with the model `key` names (LoadedModel.key), loading it again first when another was loaded since. */
function withModel<T>(key: string, f: (m: Loaded) => Promise<T>): Promise<T> {
  return inTurn(async () => {
    if (loaded?.key !== key) {
      const { spec, opts } = parseKey(key);
      await loadModel(spec, opts);
    }
    return f(loaded!);
  });
}

type LoadOptions = { backend?: E.BackendChoice; proxyUrl?: string };

/** The spec and options a LoadedModel.key was made of. @throws Error when `key` is not one that load returned */
function parseKey(key: string): { spec: ModelSpec; opts: LoadOptions } {
  let parsed: { spec?: ModelSpec; opts?: LoadOptions } | undefined;
  try {
    parsed = JSON.parse(key);
  } catch {
    // Reported below with the key itself.
  }
  if (!parsed?.spec || !parsed.opts) throw new Error(`unknown model ${JSON.stringify(key.slice(0, 80))}: pass the key that load() returned`);
  return { spec: parsed.spec, opts: parsed.opts };
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The lab recipe inside an exported model ZIP, so that an import gets the run's world and tokenizer back. */
const RECIPE_FILE = 'mmsearch_lab_recipe.json';
/** Files an imported model keeps; others (README, chat_template.json, ...) are not needed to run it. */
const IMPORTED_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

/**
 * The files of an import by name: a ZIP's entries (under at most one top folder) or loose files.
 * @throws for a PEFT adapter (the lab imports full models) and when config.json or model.safetensors is missing
 */
async function importedFiles(picked: File[]): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const f of picked) {
    const bytes = new Uint8Array(await f.arrayBuffer());
    if (f.name.endsWith('.zip')) readZip(bytes, f.name).forEach((v, k) => files.set(k, v));
    else files.set(f.name, bytes);
  }
  const top = new Set([...files.keys()].map((k) => (k.includes('/') ? k.slice(0, k.indexOf('/') + 1) : '')));
  const prefix = top.size === 1 ? [...top][0] : '';
  const out = new Map([...files].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  if (out.has('adapter_config.json')) throw new Error('this is a PEFT adapter: import the full model instead (Storage -> "HF model" of the run), or merge the adapter into its base with PEFT first');
  for (const need of ['config.json', 'model.safetensors']) if (!out.has(need)) throw new Error(`the import has no ${need}: pick the model's ZIP, or its config.json and model.safetensors (found: ${[...out.keys()].join(', ') || 'nothing'})`);
  return out;
}

/** Loads `spec` as the worker's model (InferenceApi.load; call it through `inTurn`). */
async function loadModel(spec: ModelSpec, opts: LoadOptions): Promise<LoadedModel> {
  runs ??= await openRuns();
  const be = await getBackend(opts.backend);
  let recipe: Recipe, model: PolicyModel, label: string;
  if (spec.kind === 'run') {
    const run = await runs.getRun(spec.runId);
    if (!run) throw new Error(`run ${spec.runId} is not in storage`);
    const files = await runs.checkpointFiles(spec.runId);
    if (!files) throw new Error(`run ${spec.runId} has no checkpoint yet`);
    recipe = run.recipe;
    // The run's adapter is attached (and used) when its recipe trains LoRA.
    model = await loadCheckpointModel(recipe, files, be);
    label = run.importedFrom ? `${spec.runId} (imported)` : `${spec.runId} (${run.phase}, GRPO step ${run.grpoStep})`;
  } else if (spec.kind === 'shipped') {
    const shipped = await readShipped(spec.folder);
    recipe = shipped.recipe;
    model = await loadCheckpointModel(recipe, shipped.files, be);
    label = `shipped ${spec.folder.slice(SHIPPED_SOURCE.length)}`;
  } else if (spec.kind === 'hub') {
    recipe = fullRecipe();
    model = await loadFromHub(spec.ref, be, { cache: new IdbHubCache(), endpoint: spec.endpoint });
    label = spec.ref;
  } else {
    recipe = spec.recipe ?? fullRecipe();
    const cfg = JSON.parse(text(await readLabFile(`${recipe.model.source}/config.json`)));
    model = createModel(parseConfig(cfg, 'config.json'), be, recipe.seed);
    label = `fresh ${recipe.model.source} (untrained)`;
  }
  const src = spec.kind === 'hub' ? 'models/tiny-vlm' : recipe.model.source;
  const read = async (f: string) => JSON.parse(text(await readLabFile(`${src}/${f}`, runs ?? undefined)));
  const tok = loadTokenizer(await read('tokenizer.json'), await read('tokenizer_config.json'));
  // Chat and evaluation need the splits and the search corpus, not the warm start's drills (thousands of rendered
  // images: a minute of generation for the main recipe).
  const world = worldOf(recipe, undefined, { warmStartDrills: false });
  const { tools, label: searchLabel } = await searchTools(recipe, world, opts.proxyUrl);
  loaded?.model.dispose();
  const key = JSON.stringify({ spec, opts });
  loaded = { key, model, tok, recipe, world, tools, label, searchLabel };
  const loraModules = model.namedParameters().filter(([n]) => n.endsWith('.lora_A.weight')).length;
  return { key, label, parameters: model.parameters().reduce((n, p) => n + p.size, 0), search: searchLabel, loraModules };
}

/** The worker's API; src/lab/worker-api.ts documents each method. */
const api: InferenceApi = {
  load(spec: ModelSpec, opts: LoadOptions = {}): Promise<LoadedModel> {
    return inTurn(() => loadModel(spec, opts));
  },

  async exportModel(runId: string, opts: { adapter?: boolean; backend?: E.BackendChoice } = {}): Promise<Uint8Array> {
    runs ??= await openRuns();
    const run = await runs.getRun(runId);
    const ckpt = await runs.checkpointFiles(runId);
    if (!run || !ckpt) throw new Error(`run ${runId} has no checkpoint to export`);
    const src = run.recipe.model.source;
    const tok = { 'tokenizer.json': await readLabFile(`${src}/tokenizer.json`, runs), 'tokenizer_config.json': await readLabFile(`${src}/tokenizer_config.json`, runs) };
    const files = await exportModelFiles(run.recipe, ckpt, tok, await getBackend(opts.backend), { adapter: opts.adapter });
    files.set(RECIPE_FILE, new TextEncoder().encode(JSON.stringify(run.recipe, null, 2) + '\n'));
    const zip = writeZip(files);
    return Comlink.transfer(zip, [zip.buffer]);
  },

  async importModel(picked: File[], opts: { recipe: Recipe; backend?: E.BackendChoice }): Promise<RunRecord> {
    runs ??= await openRuns();
    const all = await importedFiles(picked);
    const from = picked.map((f) => f.name).join(', ');
    const base = all.has(RECIPE_FILE) ? loadStoredRecipe(text(all.get(RECIPE_FILE)!), `${from}: ${RECIPE_FILE}`) : opts.recipe;
    const probe = await loadPretrained(JSON.parse(text(all.get('config.json')!)), await openSafetensorsBuffer(all.get('model.safetensors')!, `${from}: model.safetensors`), await getBackend(opts.backend));
    probe.dispose();
    if (all.has('tokenizer.json') !== all.has('tokenizer_config.json')) throw new Error(`${from}: give both tokenizer.json and tokenizer_config.json, or neither (the recipe's tokenizer is used then)`);
    if (all.has('tokenizer.json')) loadTokenizer(JSON.parse(text(all.get('tokenizer.json')!)), JSON.parse(text(all.get('tokenizer_config.json')!)));
    const now = new Date().toISOString();
    const zip = picked.find((f) => f.name.endsWith('.zip'));
    const stem = (zip?.name.replace(/\.zip$/, '').replace(/[^A-Za-z0-9._-]/g, '_') || 'model').slice(0, 60);
    const id = `${stem}-imported-${now.replace(/[-:T]/g, '').slice(0, 14)}`;
    const recipe = { ...base, model: { ...base.model, source: `runs/${id}`, init: 'pretrained' as const, lora: null } };
    const run: RunRecord = { id, recipe, createdAt: now, updatedAt: now, status: 'done', phase: 'done', sftStep: 0, grpoStep: 0, checkpointBytes: 0, checkpointAt: null, importedFrom: from };
    await runs.putRun(run);
    await runs.checkpointStore(id).save(new Map([...all].filter(([k]) => IMPORTED_FILES.includes(k))));
    return (await runs.getRun(id))!;
  },

  samples(key: string, split: 'test' | 'train' = 'test', n = 12): Promise<ChatSample[]> {
    // Round-robin over the question kinds: creatures the policy knows and ones it must search for.
    return withModel(key, async ({ world }) => evalSubset(world.splits[split], n).map((r) => ({
      id: r.data_id, question: r.extra_info?.question ?? '', answer: r.reward_model.ground_truth, category: r.category,
      image: `data:image/png;base64,${bytesToBase64(r.images[0].bytes)}`,
    })));
  },

  chat(req: { model: string; image: Uint8Array; question: string; temperature: number; maxTurns: number; seed?: number; rag?: boolean }, onEvent: (e: ChatEvent) => void): Promise<{ turns: string[]; answer: string | null }> {
    return withModel(req.model, async (m) => {
      const { model, tok, tools } = m;
      const o = rolloutOptions(m);
      const { trajectories } = await rollout(model, tok, [chatRow(req.image, req.question)], tools, {
        ...o, sampling: { temperature: req.temperature, rng: new E.Rng(req.seed ?? 0) }, limits: { ...o.limits, maxTurns: req.maxTurns }, mode: req.rag ? 'rag' : 'on_demand',
        callbacks: {
          onTurn: (_r, index) => onEvent({ type: 'turn', index }),
          onToken: (_r, index, text) => onEvent({ type: 'token', index, text }),
          onCall: (_r, index, call) => onEvent({ type: 'call', index, call: call.kind === 'text_search' ? `text_search: ${call.query}` : call.kind }),
          onTool: (_r, info) => onEvent({ type: 'tool', parts: info.parts, error: info.error }),
        },
      });
      const t = trajectories[0];
      const last = t.calls.at(-1);
      const answer = last?.kind === 'answer' ? last.answer : null;
      onEvent({ type: 'done', answer });
      return { turns: t.turns, answer };
    });
  },

  sampleDecisions(req: { model: string; image: Uint8Array; question: string; expected?: string; samples: number; temperature?: number; seed?: number }, onProgress: (done: number, total: number) => void): Promise<SampledDecisions> {
    // Refused before the turn: a bad request must not wait for, or cause, a model load.
    if (!(Number.isInteger(req.samples) && req.samples >= 1 && req.samples <= 64)) return Promise.reject(new Error(`samples must be a whole number from 1 to 64, got ${req.samples}`));
    if (req.temperature !== undefined && !(req.temperature >= 0)) return Promise.reject(new Error(`temperature must be >= 0, got ${req.temperature}`));
    return withModel(req.model, async (m) => {
      const { model, tok, recipe, tools } = m;
      const temperature = req.temperature ?? recipe.grpo.temperature;
      const row = chatRow(req.image, req.question, req.expected);
      const { records } = await evaluate(model, tok, Array(req.samples).fill(row), tools, ['on_demand'], {
        ...rolloutOptions(m), batchSize: recipe.eval.batch_size, sampling: { temperature, rng: new E.Rng(req.seed ?? 0) },
      }, onProgress);
      const answers = new Map<string | null, SampledDecisions['answers'][number]>();
      for (const r of records) {
        const a = answers.get(r.answer) ?? { answer: r.answer, count: 0, correct: req.expected === undefined ? null : r.correct };
        a.count++;
        answers.set(r.answer, a);
      }
      return {
        samples: records.length, temperature,
        searched: records.filter((r) => r.searched).length,
        imageSearched: records.filter((r) => r.imageSearches > 0).length,
        textSearched: records.filter((r) => r.textSearches > 0).length,
        answers: [...answers.values()].sort((a, b) => b.count - a.count),
      };
    });
  },

  evaluate(req: { model: string; split: 'test' | 'heldout' | 'train'; modes: SearchMode[]; maxRows: number | null }, onProgress: (done: number, total: number) => void): Promise<{ label: string; summaries: ModeSummary[]; table: string }> {
    return withModel(req.model, async (m) => {
      const { model, tok, recipe, world, tools, label } = m;
      // A few rows cover every question kind (the first rows of a split are all about familiar creatures).
      const rows = req.maxRows ? evalSubset(world.splits[req.split], req.maxRows) : world.splits[req.split];
      const r = await evaluate(model, tok, rows, tools, req.modes, { ...rolloutOptions(m), batchSize: recipe.eval.batch_size }, onProgress);
      return { label, summaries: r.summaries, table: table1(r.summaries) };
    });
  },
};

/** A loaded recipe's agent-loop settings for its policy (recipeRolloutOptions). */
function rolloutOptions({ model, recipe }: Loaded) {
  return recipeRolloutOptions(recipe, 'vision' in model.config ? model.config.vision.image_size : 0);
}

/**
 * The row a chat question becomes: the protocol's first user turn with one image; `expected` (a
 * dataset answer) is the ground truth its trajectories are scored against (else none is right).
 */
function chatRow(image: Uint8Array, question: string, expected = ''): FvqaRow {
  return {
    data_id: 'chat', data_source: 'chat', prompt: [{ role: 'user', content: firstUserTurn(question) }], images: [{ bytes: image, path: null }],
    reward_model: { ground_truth: expected, candidate_answers: [], style: 'rule' }, category: null, image_urls: null, extra_info: null,
  };
}

Comlink.expose(api);
