/**
 * The lab's one agent loop: multi-turn search rollouts (MMSearch-R1 Sec. 3.1; veRL's multi-turn vLLM
 * rollout in the authors' code). GRPO's rollouts, the evaluation and Chat (a batch of one, streamed
 * through {@link RolloutCallbacks}) all run it. For a batch of prompts, every trajectory is decoded turn
 * by turn through the batched KV-cache session; a turn ends when its action tag closes it (or at EOS or
 * the turn budget); a search allowed by the per-trajectory budget runs through the search tools (all
 * trajectories of the batch at once, concurrently), and its results come back as an inserted user turn
 * (tool_mask 0, thumbnails as images) appended to the live cache; at most `max_turns` assistant turns.
 */
import * as E from '../engine/index.js';
import { IMAGE_PLACEHOLDER, IMAGE_SEARCH_ACTION, questionFromUserTurn } from '../protocol/prompts.js';
import type { FvqaRow } from '../data/types.js';
import { DecodeSession, type SamplingOptions, type Segment } from '../models/generate.js';
import type { CausalModel } from '../models/llama.js';
import type { LabTokenizer } from '../models/tokenizer.js';
import { emptyToolMetrics, parseToolCall, SearchBudget, type InformationTurn, type SearchLimits, type ToolCall, type ToolMetrics } from '../protocol/tools.js';
import { runToolCall } from '../search/run-tool.js';
import type { SearchTools } from '../search/types.js';
import { dataUrlBytes, imagePixels, TurnEncoder } from './conversation.js';

/**
 * One sampled trajectory: one flat token sequence with its two masks and what happened in it. The masks
 * stay apart up to the loss, as TRL's GRPOTrainer keeps them (the loss trains on their product).
 */
export interface Trajectory {
  row: FvqaRow;
  question: string;
  /** Prompt, assistant turns and inserted user turns, concatenated. */
  tokens: number[];
  /** TRL `completion_mask`: 1 on every token after the prompt (the policy's turns and the inserted ones), 0 on the prompt. */
  completion_mask: number[];
  /** TRL `tool_mask`: 0 on tokens the environment inserted (search results with their follow-up user turn, the RAG workflow's actions), 1 elsewhere. */
  tool_mask: number[];
  /** TRL `sampling_per_token_logps`: the sampler's log-probability of each generated token (0 elsewhere); diagnostics only (the loss recomputes). */
  sampling_per_token_logps: number[];
  /** Tokens of the prompt (the completion starts after it). */
  promptLength: number;
  /** Images in the order of their `<image>` runs: the question image, then thumbnails (PNG/JPEG bytes). */
  images: Uint8Array[];
  /** Assistant turns as decoded text (leading space of the template removed). */
  turns: string[];
  /** The action that closed each turn. */
  calls: ToolCall[];
  /** The inserted user turns after executed searches. */
  toolTurns: InformationTurn[];
  /** True when the completion budget ended the trajectory before an answer. */
  truncated: boolean;
}

/**
 * How tools are used: the policy decides (on-demand), never (direct answer: the search tags are suppressed while
 * it writes, see {@link searchTags}, so it answers from memory), or the RAG workflow (paper Table 1's
 * baseline): after the policy's reasoning, turn 1's image search and turn 2's `<text_search>` tag are
 * inserted (see {@link ragAction}), the policy writes the query; turn 3 answers.
 */
export type SearchMode = 'on_demand' | 'direct' | 'rag';

export interface RolloutOptions {
  sampling: SamplingOptions;
  limits: SearchLimits;
  /** Tokens one assistant turn may generate. */
  maxTurnTokens: number;
  /** Tokens of all turns and inserted results together (TRL max_completion_length). */
  maxCompletionLength: number;
  resultsPerSearch: number;
  /** Model image_size (pixels). */
  imageSize: number;
  /** Insert thumbnails as images (models that take images in tool results). */
  withThumbnails: boolean;
  /** Replace the paper's instruction texts by short stand-ins (see TurnEncoder). */
  compactInstructions: boolean;
  mode?: SearchMode;
  /** Live reports of the loop (Chat streams them); training and evaluation pass none. */
  callbacks?: RolloutCallbacks;
  /**
   * TRL max_prompt_length: a longer prompt keeps its last this-many tokens (see {@link truncatePromptLeft});
   * undefined = no limit.
   */
  maxPromptLength?: number;
  /** The tools a row's searches run on, where they are not `tools` for every row (FVQA-mini's drill creatures: RunEnvironment.rowTools). */
  rowTools?: (row: FvqaRow) => Promise<SearchTools>;
}

/** What {@link rollout} reports while it runs, per trajectory `r` of the batch. */
export interface RolloutCallbacks {
  /** Assistant turn `turn` of trajectory r starts. */
  onTurn?(r: number, turn: number): void;
  /** The turn's text grew by `text` (one sampled or inserted token, decoded; the template's leading space dropped). */
  onToken?(r: number, turn: number, text: string): void;
  /** The turn closed with `call` (kind 'none' when no action tag closed it). */
  onCall?(r: number, turn: number, call: ToolCall): void;
  /** A search ran and its results were inserted as the next user turn. */
  onTool?(r: number, info: InformationTurn): void;
}

/** Counters of one rollout batch (for metrics). */
export interface RolloutStats extends ToolMetrics {
  /** Wall time, ms: generation (incl. appending inserted turns) and tool calls. */
  generateMs: number;
  searchMs: number;
  generatedTokens: number;
  /** Prompts cut to maxPromptLength. */
  truncatedPrompts: number;
}

/**
 * TRL's `max_prompt_length`: a prompt longer than `maxPromptLength` tokens keeps its last
 * `maxPromptLength` tokens (left truncation, `prompt_ids[:, -max_prompt_length:]` in TRL's
 * GRPOTrainer). Image tokens are counted like any token. TRL (≥ 0.20) keeps image tokens through the
 * cut (`truncate_with_protected_tokens`) and drops text around them, leaving an image run without its
 * template tokens; here a cut that would drop any `protectedIds` token (the image's `<image>` run and the
 * tokens around it) is an error instead. In the lab's prompts the image comes after the instructions,
 * so a moderate limit cuts instruction text only.
 * @param tokens the prompt [T]
 * @returns the prompt itself when it fits, else its last `maxPromptLength` tokens (a new array)
 * @throws Error naming grpo.max_prompt_length, the prompt length and the smallest limit that keeps the images
 */
export function truncatePromptLeft(tokens: readonly number[], maxPromptLength: number, protectedIds: ReadonlySet<number>): number[] {
  if (!Number.isInteger(maxPromptLength) || maxPromptLength < 1) throw new Error(`grpo.max_prompt_length must be a positive integer, got ${maxPromptLength}`);
  if (tokens.length <= maxPromptLength) return [...tokens];
  const cut = tokens.length - maxPromptLength;
  const first = tokens.findIndex((id) => protectedIds.has(id));
  if (first >= 0 && first < cut)
    throw new Error(
      `grpo.max_prompt_length ${maxPromptLength}: the prompt has ${tokens.length} tokens and its image starts at token ${first}, so left truncation would cut image tokens; ` +
        `raise max_prompt_length to at least ${tokens.length - first} (or shorten the instructions, e.g. model.compact_instructions)`,
    );
  return tokens.slice(cut);
}

/** A turn closed by its action tag (regex anchored at the end of the turn, as the authors' parser). */
export const CLOSING = /(<\/answer>|<\/search>|<\/text_search>)\s*$/;
/** Reasoning closed: where the RAG workflow inserts its action. */
export const REASON_CLOSED = /<\/reason>\s*$/;

/**
 * The action the RAG workflow imposes in `turn` (paper Table 1's baseline: image search, then text
 * search, then an answer), or null for a free turn. The policy writes its reasoning; then `insert` is
 * inserted (loss mask 0); with `query`, the policy writes the text-search query after it.
 */
export function ragAction(turn: number): { insert: string; query: boolean } | null {
  return turn === 0 ? { insert: IMAGE_SEARCH_ACTION, query: false } : turn === 1 ? { insert: '<text_search>', query: true } : null;
}

/** What the RAG workflow inserts after the policy's `reasoning` of a turn: the action, after `</reason>` when the policy left it open. */
export function workflowInsert(reasoning: string, forced: { insert: string }): string {
  return REASON_CLOSED.test(reasoning) ? forced.insert : `</reason>${forced.insert}`;
}

/**
 * Protocol tags a forced text-search query may not contain (suppressed while the policy writes it), so
 * that it can only end with </text_search>. Only tags that are single tokens can be suppressed (all
 * in tiny-vlm; in SmolVLM's vocabulary none, so there the policy may still close the turn otherwise).
 */
export function queryBlockedTags(tok: LabTokenizer): number[] {
  return Object.entries(tok.tagIds).filter(([tag]) => tag !== '</text_search>').map(([, id]) => id!);
}

/**
 * The search action tags (`<search>`, `<text_search>`), suppressed in the direct-answer mode so that a policy
 * that would search must answer from memory instead (the paper prompts its direct baseline without tools).
 * Single-token tags only, as {@link queryBlockedTags}.
 */
export function searchTags(tok: LabTokenizer): number[] {
  return (['<search>', '<text_search>'] as const).map((t) => tok.tagIds[t]).filter((id): id is number => id !== undefined);
}

/**
 * Samples one trajectory per row (repeat rows G times for GRPO groups) with the model's KV-cache
 * session and the search tools. Tool failures become error turns (counted), never exceptions.
 * Prompts longer than `o.maxPromptLength` are left-truncated first ({@link truncatePromptLeft}); the
 * trajectory's promptLength is then maxPromptLength.
 * @throws when a prompt does not fit the model's position table, an image cannot be decoded, or
 *   truncating a prompt to maxPromptLength would cut image tokens
 */
export async function rollout(model: CausalModel, tok: LabTokenizer, rows: readonly FvqaRow[], tools: SearchTools, o: RolloutOptions): Promise<{ trajectories: Trajectory[]; stats: RolloutStats }> {
  const mode = o.mode ?? 'on_demand';
  const imageSeqLen = 'imageSeqLen' in model ? (model as unknown as { imageSeqLen: number }).imageSeqLen : 0;
  const enc = new TurnEncoder(tok, imageSeqLen, o.compactInstructions);
  const B = rows.length;
  const stats: RolloutStats = { ...emptyToolMetrics(), generateMs: 0, searchMs: 0, generatedTokens: 0, truncatedPrompts: 0 };
  const { image, fakeTokenAroundImage, globalImg, imStart, imEnd } = tok.specialIds;
  const imageIds = new Set([image, fakeTokenAroundImage, globalImg]);
  const trajs: Trajectory[] = rows.map((row) => {
    const first = row.prompt[0].content;
    const full = enc.prompt(first);
    const tokens = o.maxPromptLength === undefined ? full : truncatePromptLeft(full, o.maxPromptLength, imageIds);
    if (tokens.length < full.length) stats.truncatedPrompts++;
    // The first user turn's images only (a warm-start row also lists its thumbnails).
    const promptImages = row.images.slice(0, first.split(IMAGE_PLACEHOLDER).length - 1).map((i) => i.bytes);
    return {
      row, question: row.extra_info?.question ?? questionFromUserTurn(first),
      tokens, completion_mask: tokens.map(() => 0), tool_mask: tokens.map(() => 1), sampling_per_token_logps: tokens.map(() => 0), promptLength: tokens.length,
      images: promptImages, turns: [], calls: [], toolTurns: [], truncated: false,
    };
  });
  const promptMax = Math.max(...trajs.map((t) => t.tokens.length));
  const session = new DecodeSession(model, B, promptMax + o.maxCompletionLength + 8);
  const be = model.backend;
  const pixels = (imgs: Uint8Array[]) => E.fromArray(be, concatF32(imgs.map((b) => imagePixels(b, o.imageSize))), [imgs.length, 3, o.imageSize, o.imageSize]).keep();
  const owned: E.Tensor[] = [];
  const segment = (ids: number[], imgs: Uint8Array[]): Segment => {
    if (!imgs.length) return { ids };
    const t = pixels(imgs);
    owned.push(t);
    return { ids, images: t };
  };
  const completion = (t: Trajectory) => t.tokens.length - t.promptLength;
  const budgets = rows.map(() => new SearchBudget(o.limits));
  const active = rows.map(() => true);
  const eos = tok.specialIds.endOfUtterance;
  // Image tokens only come with inserted images, and the template's own specials never start a turn's text.
  const sampling = { ...o.sampling, suppressTokens: [image, fakeTokenAroundImage, globalImg, imStart, imEnd, ...(mode === 'direct' ? searchTags(tok) : [])] };
  const cb = o.callbacks;
  const turnText = (ids: number[]) => tok.decode(ids.filter((id) => id !== eos)).replace(/^ /, '');
  // The turn's tokens so far and the text already streamed, per trajectory (only when someone listens).
  const streamed = rows.map(() => ({ ids: [] as number[], shown: '' }));
  const stream = (r: number, turn: number, ids: readonly number[]) => {
    if (!cb?.onToken) return;
    const s = streamed[r];
    const now = turnText([...s.ids, ...ids]);
    if (now.length > s.shown.length) cb.onToken(r, turn, now.slice(s.shown.length));
    s.shown = now;
  };
  const settle = (r: number, ids: readonly number[]) => void (cb?.onToken && streamed[r].ids.push(...ids));
  try {
    let t0 = performance.now();
    await session.append(trajs.map((t) => segment(t.tokens, imageSeqLen ? t.images : [])));
    const pending: (ToolCall | null)[] = rows.map(() => null);
    for (let turn = 0; turn < o.limits.maxTurns && active.some(Boolean); turn++) {
      const turnBudget = trajs.map((t) => Math.min(o.maxTurnTokens, o.maxCompletionLength - completion(t)));
      const forced = mode === 'rag' ? ragAction(turn) : null;
      trajs.forEach((_, r) => {
        if (!active[r]) return;
        streamed[r] = { ids: [], shown: '' };
        cb?.onTurn?.(r, turn);
      });
      const gen = await session.generate({
        maxNewTokens: Math.max(1, ...turnBudget.filter((_, r) => active[r])),
        sampling,
        active,
        eosTokenIds: [eos],
        stop: (r, toks) => (stream(r, turn, toks), toks.length >= turnBudget[r] || (forced ? REASON_CLOSED : CLOSING).test(tok.decode(toks.slice(-4)))),
      });
      // Each active row's turn as pieces: generated (mask 1) and, in the RAG workflow, the inserted action (mask 0).
      const pieces = trajs.map((_, r) => (active[r] ? [{ ids: gen.tokens[r], logprobs: gen.logprobs[r], mask: 1 }] : []));
      if (forced) {
        // A workflow always searches: reasoning the policy left open (turn budget spent) is closed for it.
        const inserts = trajs.map((_, r) => (active[r] ? tok.encode(workflowInsert(tok.decode(gen.tokens[r]), forced)) : []));
        const take = trajs.map((t, r) => active[r] && completion(t) + gen.tokens[r].length + inserts[r].length + 1 < o.maxCompletionLength);
        if (take.some(Boolean)) {
          await session.append(take.map((f, r) => (f ? { ids: inserts[r] } : null)));
          take.forEach((f, r) => f && (settle(r, gen.tokens[r]), stream(r, turn, inserts[r]), settle(r, inserts[r])));
          take.forEach((f, r) => f && pieces[r].push({ ids: inserts[r], logprobs: inserts[r].map(() => 0), mask: 0 }));
          if (forced.query) {
            const used = trajs.map((_, r) => gen.tokens[r].length + inserts[r].length);
            const query = await session.generate({
              maxNewTokens: Math.max(1, ...turnBudget.map((b, r) => b - used[r]).filter((_, r) => take[r])),
              sampling: { ...sampling, suppressTokens: [...sampling.suppressTokens, ...queryBlockedTags(tok)] },
              active: take,
              eosTokenIds: [eos],
              stop: (r, toks) => (stream(r, turn, toks), used[r] + toks.length >= turnBudget[r] || CLOSING.test(tok.decode(toks.slice(-4)))),
            });
            take.forEach((f, r) => f && pieces[r].push({ ids: query.tokens[r], logprobs: query.logprobs[r], mask: 1 }));
          }
        }
      }
      for (const [r, t] of trajs.entries()) {
        if (!active[r]) continue;
        const toks = pieces[r].flatMap((p) => p.ids);
        for (const p of pieces[r]) {
          t.tokens.push(...p.ids);
          t.completion_mask.push(...p.ids.map(() => 1));
          t.tool_mask.push(...p.ids.map(() => p.mask));
          t.sampling_per_token_logps.push(...p.logprobs);
          if (p.mask) stats.generatedTokens += p.ids.length;
        }
        const text = turnText(toks);
        t.turns.push(text);
        const call = parseToolCall(text);
        t.calls.push(call);
        cb?.onCall?.(r, turn, call);
        const closed = CLOSING.test(text);
        if (!closed && completion(t) >= o.maxCompletionLength) t.truncated = true;
        pending[r] = mode !== 'direct' && closed && budgets[r].decide(call, turn) === 'execute' ? call : null;
        if (!pending[r]) active[r] = false;
      }
      stats.generateMs += performance.now() - t0;
      if (!pending.some(Boolean)) break;

      t0 = performance.now();
      const results = await Promise.all(
        trajs.map(async (t, r) => {
          const call = pending[r];
          if (!call || (call.kind !== 'image_search' && call.kind !== 'text_search')) return null;
          return runToolCall(o.rowTools ? await o.rowTools(t.row) : tools, call, { question: t.question, image: { bytes: t.images[0] } }, stats, { k: o.resultsPerSearch, withImages: o.withThumbnails && imageSeqLen > 0 });
        }),
      );
      stats.searchMs += performance.now() - t0;
      t0 = performance.now();
      const segs = results.map((info, r) => {
        if (!info) return null;
        const t = trajs[r];
        const ids = enc.userTurn(info.text);
        if (completion(t) + ids.length + 1 > o.maxCompletionLength) {
          t.truncated = true;
          active[r] = false;
          return null;
        }
        const thumbs = info.images.map(dataUrlBytes);
        t.tokens.push(...ids);
        t.completion_mask.push(...ids.map(() => 1));
        t.tool_mask.push(...ids.map(() => 0));
        t.sampling_per_token_logps.push(...ids.map(() => 0));
        t.images.push(...thumbs);
        t.toolTurns.push(info);
        cb?.onTool?.(r, info);
        return segment(ids, thumbs);
      });
      pending.fill(null);
      if (segs.some(Boolean)) await session.append(segs);
    }
    stats.generateMs += performance.now() - t0;
    // Every token of a trajectory must be what the model saw, in order (cheap; guards the bookkeeping).
    trajs.forEach((t, r) => {
      const seen = session.history[r];
      if (seen.length !== t.tokens.length || seen.some((id, i) => id !== t.tokens[i])) throw new Error(`rollout: trajectory ${r} diverged from its decoding session`);
    });
  } finally {
    session.dispose();
    owned.forEach((t) => t.dispose());
  }
  return { trajectories: trajs, stats };
}

function concatF32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}
