/**
 * Evaluation in the three modes of MMSearch-R1's Table 1, with greedy decoding (or sampling): direct answer (no
 * tools), the RAG workflow (image search always made, then a text search with the model's query),
 * and the policy's own on-demand search. Accuracy is exact match after normalisation (the paper used
 * an LLM judge on real benchmarks; on FVQA-mini answers are closed-vocabulary, so EM is exact).
 */
import * as E from '../engine/index.js';
import { pageUrl, type FvqaMini } from '../data/fvqa-mini.js';
import { LOOK_ATTRIBUTES, readDescribedLook } from '../data/questions.js';
import type { FvqaRow } from '../data/types.js';
import type { CausalModel } from '../models/llama.js';
import type { LabTokenizer } from '../models/tokenizer.js';
import type { SearchTools } from '../search/types.js';
import { scoreTrajectory } from './reward.js';
import { rollout, type RolloutOptions, type SearchMode } from './rollout.js';
import { chunks } from './steps.js';

export interface EvalRecord {
  data_id: string;
  category: string | null;
  /** The row's `extra_info.question_kind` (FVQA-mini: visual, familiar_fact, unfamiliar_name, unfamiliar_fact); absent on records of earlier versions and rows without it. */
  question_kind?: string;
  mode: SearchMode;
  question: string;
  ground_truth: string;
  answer: string | null;
  correct: boolean;
  searched: boolean;
  imageSearches: number;
  textSearches: number;
  /** Assistant turns and inserted tool turns in order (text). */
  transcript: { role: 'assistant' | 'tool'; text: string }[];
}

export interface ModeSummary {
  mode: SearchMode;
  rows: number;
  /** Percent. */
  accuracy: number;
  /** Percent of trajectories with at least one executed search. */
  searchRatio: number;
  byCategory: Record<string, { rows: number; accuracy: number; searchRatio: number }>;
  /** The same per question kind (EvalRecord.question_kind), for records that carry one: issue 15's decision-neutrality is per kind. */
  byKind?: Record<string, { rows: number; accuracy: number; searchRatio: number }>;
}

/**
 * The first `n` rows of a split taken round-robin over its question kinds (`extra_info.question_kind`,
 * else `category`), each kind in split order: a small evaluation sees every kind, where the first
 * `n` rows of FVQA-mini's test split would all be about familiar entities. All rows when n >= length.
 */
export function evalSubset<R extends Pick<FvqaRow, 'category' | 'extra_info'>>(rows: readonly R[], n: number): R[] {
  if (n >= rows.length) return [...rows];
  const groups = new Map<string, R[]>();
  for (const r of rows) {
    const k = String(r.extra_info?.question_kind ?? r.category ?? '');
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const out: R[] = [];
  for (let i = 0; out.length < n; i++) for (const g of groups.values()) if (i < g.length && out.length < n) out.push(g[i]);
  return out;
}

const pct = (a: number, n: number) => (n ? (100 * a) / n : 0);

/** Rows, accuracy and search ratio (percent) of records grouped by `key` (records without one are left out). */
function groupStats(recs: readonly EvalRecord[], key: (r: EvalRecord) => string | undefined): ModeSummary['byCategory'] {
  const out: ModeSummary['byCategory'] = {};
  for (const k of [...new Set(recs.map(key))]) {
    if (k === undefined) continue;
    const rs = recs.filter((r) => key(r) === k);
    out[k] = { rows: rs.length, accuracy: pct(rs.filter((r) => r.correct).length, rs.length), searchRatio: pct(rs.filter((r) => r.searched).length, rs.length) };
  }
  return out;
}

/** Summarises records of one mode: overall, by category and, when the records carry one, by question kind. */
export function summarise(mode: SearchMode, recs: readonly EvalRecord[]): ModeSummary {
  const byCategory = groupStats(recs, (r) => r.category ?? 'unlabelled');
  const byKind = groupStats(recs, (r) => r.question_kind);
  return {
    mode, rows: recs.length, accuracy: pct(recs.filter((r) => r.correct).length, recs.length), searchRatio: pct(recs.filter((r) => r.searched).length, recs.length),
    byCategory, ...(Object.keys(byKind).length ? { byKind } : {}),
  };
}

/**
 * Runs every row once per mode, in batches: greedy, or sampled with `o.sampling` (repeat rows for
 * several samples per row; the summaries then count trajectories).
 * @param onProgress rows done / total over all modes
 */
export async function evaluate(
  model: CausalModel, tok: LabTokenizer, rows: readonly FvqaRow[], tools: SearchTools, modes: readonly SearchMode[],
  o: Omit<RolloutOptions, 'sampling' | 'mode'> & { batchSize: number; sampling?: RolloutOptions['sampling'] }, onProgress?: (done: number, total: number) => void,
): Promise<{ summaries: ModeSummary[]; records: EvalRecord[] }> {
  const sampling = o.sampling ?? { temperature: 0, rng: new E.Rng(0) };
  const records: EvalRecord[] = [];
  const total = rows.length * modes.length;
  for (const mode of modes) {
    for (const batch of chunks(rows, o.batchSize)) {
      const { trajectories } = await rollout(model, tok, batch, tools, { ...o, mode, sampling });
      for (const t of trajectories) {
        const s = scoreTrajectory(t);
        const transcript: EvalRecord['transcript'] = [];
        t.turns.forEach((turn, i) => {
          transcript.push({ role: 'assistant', text: turn });
          if (t.toolTurns[i]) transcript.push({ role: 'tool', text: t.toolTurns[i].text });
        });
        records.push({
          data_id: t.row.data_id, category: t.row.category, ...(t.row.extra_info?.question_kind ? { question_kind: t.row.extra_info.question_kind } : {}), mode, question: t.question, ground_truth: t.row.reward_model.ground_truth,
          answer: s.answer, correct: s.accuracy === 1, searched: t.toolTurns.length > 0,
          imageSearches: t.toolTurns.filter((_, i) => t.calls[i]?.kind === 'image_search').length,
          textSearches: t.toolTurns.filter((_, i) => t.calls[i]?.kind === 'text_search').length,
          transcript,
        });
      }
      onProgress?.(records.length, total);
    }
  }
  return { summaries: modes.map((m) => summarise(m, records.filter((r) => r.mode === m))), records };
}

const LABEL: Record<SearchMode, string> = { direct: 'Direct answer', rag: 'RAG workflow (image, then text search)', on_demand: 'On-demand search (policy)' };

/** A markdown table shaped like MMSearch-R1's Table 1, with per-category columns. */
export function table1(summaries: readonly ModeSummary[]): string {
  const cats = [...new Set(summaries.flatMap((s) => Object.keys(s.byCategory)))].sort();
  const head = ['method', 'accuracy %', 'search ratio %', ...cats.flatMap((c) => [`${c} acc %`, `${c} SR %`])];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`];
  for (const s of summaries) {
    const cells = [LABEL[s.mode], s.accuracy.toFixed(1), s.searchRatio.toFixed(1), ...cats.flatMap((c) => [s.byCategory[c]?.accuracy.toFixed(1) ?? '', s.byCategory[c]?.searchRatio.toFixed(1) ?? ''])];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** One row of {@link searchChainStats}: counts of search_required records of one mode and question kind. */
export interface SearchChainRow {
  mode: SearchMode;
  /** 'name': the question asks the creature's name (the answer is the image-search title); 'fact': another fact. */
  question: 'name' | 'fact';
  rows: number;
  /** Rows whose trajectory made an image search that returned a title. */
  imageSearched: number;
  /**
   * ... whose text-search turn restates that title in its reasoning ("The top result is NAME."): the first
   * of the chain's two copies of a new name, title to reasoning, then reasoning to query.
   */
  titleInReasoning: number;
  /** ... and wrote that title into a text-search query (counted whether or not the reasoning restated it). */
  titleInQuery: number;
  /** ... whose text search returned the title's page (a name question needs no text search). */
  rightPage: number;
  /** Correct answers among the rows counted in rightPage. */
  correctGivenPage: number;
  correct: number;
}

/**
 * Where the search chains of search_required rows break, per mode and question kind (issue 15's heldout
 * analysis, docs/fvqa-mini-warm-start.md): the image search, the copy of its title into the reasoning and
 * into the text query, the text search finding the title's page, then reading the answer off it. Reads the tool turns as
 * src/protocol/prompts.ts renders them ("title: NAME") and pages by FVQA-mini's pageUrl.
 * @param records evaluation records (eval-<split>.json `records`); rows of other categories and direct
 *   answers are skipped.
 * @param nameQuestions the question texts that ask a creature's name (FVQA-mini: TEMPLATES.name).
 * @returns one row per (mode, question kind) present, sorted by mode then kind.
 */
export function searchChainStats(records: readonly EvalRecord[], nameQuestions: readonly string[]): SearchChainRow[] {
  const out = new Map<string, SearchChainRow>();
  for (const r of records) {
    if (r.category !== 'search_required' || r.mode === 'direct') continue;
    const question = nameQuestions.includes(r.question) ? 'name' : 'fact';
    const key = `${r.mode}/${question}`;
    const s = out.get(key) ?? { mode: r.mode, question, rows: 0, imageSearched: 0, titleInReasoning: 0, titleInQuery: 0, rightPage: 0, correctGivenPage: 0, correct: 0 };
    out.set(key, s);
    s.rows++;
    s.correct += Number(r.correct);
    const tools = r.transcript.filter((m) => m.role === 'tool').map((m) => m.text).join('\n');
    const title = /title: ([^\n<]+)/.exec(tools)?.[1]?.trim();
    if (!title) continue;
    s.imageSearched++;
    const searchTurns = r.transcript.filter((m) => m.role === 'assistant' && m.text.includes('<text_search>')).map((m) => m.text);
    const query = /<text_search>([\s\S]*?)<\/text_search>/;
    s.titleInReasoning += Number(searchTurns.some((t) => t.replace(query, '').includes(title)));
    s.titleInQuery += Number(searchTurns.some((t) => query.exec(t)?.[1]?.includes(title)));
    if (!tools.includes(`(${pageUrl(title)})`)) continue;
    s.rightPage++;
    s.correctGivenPage += Number(r.correct);
  }
  return [...out.values()].sort((a, b) => `${a.mode}/${a.question}`.localeCompare(`${b.mode}/${b.question}`));
}

/** One row of {@link lookReading}: what the first turns say of one group of creatures' looks. */
export interface LookReadingRow {
  /**
   * 'new': the GRPO drills' creatures, which no warm start has seen; 'held_out': the heldout split's, never in
   * SFT or GRPO; else the world's own train creatures, by familiarity.
   */
  creatures: 'new' | 'familiar' | 'unfamiliar' | 'held_out';
  rows: number;
  /** Rows whose first turn describes a look at all. */
  described: number;
  /** Rows whose described pattern / colour / shape / number of marks is the creature's. */
  pattern: number;
  colour: number;
  shape: number;
  marks: number;
  /**
   * Rows whose first turn says "This is NAME." with NAME a familiar creature's (recognition_first): right
   * for familiar rows (its own name; `recognisedRight`), a misrecognition for the others.
   */
  recognised: number;
  recognisedRight: number;
  /** Of the rows, those of search_required questions, and of those the ones `recognised` counts. */
  searchRequired: number;
  searchRequiredRecognised: number;
}

/**
 * How well a policy sees creatures it has not memorised (issue 15's perception measurement,
 * docs/fvqa-mini-warm-start.md): for each record of the train or heldout split, the look its first assistant
 * turn describes ("A striped red star, 3 marks.") against the look of the row's creature, and whether it takes
 * the creature for a familiar one.
 * @param records evaluation records of the train and/or heldout split (eval-train.json, eval-heldout.json
 *   `records`), any mode.
 * @param world the FVQA-mini world the records' rows come from (the run's recipe and seed, drills included).
 * @returns rows for the 'new', 'familiar', 'unfamiliar' and 'held_out' creatures, in that order (rows 0
 *   where the records have none).
 * @throws Error naming a record whose data_id is not a row of the world's train or heldout split.
 */
export function lookReading(records: readonly EvalRecord[], world: FvqaMini): LookReadingRow[] {
  const rowEntity = new Map([...world.splits.train, ...world.splits.heldout].map((r) => [r.data_id, r.extra_info!.entity_id]));
  const creatures = new Map([...world.entities, ...world.grpoDrillCreatures].map((e) => [e.id, e]));
  const drills = new Set(world.grpoDrillCreatures.map((e) => e.id));
  const familiar = world.entities.filter((e) => e.familiarity === 'familiar').map((e) => e.facts.name);
  const out = { new: lookRow('new'), familiar: lookRow('familiar'), unfamiliar: lookRow('unfamiliar'), held_out: lookRow('held_out') };
  for (const r of records) {
    const e = creatures.get(rowEntity.get(r.data_id) ?? '');
    if (!e) throw new Error(`lookReading: record ${r.data_id} is not a row of the world's train or heldout split (another seed or recipe?)`);
    const s = drills.has(e.id) ? out.new : out[e.familiarity];
    const first = r.transcript.find((m) => m.role === 'assistant')?.text ?? '';
    s.rows++;
    const named = familiar.find((n) => first.includes(`This is ${n}.`));
    s.recognised += Number(named !== undefined);
    s.recognisedRight += Number(named === e.facts.name);
    if (r.category === 'search_required') {
      s.searchRequired++;
      s.searchRequiredRecognised += Number(named !== undefined);
    }
    const said = readDescribedLook(first);
    if (!said) continue;
    s.described++;
    for (const k of LOOK_ATTRIBUTES) s[k] += Number(said[k] === e.look[k]);
  }
  return [out.new, out.familiar, out.unfamiliar, out.held_out];
}

const lookRow = (creatures: LookReadingRow['creatures']): LookReadingRow => ({ creatures, rows: 0, described: 0, pattern: 0, colour: 0, shape: 0, marks: 0, recognised: 0, recognisedRight: 0, searchRequired: 0, searchRequiredRecognised: 0 });
