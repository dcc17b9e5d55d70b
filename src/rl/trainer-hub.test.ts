/**
 * Training a hub model on FVQA parquet, everything over real HTTP from a local hub (src/hub/local-hub.ts):
 * a SmolVLM-shaped repo `hf:fixtures/tiny-smolvlm` (Idefics3 with Hugging Face tensor names from the
 * fixture generator, BF16 as SmolVLM ships, tiny-vlm's tokenizer) trained with LoRA on FVQA-mini rows
 * written as FVQA parquet: train from a hub dataset (`hf:fixtures/fvqa-mini/train.parquet`, through the
 * download cache), test by URL (HTTP Range). One GRPO step on the CPU backend: finite metrics, a
 * checkpoint, changed adapters, untouched base weights, and a resumed setup that downloads nothing.
 *
 * The fixture's text model is a bigram model by construction (attention and MLP outputs are zero, so
 * the logits depend on the current token only): it writes `<reason></reason><answer> X</answer>` with
 * X one of two words at even odds. Only one is the rows' answer, so rewards within a group differ and
 * GRPO has a gradient: after one step, greedy decoding picks the rewarded word.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { writeParquetFile } from '../data/node-io.js';
import { generateFvqaMini, type FvqaMini } from '../data/fvqa-mini.js';
import type { FvqaRow } from '../data/types.js';
import * as E from '../engine/index.js';
import { FsHubCache } from '../storage/fs-hub-cache.js';
import { startLocalHub, type LocalHub } from '../hub/local-hub.js';
import { idefics3Tensors, initTensor, type DecoderConfig, type VisionConfig } from '../io/fixtures.js';
import { f32ToBf16 } from '../engine/dtype.js';
import { openSafetensorsBuffer, serializeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { loadTokenizer, type LabTokenizer } from '../models/tokenizer.js';
import { LocalSearchIndex } from '../search/local-index.js';
import { FsCheckpointStore } from '../storage/fs-checkpoint-store.js';
import { parseRecipe, type Recipe } from './recipe.js';
import { Trainer, type TrainEvent, type TrainerEnv } from './trainer.js';

const root = new URL('../../', import.meta.url).pathname;
const tinyFile = (f: string) => readFileSync(join(root, 'models/tiny-vlm', f));
const tok: LabTokenizer = loadTokenizer(JSON.parse(tinyFile('tokenizer.json').toString()), JSON.parse(tinyFile('tokenizer_config.json').toString()));
/** The rewarded answer and the other one: single tokens of tiny-vlm's vocabulary. */
const RIGHT = ' creature', WRONG = ' visual';
const MODEL = 'hf:fixtures/tiny-smolvlm';

let dir: string;
let hub: LocalHub;
let world: FvqaMini;
let modelBytes: Uint8Array;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(dir, 'run-'));
  dirs.push(d);
  return d;
};

/** Writes `bytes` at a hub path (`<org>/<name>/resolve/main/<file>`, datasets under `datasets/`). */
function put(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(join(dir, 'hub', path)), { recursive: true });
  writeFileSync(join(dir, 'hub', path), bytes);
}

/** The SmolVLM-shaped repo: micro Idefics3 config, tiny-vlm tokenizer files, BF16 weights (see the file comment). */
function writeModelRepo(): void {
  const tiny = JSON.parse(tinyFile('config.json').toString());
  const vision: VisionConfig = { ...tiny.vision_config, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 };
  const text: DecoderConfig = { ...tiny.text_config, hidden_size: 48, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: false };
  const config = { ...tiny, tie_word_embeddings: false, torch_dtype: 'bfloat16', vision_config: vision, text_config: text };
  const specs = idefics3Tensors(vision, text, config.scale_factor);
  const values = new Map(specs.map((s) => [s.name, initTensor(s, 0)]));
  const D = text.hidden_size, V = text.vocab_size;
  const t = 'model.text_model.';
  for (const n of [`${t}layers.0.self_attn.o_proj.weight`, `${t}layers.0.mlp.down_proj.weight`]) values.get(n)!.fill(0);
  values.get(`${t}norm.weight`)!.fill(1);
  // Token class k has embedding e_k; lm_head column k holds the logits of the token after class k.
  const id = (s: string) => {
    const ids = tok.encode(s);
    expect(ids, s).toHaveLength(1);
    return ids[0];
  };
  const cls = new Map([[id('<reason>'), 1], [id('</reason>'), 2], [id('<answer>'), 3], [id(RIGHT), 4], [id(WRONG), 4], [id('</answer>'), 5]]);
  const embed = values.get(`${t}embed_tokens.weight`)!.fill(0);
  for (let v = 0; v < V; v++) embed[v * D + (cls.get(v) ?? 0)] = 1;
  const head = values.get('lm_head.weight')!.fill(0);
  const next: [number, string][] = [[0, '<reason>'], [1, '</reason>'], [2, '<answer>'], [3, RIGHT], [3, WRONG], [4, '</answer>'], [5, '<end_of_utterance>']];
  for (const [k, s] of next) head[id(s) * D + k] = 3;
  // The two answers differ along e_6, which the hidden state lacks until training moves it there.
  head[id(RIGHT) * D + 6] = 1;
  head[id(WRONG) * D + 6] = -1;
  const tensors = new Map<string, TensorToWrite>(specs.map((s) => [s.name, { dtype: 'BF16', shape: s.shape, data: f32ToBf16(values.get(s.name)!) }]));
  modelBytes = serializeSafetensors(tensors, { format: 'pt' });
  const repo = 'fixtures/tiny-smolvlm/resolve/main/';
  put(`${repo}config.json`, new TextEncoder().encode(JSON.stringify(config)));
  put(`${repo}tokenizer.json`, tinyFile('tokenizer.json'));
  put(`${repo}tokenizer_config.json`, tinyFile('tokenizer_config.json'));
  put(`${repo}model.safetensors`, modelBytes);
}

/** FVQA-mini rows whose answer is RIGHT, as FVQA parquet at `path`. */
async function writeRows(path: string, rows: FvqaRow[]): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  await writeParquetFile(path, rows.map((r) => ({ ...r, reward_model: { ...r.reward_model, ground_truth: RIGHT.trim(), candidate_answers: [] } })));
}

const DATA = 'datasets/fixtures/fvqa-mini/resolve/main';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mmsearch-train-hub-'));
  writeModelRepo();
  world = generateFvqaMini({ seed: 1, entities: 16, heldOutEntities: 2, testSize: 8 });
  await writeRows(join(dir, 'hub', DATA, 'train.parquet'), world.splits.train);
  await writeRows(join(dir, 'hub', DATA, 'test.parquet'), world.splits.test);
  hub = await startLocalHub(join(dir, 'hub'));
});
afterAll(async () => {
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

function recipe(): Recipe {
  const base = JSON.parse(readFileSync(join(root, 'recipes/smolvlm-256m-lora.json'), 'utf8'));
  return parseRecipe({
    ...base,
    name: 'smolvlm-hub-ci',
    model: { ...base.model, source: MODEL, compact_instructions: true },
    data: { source: 'parquet', train: 'hf:fixtures/fvqa-mini/train.parquet', test: `${hub.url}/${DATA}/test.parquet` },
    grpo: { ...base.grpo, learning_rate: 0.01, num_generations: 4, per_device_train_batch_size: 8, gradient_accumulation_steps: 1, generation_batch_size: null, max_steps: 1, search: { ...base.grpo.search, results_per_search: 1 } },
    rollout: { max_turn_tokens: 8 },
    eval: { split: 'test', max_rows: 4, modes: ['on_demand'], batch_size: 4 },
    checkpoint_steps: 1,
  });
}

const env = async (store: string, cache: string, onEvent?: TrainerEnv['onEvent']): Promise<TrainerEnv> => ({
  backend: new E.CpuBackend(),
  readFile: async (p) => new Uint8Array(readFileSync(p)),
  store: new FsCheckpointStore(store),
  proxyTools: await LocalSearchIndex.build(world.corpus),
  hub: { cache: new FsHubCache(cache), endpoint: hub.url },
  onEvent,
});

test('one GRPO step of a hub model with LoRA on FVQA parquet from the hub; resuming downloads nothing', async () => {
  const events: TrainEvent[] = [];
  const [store, cache] = [tmp(), tmp()];
  const t = new Trainer(recipe(), await env(store, cache, (e) => events.push(e)));
  await t.setup();
  const downloads = events.filter((e) => e.type === 'progress' && e.phase === 'download');
  expect(downloads.length).toBeGreaterThan(0);
  expect(downloads.at(-1)).toMatchObject({ done: (downloads.at(-1) as { total: number }).total });
  const logs = events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
  expect(logs).toEqual(expect.arrayContaining([expect.stringMatching(/^downloading fixtures\/tiny-smolvlm@main\/model\.safetensors/), expect.stringMatching(/^downloading datasets\/fixtures\/fvqa-mini@main\/train\.parquet/)]));
  expect(t.data.splits.train.map((r) => r.data_id)).toEqual(world.splits.train.map((r) => r.data_id));
  expect(t.data.splits.test).toHaveLength(world.splits.test.length);
  const testGets = hub.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/test.parquet'));
  expect(testGets.length).toBeGreaterThan(0);
  expect(testGets.every((r) => r.range !== undefined)).toBe(true);

  // Greedy decoding of the untrained model does not pick the rewarded answer (the two tie).
  const before = new Trainer(recipe(), await env(tmp(), cache));
  await before.setup();
  before.state.phase = 'eval';
  await before.run();
  const answers = (x: Trainer) => x.evalResult!.records.map((r) => r.transcript[0].text);
  expect(answers(before)).not.toContain(`<reason></reason><answer>${RIGHT}</answer>`);
  before.model.dispose();

  await t.run();
  expect(t.state).toMatchObject({ phase: 'done', grpoStep: 1 });
  const grpo = events.flatMap((e) => (e.type === 'metrics' ? [e] : []));
  expect(grpo.map((m) => m.phase)).toEqual(['grpo']);
  for (const [k, v] of Object.entries(grpo[0].metrics)) if (!k.startsWith('search_ratio/')) expect(Number.isFinite(v), `${k} = ${v}`).toBe(true);
  expect(grpo[0].metrics.reward_std).toBeGreaterThan(0); // the bigram answers differ within groups

  // Base weights are the file's; the adapters that the reward reaches moved from their zero start.
  const file = await openSafetensorsBuffer(modelBytes);
  for (const [name, p] of t.model.namedParameters()) {
    const now = Float32Array.from((await p.data()) as ArrayLike<number>);
    if (!/\.lora_[AB]\./.test(name)) expect(now, name).toEqual(await file.readF32(name));
    else if (/(o_proj|down_proj)\.lora_B/.test(name)) expect(now.some((x) => x !== 0), name).toBe(true);
  }
  // Evaluation ran on the test file's rows, and greedy decoding now gives the rewarded answer.
  const testIds = new Set(world.splits.test.map((r) => r.data_id));
  expect(t.evalResult!.records.map((r) => testIds.has(r.data_id))).toEqual([true, true, true, true]);
  expect(answers(t)).toEqual(Array(4).fill(`<reason></reason><answer>${RIGHT}</answer>`));

  // The checkpoint holds the trained adapter; a new trainer resumes from it with every hub file cached.
  const requests = hub.requests.length;
  const again = new Trainer(recipe(), await env(store, cache));
  await again.setup();
  expect(again.state).toEqual(t.state);
  const trained = new Map(t.model.namedParameters());
  for (const [name, p] of again.model.namedParameters()) expect(Array.from(await p.data()), name).toEqual(Array.from(await trained.get(name)!.data()));
  const gets = hub.requests.slice(requests).filter((r) => r.method === 'GET').map((r) => r.path);
  expect(gets.every((p) => p.endsWith('/test.parquet'))).toBe(true); // the URL is read by ranges, not cached
  t.model.dispose();
  again.model.dispose();
}, 120_000);

test('bad data rows, a missing hub and SFT on parquet are refused with the file, row or field named', async () => {
  const bad = join(dir, 'bad.parquet');
  await writeParquetFile(bad, world.splits.test.slice(0, 3).map((r, i) => (i === 1 ? { ...r, reward_model: { ...r.reward_model, ground_truth: ' ' } } : r)));
  const r = recipe();
  const withBadTest = { ...r, data: { ...r.data, test: bad } };
  await expect(new Trainer(withBadTest, await env(tmp(), tmp())).setup()).rejects.toThrow(`data.test ${bad}: row 1, field reward_model.ground_truth: empty answer`);
  await expect(new Trainer(r, { ...(await env(tmp(), tmp())), hub: undefined }).setup()).rejects.toThrow(`model.source ${MODEL}: hub files need a download cache`);
  expect(() => parseRecipe({ ...r, sft: {} })).toThrow(/sft: must be null with data\.source parquet/);
  expect(() => parseRecipe({ ...r, search: { backend: 'local' } })).toThrow(/search\.backend: local searches the generated FVQA-mini corpus/);
}, 60_000);
