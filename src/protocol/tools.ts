/**
 * The MMSearch-R1 tool protocol (paper section 3.1, public code `vllm_rollout_spmd` multi-turn
 * rollout; notes "Conversation protocol"): parse an assistant turn, the per-trajectory search limits,
 * and the `<information>` user turn that carries a tool's results (or its error) back to the policy.
 * Running the tools is src/search/run-tool.ts's; the wording of every turn is ./prompts.ts's.
 */
import { formatImageSearchResults, formatTextSearchResults, IMAGE_PLACEHOLDER, toolResultTurn } from './prompts.js';

/** One image-search hit: the page title, its address and a thumbnail (data: URL or http(s) URL). */
export interface ImageSearchResult {
  title: string;
  url: string;
  thumbnail: string;
}

/** One text-search hit: the page title, its address and a <= 5-sentence summary made for the query. */
export interface TextSearchResult {
  title: string;
  url: string;
  summary: string;
}

/** What an assistant turn asks for. `none` = no action tag closes the turn (malformed or cut off). */
export type ToolCall =
  | { kind: 'image_search' }
  | { kind: 'text_search'; query: string }
  | { kind: 'answer'; answer: string }
  | { kind: 'none' };

const IMAGE_SEARCH_AT_END = /<search>\s*<img>\s*<\/search>$/;

/**
 * Parses one assistant turn. A tag counts only when it closes the turn (after trailing whitespace
 * is trimmed), as the reference regexes are anchored with `$`. For `<text_search>` and `<answer>`
 * the last opening tag wins, so `<text_search>a</text_search> <text_search>b</text_search>` is "b".
 * An empty text query is `none`.
 */
export function parseToolCall(turn: string): ToolCall {
  const t = turn.trim();
  if (IMAGE_SEARCH_AT_END.test(t)) return { kind: 'image_search' };
  for (const tag of ['text_search', 'answer'] as const) {
    const close = `</${tag}>`;
    if (!t.endsWith(close)) continue;
    const open = t.lastIndexOf(`<${tag}>`);
    if (open < 0) return { kind: 'none' };
    const inner = t.slice(open + tag.length + 2, t.length - close.length).trim();
    if (tag === 'answer') return { kind: 'answer', answer: inner };
    return inner ? { kind: 'text_search', query: inner } : { kind: 'none' };
  }
  return { kind: 'none' };
}

/** Per-trajectory limits (paper: 3 assistant turns, image search once, text search twice). */
export interface SearchLimits {
  maxTurns: number;
  imageSearch: number;
  textSearch: number;
}

export const DEFAULT_LIMITS: SearchLimits = { maxTurns: 3, imageSearch: 1, textSearch: 2 };

/** Results per search call (paper section 3.1: up to 5 for both tools); the proxy's default `k`. */
export const RESULTS_PER_SEARCH = 5;

/**
 * Counts the searches of one trajectory and decides whether a requested search runs. A search
 * asked for in the last allowed turn, or beyond its limit, is not executed: the trajectory ends.
 */
export class SearchBudget {
  imageSearches = 0;
  textSearches = 0;

  constructor(readonly limits: SearchLimits = DEFAULT_LIMITS) {}

  /**
   * `execute` when the call is a search allowed at assistant turn `turnIndex` (0-based), counting
   * it; `end` otherwise (answers, malformed turns, refused searches all end the trajectory).
   */
  decide(call: ToolCall, turnIndex: number): 'execute' | 'end' {
    if (call.kind !== 'image_search' && call.kind !== 'text_search') return 'end';
    if (turnIndex >= this.limits.maxTurns - 1) return 'end';
    if (call.kind === 'image_search') {
      if (this.imageSearches >= this.limits.imageSearch) return 'end';
      this.imageSearches++;
    } else {
      if (this.textSearches >= this.limits.textSearch) return 'end';
      this.textSearches++;
    }
    return 'execute';
  }
}

/** A piece of the rendered user turn: text, or an image given by URL (usually a data: URL). */
export type TurnPart = { type: 'text'; text: string } | { type: 'image'; url: string };

/** The user turn inserted after a tool call (all of it has loss mask 0). */
export interface InformationTurn {
  /** Text and thumbnails in order. */
  parts: TurnPart[];
  /** The parts as one string, each image as {@link IMAGE_PLACEHOLDER}. */
  text: string;
  /** The thumbnails in order (empty for text search and for text-only rendering). */
  images: string[];
  /** True when the tool failed and the turn carries the error string in place of results. */
  error: boolean;
}

function turnFrom(parts: TurnPart[], error: boolean): InformationTurn {
  const text = parts.map((p) => (p.type === 'text' ? p.text : IMAGE_PLACEHOLDER)).join('');
  const images = parts.flatMap((p) => (p.type === 'image' ? [p.url] : []));
  return { parts, text, images, error };
}

/**
 * The user turn after an image search: `Searched results: <information>...</information>`, the
 * question and the follow-up instruction, in the wording of ./prompts.ts (the one source of
 * protocol text, so that warm-start trajectories and rollouts see identical turns). Each result is a
 * thumbnail (an `<image>`, inserted as an image) and its page title; with `withImages` false the
 * thumbnails are left out (for models that take no images in tool results).
 */
export function renderImageResults(results: readonly ImageSearchResult[], question: string, withImages = true): InformationTurn {
  const text = toolResultTurn('image_search', formatImageSearchResults(results, withImages), question);
  const chunks = text.split(IMAGE_PLACEHOLDER);
  const parts: TurnPart[] = [];
  chunks.forEach((chunk, i) => {
    if (i > 0) parts.push({ type: 'image', url: results[i - 1].thumbnail });
    if (chunk) parts.push({ type: 'text', text: chunk });
  });
  return turnFrom(parts, false);
}

/** The user turn after a text search: `(link) summary` entries, the question, the follow-up instruction. */
export function renderTextResults(results: readonly TextSearchResult[], question: string): InformationTurn {
  return turnFrom([{ type: 'text', text: toolResultTurn('text_search', formatTextSearchResults(results), question) }], false);
}

/**
 * The turn that replaces results when a tool call fails (the reference code returns an error
 * string to the model rather than stopping the rollout).
 */
export function renderToolError(kind: 'image_search' | 'text_search', message: string): InformationTurn {
  const label = kind === 'image_search' ? 'Image Search Results' : 'Text Search Results';
  const text =
    `[${label}] There is an error encountered in performing search: ${message}. ` +
    'Please reason with your own capability and answer the question inside <answer> and </answer>.';
  return turnFrom([{ type: 'text', text }], true);
}

/** Tool-use counters for training metrics (search ratio, searches per trajectory, failures). */
export interface ToolMetrics {
  imageSearches: number;
  textSearches: number;
  imageSearchFailures: number;
  textSearchFailures: number;
}

export function emptyToolMetrics(): ToolMetrics {
  return { imageSearches: 0, textSearches: 0, imageSearchFailures: 0, textSearchFailures: 0 };
}
