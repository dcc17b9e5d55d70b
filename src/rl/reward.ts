/**
 * The MMSearch-R1 rule reward (paper section 3.2; public code
 * `mmsearch_r1/utils/reward_score_mm/mmsearch_r1_score.py`, `compute_score`):
 * reward = (1 - a)·acc·P + a·format, with a = `format_penalty` (0.1) and P = 1 - `search_penalty`
 * (0.9) when the trajectory searched, else 1. acc is exact match (EM, used in training) or
 * substring match (SubEM) of the last `<answer>` against the ground truth or any candidate answer,
 * after SQuAD-style normalisation. The action that closes a turn is recognised by
 * {@link parseToolCall}, the same parser the rollout uses.
 */
import type { RewardModel } from '../data/types.js';
import { parseToolCall } from '../protocol/tools.js';

/** Python's `string.punctuation` (ASCII), which the reference strips. */
const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
/** `\b(a|an|the)\b` with Python's Unicode word characters (JS `\b` is ASCII-only). */
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/**
 * SQuAD-style answer normalisation, as the reference `normalize_answer` (from Search-R1): lowercase,
 * drop ASCII punctuation, replace the articles a / an / the by a space, collapse whitespace.
 * `normalizeAnswer("The  Eiffel-Tower!")` is `"eiffeltower"`.
 */
export function normalizeAnswer(s: string): string {
  const noPunct = [...s.toLowerCase()].filter((ch) => !PUNCTUATION.has(ch)).join('');
  return noPunct.replace(ARTICLES, ' ').split(/\s+/).filter(Boolean).join(' ');
}

const asList = (golden: string | readonly string[]): readonly string[] => (typeof golden === 'string' ? [golden] : golden);

/** EM (reference `em_check`): the normalised prediction equals some normalised golden answer. */
export function exactMatch(prediction: string, golden: string | readonly string[]): boolean {
  const p = normalizeAnswer(prediction);
  return asList(golden).some((g) => normalizeAnswer(g) === p);
}

/** SubEM (reference `subem_check`): some normalised golden answer is a substring of the normalised prediction. */
export function subExactMatch(prediction: string, golden: string | readonly string[]): boolean {
  const p = normalizeAnswer(prediction);
  return asList(golden).some((g) => p.includes(normalizeAnswer(g)));
}

const ANSWER = /<answer>([\s\S]*?)<\/answer>/g;

/**
 * The text of the last `<answer>…</answer>` anywhere in `turn`, trimmed; null when there is none
 * (reference `extract_solution`, applied to the last assistant turn). Accuracy uses this, not the
 * format check, so a correct answer followed by stray text still scores acc = 1 (and format = 0).
 */
export function extractAnswer(turn: string): string | null {
  let last: string | null = null;
  for (const m of turn.matchAll(ANSWER)) last = m[1].trim();
  return last;
}

/** The action that closes a well-formed assistant turn. */
export type TurnAction = 'answer' | 'image_search' | 'text_search';

/** Turn patterns with format = 1 (paper section 3.2; reference `format_reward`). */
export const FORMAT_PATTERNS: readonly (readonly TurnAction[])[] = [
  ['answer'],
  ['image_search', 'answer'],
  ['text_search', 'answer'],
  ['image_search', 'text_search', 'answer'],
];

const OPEN_TAG: Record<TurnAction, string> = { answer: '<answer>', image_search: '<search>', text_search: '<text_search>' };
const ACTION_OPEN = ['<answer>', '<search>', '<text_search>'];
const ACTION_CLOSE = ['</answer>', '</search>', '</text_search>'];

const count = (s: string, sub: string): number => s.split(sub).length - 1;

/**
 * The action of one assistant turn when the turn is well formed, else null. Well formed (reference
 * `is_valid_direct_answer` / `is_valid_image_search` / `is_valid_text_search`): after trimming, the
 * turn starts with `<reason>`, has exactly one `<reason>` and one `</reason>`, exactly one action tag
 * (one opening and one closing tag among answer / search / text_search, so no second action of any
 * kind), the action closes the turn ({@link parseToolCall}, so nothing follows it), and `</reason>`
 * comes before the action. Differs from the reference only in what parseToolCall accepts: whitespace
 * inside `<search> <img> </search>`, and no empty text query.
 */
export function turnAction(turn: string): TurnAction | null {
  const t = turn.trim();
  if (!t.startsWith('<reason>') || count(t, '<reason>') !== 1 || count(t, '</reason>') !== 1) return null;
  const call = parseToolCall(t);
  if (call.kind === 'none') return null;
  const opens = ACTION_OPEN.reduce((n, tag) => n + count(t, tag), 0);
  const closes = ACTION_CLOSE.reduce((n, tag) => n + count(t, tag), 0);
  if (opens !== 1 || closes !== 1) return null;
  return t.indexOf('</reason>') < t.indexOf(OPEN_TAG[call.kind]) ? call.kind : null;
}

/**
 * Format score of a trajectory's assistant turns (in order): 1 when every turn is well formed
 * ({@link turnAction}) and the sequence of actions is one of {@link FORMAT_PATTERNS}, else 0. More
 * than three turns score 0 (the reference raises; here the rollout's limits make it unreachable).
 * @throws when `turns` is empty (a trajectory has at least one assistant turn)
 */
export function formatScore(turns: readonly string[]): 0 | 1 {
  if (turns.length === 0) throw new Error('formatScore: a trajectory needs at least one assistant turn');
  const actions = turns.map(turnAction);
  const ok = FORMAT_PATTERNS.some((p) => p.length === actions.length && p.every((a, i) => a === actions[i]));
  return ok ? 1 : 0;
}

/** Reward constants (reference `extra_info` keys; see config.ts for the recipe fields). */
export interface RewardOptions {
  /** a: weight of the format score, and 1 - a of accuracy. Default 0.1. */
  format_penalty?: number;
  /** 1 - P: correct answers of a trajectory that searched are scaled by 1 - search_penalty. Default 0.1. */
  search_penalty?: number;
  /** 'EM' (training, default) or 'SubEM'. */
  reward_mode?: 'EM' | 'SubEM';
  /** Scale by (1 - search_penalty) once per search instead of once per trajectory. Default false. */
  use_search_count_penalty?: boolean;
}

/** The reward of one trajectory and its parts, for the metrics (all in [0, 1]). */
export interface RewardComponents {
  /** acc: 1 when the last answer matches (EM or SubEM), else 0. */
  accuracy: 0 | 1;
  /** 1 when the turn pattern and every turn are well formed, else 0. */
  format: 0 | 1;
  /** True when at least one search was executed. */
  searched: boolean;
  /** Executed searches (turns other than the last that close with a search call). */
  searchCount: number;
  imageSearches: number;
  textSearches: number;
  /** P: the multiplier of accuracy, 1 without search. */
  penalty: number;
  /** (1 - a)·acc·P + a·format. */
  reward: number;
  /** The extracted final answer, null when the last turn has none. */
  answer: string | null;
}

/**
 * The MMSearch-R1 reward of one trajectory (reference `compute_score` with the reward manager's
 * merging of `ground_truth` and `candidate_answers`). With the defaults: correct without search 1.0,
 * correct with search 0.9·0.9 + 0.1 = 0.91, wrong but well formed 0.1.
 *
 * Searches are counted as executed ones: every turn but the last that closes with a search call
 * (a search that is not executed ends the trajectory, so only executed searches have a next turn).
 * The reference also counts a search tag inside a lone first turn; that turn has format 0 and this
 * only differs when its stray `<answer>` is correct.
 *
 * @param turns the assistant turns of the trajectory, in order, as decoded text
 * @param answers `ground_truth` plus `candidate_answers` (a list, or the parquet JSON-encoded list)
 * @throws when `turns` is empty, a constant is outside [0, 1], or candidate_answers is not a JSON list of strings
 */
export function computeScore(
  turns: readonly string[],
  answers: { ground_truth: RewardModel['ground_truth']; candidate_answers?: readonly string[] | string },
  opts: RewardOptions = {},
): RewardComponents {
  const a = opts.format_penalty ?? 0.1;
  const sp = opts.search_penalty ?? 0.1;
  for (const [name, v] of [['format_penalty', a], ['search_penalty', sp]] as const)
    if (!(v >= 0 && v <= 1)) throw new Error(`computeScore: ${name} must be in [0, 1], got ${v}`);
  const golden = [answers.ground_truth, ...candidateList(answers.candidate_answers)];

  const format = formatScore(turns);
  const answer = extractAnswer(turns[turns.length - 1]);
  const match = (opts.reward_mode ?? 'EM') === 'EM' ? exactMatch : subExactMatch;
  const accuracy = answer !== null && match(answer, golden) ? 1 : 0;

  let imageSearches = 0, textSearches = 0;
  for (const turn of turns.slice(0, -1)) {
    const kind = parseToolCall(turn).kind;
    if (kind === 'image_search') imageSearches++;
    else if (kind === 'text_search') textSearches++;
  }
  const searchCount = imageSearches + textSearches;
  const penalty = searchCount === 0 ? 1 : (1 - sp) ** (opts.use_search_count_penalty ? searchCount : 1);
  const reward = (1 - a) * accuracy * penalty + a * format;
  return { accuracy, format, searched: searchCount > 0, searchCount, imageSearches, textSearches, penalty, reward, answer };
}

/**
 * {@link computeScore} of a rollout trajectory against its row's answers; a trajectory that ended
 * before it produced a turn scores as one empty turn.
 */
export function scoreTrajectory(t: { turns: readonly string[]; row: { reward_model: Parameters<typeof computeScore>[1] } }, opts: RewardOptions = {}): RewardComponents {
  return computeScore(t.turns.length ? t.turns : [''], t.row.reward_model, opts);
}

function candidateList(c: readonly string[] | string | undefined): readonly string[] {
  if (c === undefined) return [];
  if (typeof c !== 'string') return c;
  let parsed: unknown;
  try {
    parsed = JSON.parse(c);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string'))
    throw new Error(`computeScore: candidate_answers must be a JSON list of strings, got ${c.slice(0, 80)}`);
  return parsed;
}
