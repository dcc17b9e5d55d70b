/**
 * The inference worker: owns its GPUDevice; loads a policy (a fresh preset model, a stored run's
 * checkpoint, or a hub model), then chats with the tool protocol, streaming tokens, tool calls and
 * results back, or runs the three-mode evaluation. API through comlink: {@link InferenceApi}.
 */
import * as Comlink from 'comlink';
import * as E from '../src/engine/index.js';
import { firstUserTurn } from '../src/data/protocol.js';
import type { FvqaMini } from '../src/data/fvqa-mini.js';
import { IdbHubCache } from '../src/hub/idb-cache.js';
import { openSafetensorsBuffer } from '../src/io/safetensors.js';
import { createModel, loadPretrained, type PolicyModel } from '../src/models/checkpoint.js';
import { parseConfig } from '../src/models/config.js';
import { DecodeSession, type Segment } from '../src/models/generate.js';
import { loadFromHub } from '../src/models/hub.js';
import { loadTokenizer, type LabTokenizer } from '../src/models/tokenizer.js';
import { searchLimits } from '../src/rl/config.js';
import { dataUrlBytes, imagePixels, TurnEncoder } from '../src/rl/conversation.js';
import { evaluate, table1, type ModeSummary } from '../src/rl/evaluate.js';
import type { Recipe } from '../src/rl/recipe.js';
import { RAG_FIRST_TURN, type SearchMode } from '../src/rl/rollout.js';
import { emptyToolMetrics, parseToolCall, runToolCall, SearchBudget, type TurnPart } from '../src/search/protocol.js';
import { bytesToBase64 } from '../src/search/image.js';
import type { SearchTools } from '../src/search/types.js';
import { quickRecipe, readLabFile, searchTools, worldOf } from '../src/ui/lab-env.js';
import { openRuns, type RunsDb } from '../src/ui/runs-store.js';

/** Which policy to load. */
export type ModelSpec = { kind: 'fresh'; recipe?: Recipe } | { kind: 'run'; runId: string } | { kind: 'hub'; ref: string; endpoint?: string };

/** What a chat streams to the page. */
export type ChatEvent =
  | { type: 'turn'; index: number }
  | { type: 'token'; index: number; text: string }
  | { type: 'call'; index: number; call: string }
  | { type: 'tool'; parts: TurnPart[]; error: boolean }
  | { type: 'done'; answer: string | null };

/** A dataset row offered to the chat as a starting point. */
export interface ChatSample {
  id: string;
  question: string;
  answer: string;
  category: string | null;
  image: string;
}

const CLOSING = /(<\/answer>|<\/search>|<\/text_search>)\s*$/;

let runs: RunsDb | null = null;
let backend: E.Backend | null = null;
let loaded: { model: PolicyModel; tok: LabTokenizer; recipe: Recipe; world: FvqaMini; tools: SearchTools; label: string; searchLabel: string } | null = null;

async function getBackend(cpu: boolean): Promise<E.Backend> {
  if (cpu) return new E.CpuBackend();
  if (backend) return backend;
  const { backend: b, warning } = await E.createBackend();
  if (warning) throw new Error(`WebGPU is not available in the worker: ${warning}`);
  return (backend = b);
}

function need() {
  if (!loaded) throw new Error('load a model first');
  return loaded;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

const api = {
  /**
   * Loads a policy with the tokenizer, world and search tools of its recipe (the quick demo's for
   * hub models). `proxyUrl` routes searches through the proxy instead of the in-worker engine.
   */
  async load(spec: ModelSpec, opts: { cpu?: boolean; proxyUrl?: string } = {}): Promise<{ label: string; parameters: number; search: string }> {
    runs ??= await openRuns();
    const be = await getBackend(!!opts.cpu);
    let recipe: Recipe, model: PolicyModel, label: string;
    if (spec.kind === 'run') {
      const run = await runs.getRun(spec.runId);
      if (!run) throw new Error(`run ${spec.runId} is not in storage`);
      const files = await runs.checkpointFiles(spec.runId);
      if (!files) throw new Error(`run ${spec.runId} has no checkpoint yet`);
      recipe = run.recipe;
      model = await loadPretrained(JSON.parse(text(files.get('config.json')!)), await openSafetensorsBuffer(files.get('model.safetensors')!, `${spec.runId} model.safetensors`), be);
      label = `${spec.runId} (${run.phase}, GRPO step ${run.grpoStep})`;
    } else if (spec.kind === 'hub') {
      recipe = quickRecipe();
      model = await loadFromHub(spec.ref, be, { cache: new IdbHubCache(), endpoint: spec.endpoint });
      label = spec.ref;
    } else {
      recipe = spec.recipe ?? quickRecipe();
      const cfg = JSON.parse(text(await readLabFile(`${recipe.model.source}/config.json`)));
      model = createModel(parseConfig(cfg, 'config.json'), be, recipe.seed);
      label = `fresh ${recipe.model.source} (untrained)`;
    }
    const src = spec.kind === 'hub' ? 'models/tiny-vlm' : recipe.model.source;
    const read = async (f: string) => JSON.parse(text(await readLabFile(`${src}/${f}`, runs ?? undefined)));
    const tok = loadTokenizer(await read('tokenizer.json'), await read('tokenizer_config.json'));
    const world = worldOf(recipe);
    const { tools, label: searchLabel } = await searchTools(recipe, world, opts.proxyUrl);
    loaded?.model.dispose();
    loaded = { model, tok, recipe, world, tools, label, searchLabel };
    return { label, parameters: model.parameters().reduce((n, p) => n + p.size, 0), search: searchLabel };
  },

  /** Rows of the loaded recipe's world to chat about. */
  samples(split: 'test' | 'train' = 'test', n = 12): ChatSample[] {
    const { world } = need();
    return world.splits[split].slice(0, n).map((r) => ({
      id: r.data_id, question: r.extra_info?.question ?? '', answer: r.reward_model.ground_truth, category: r.category,
      image: `data:image/png;base64,${bytesToBase64(r.images[0].bytes)}`,
    }));
  },

  /**
   * One conversation: the question with its image, then assistant turns streamed token by token;
   * searches run through the tools within the recipe's limits and their results are inserted. With
   * `rag`, the first turn is the RAG workflow's scripted image search (Table 1's second mode).
   */
  async chat(req: { image: Uint8Array; question: string; temperature: number; maxTurns: number; seed?: number; rag?: boolean }, onEvent: (e: ChatEvent) => void): Promise<{ turns: string[]; answer: string | null }> {
    const { model, tok, recipe, tools } = need();
    const imageSeqLen = 'imageSeqLen' in model ? model.imageSeqLen : 0;
    const imageSize = 'vision' in model.config ? model.config.vision.image_size : 0;
    const enc = new TurnEncoder(tok, imageSeqLen, recipe.model.compact_instructions);
    const limits = { ...searchLimits(recipe.grpo), maxTurns: req.maxTurns };
    const budget = new SearchBudget(limits);
    const be = model.backend;
    const owned: E.Tensor[] = [];
    const segment = (ids: number[], imgs: Uint8Array[]): Segment => {
      if (!imgs.length || !imageSeqLen) return { ids };
      const px = imgs.map((b) => imagePixels(b, imageSize));
      const all = new Float32Array(px.reduce((n, p) => n + p.length, 0));
      px.reduce((at, p) => (all.set(p, at), at + p.length), 0);
      const t = E.fromArray(be, all, [imgs.length, 3, imageSize, imageSize]).keep();
      owned.push(t);
      return { ids, images: t };
    };
    const prompt = enc.prompt(firstUserTurn(req.question));
    const maxLength = Math.min(model.text.max_position_embeddings, prompt.length + 1600);
    const session = new DecodeSession(model, 1, maxLength);
    const { image, fakeTokenAroundImage, globalImg, imStart, imEnd, endOfUtterance } = tok.specialIds;
    const sampling = { temperature: req.temperature, rng: new E.Rng(req.seed ?? 0), suppressTokens: [image, fakeTokenAroundImage, globalImg, imStart, imEnd] };
    const turns: string[] = [];
    let answer: string | null = null;
    /** Samples one assistant turn, streaming its text as it grows. */
    const generateTurn = async (turn: number): Promise<string> => {
      let shown = '';
      const room = maxLength - session.history[0].length - 1;
      const gen = await session.generate({
        maxNewTokens: Math.max(1, Math.min(recipe.rollout.max_turn_tokens, room)), sampling, eosTokenIds: [endOfUtterance],
        stop: (_r, toks) => {
          const now = tok.decode(toks.filter((id) => id !== endOfUtterance)).replace(/^ /, '');
          if (now.length > shown.length) onEvent({ type: 'token', index: turn, text: now.slice(shown.length) });
          shown = now;
          return CLOSING.test(tok.decode(toks.slice(-4)));
        },
      });
      return tok.decode(gen.tokens[0].filter((id) => id !== endOfUtterance)).replace(/^ /, '');
    };
    try {
      await session.append([segment(prompt, [req.image])]);
      for (let turn = 0; turn < limits.maxTurns; turn++) {
        onEvent({ type: 'turn', index: turn });
        let turnText: string;
        if (req.rag && turn === 0) {
          await session.append([{ ids: enc.assistant(RAG_FIRST_TURN) }]);
          onEvent({ type: 'token', index: turn, text: RAG_FIRST_TURN });
          turnText = RAG_FIRST_TURN;
        } else turnText = await generateTurn(turn);
        turns.push(turnText);
        const call = parseToolCall(turnText);
        onEvent({ type: 'call', index: turn, call: call.kind === 'text_search' ? `text_search: ${call.query}` : call.kind });
        if (call.kind === 'answer') answer = call.answer;
        if (!CLOSING.test(turnText) || budget.decide(call, turn) !== 'execute' || (call.kind !== 'image_search' && call.kind !== 'text_search')) break;
        const info = await runToolCall(tools, call, { question: req.question, image: { bytes: req.image } }, emptyToolMetrics(), { k: recipe.grpo.search.results_per_search, withImages: imageSeqLen > 0 });
        onEvent({ type: 'tool', parts: info.parts, error: info.error });
        const ids = enc.userTurn(info.text);
        if (session.history[0].length + ids.length + 8 >= maxLength) break;
        await session.append([segment(ids, info.images.map(dataUrlBytes))]);
      }
    } finally {
      session.dispose();
      owned.forEach((t) => t.dispose());
    }
    onEvent({ type: 'done', answer });
    return { turns, answer };
  },

  /** The three-mode evaluation (greedy) on a split of the loaded recipe's world. */
  async evaluate(req: { split: 'test' | 'heldout' | 'train'; modes: SearchMode[]; maxRows: number | null }, onProgress: (done: number, total: number) => void): Promise<{ label: string; summaries: ModeSummary[]; table: string }> {
    const { model, tok, recipe, world, tools, label } = need();
    const rows = req.maxRows ? world.splits[req.split].slice(0, req.maxRows) : world.splits[req.split];
    const g = recipe.grpo;
    const imageSize = 'vision' in model.config ? model.config.vision.image_size : 0;
    const r = await evaluate(model, tok, rows, tools, req.modes, {
      limits: searchLimits(g), maxTurnTokens: recipe.rollout.max_turn_tokens, maxCompletionLength: g.max_completion_length, resultsPerSearch: g.search.results_per_search,
      imageSize, withThumbnails: true, compactInstructions: recipe.model.compact_instructions, batchSize: recipe.eval.batch_size,
    }, onProgress);
    return { label, summaries: r.summaries, table: table1(r.summaries) };
  },
};

export type InferenceApi = typeof api;
Comlink.expose(api);
