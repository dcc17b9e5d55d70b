/**
 * JSON Lines text (one JSON object per line; blank lines skipped): the metrics.jsonl of runs and the
 * pages.jsonl / images.jsonl of search corpora. (The dataset import, data/jsonl.ts, reads FVQA rows
 * line by line with its own row-numbered errors.)
 */

/**
 * Parses JSONL text into objects; blank lines are skipped.
 * @param file names the text in errors
 * @throws Error naming `file` and the 1-based line when a line is not valid JSON or not a JSON object
 */
export function parseJsonl<T = Record<string, unknown>>(text: string, file = 'jsonl'): T[] {
  const out: T[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file} line ${i + 1}: ${(e as Error).message}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file} line ${i + 1}: not a JSON object`);
    out.push(v as T);
  });
  return out;
}
