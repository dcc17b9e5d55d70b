/**
 * Extractive, question-focused summaries: the default summariser of text-search results
 * (MMSearch-R1 returns a <= 5-sentence summary of each page made for the question; notes
 * "Text search results"). Sentences are ranked by BM25 against the question (MiniSearch's BM25+,
 * k1 = 1.2, b = 0.7, d = 0.5) and the top ones are returned in page order.
 */
import MiniSearch from 'minisearch';

/** Function words dropped before BM25 so that "what is the ..." does not match every sentence. */
export const STOP_WORDS = new Set(
  ('a an and are as at be by for from has have he her his in is it its of on or she that the their ' +
    'they this to was were what when where which who whom whose why how with do does did i you we')
    .split(' '),
);

/** MiniSearch term processor: lowercase, stop words removed. */
export function processTerm(term: string): string | null {
  const t = term.toLowerCase();
  return STOP_WORDS.has(t) ? null : t;
}

/** Splits plain text into sentences at '.', '!' or '?' followed by whitespace. Empty pieces dropped. */
export function splitSentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * The `maxSentences` sentences of `text` that score highest by BM25 against `question`, joined in
 * their original order. When no sentence shares a term with the question, the first sentences.
 */
export function extractiveSummary(text: string, question: string, maxSentences = 5): string {
  const sentences = splitSentences(text);
  if (sentences.length <= maxSentences) return sentences.join(' ');
  const index = new MiniSearch<{ id: number; s: string }>({ fields: ['s'], idField: 'id', processTerm });
  index.addAll(sentences.map((s, id) => ({ id, s })));
  const hits = index.search(question, { combineWith: 'OR' }).slice(0, maxSentences).map((h) => h.id as number);
  const chosen = hits.length > 0 ? hits.sort((a, b) => a - b) : sentences.slice(0, maxSentences).map((_, i) => i);
  return chosen.map((i) => sentences[i]).join(' ');
}
