/**
 * JSONL + image folder import: one JSON object per line with FVQA field names, images given by path
 * relative to the folder of the JSONL file. Example line:
 *   {"question": "Who discovered this creature?", "images": ["img/0001.png"],
 *    "reward_model": {"ground_truth": "Ada Marsh", "candidate_answers": ["Ada Marsh", "Marsh"]},
 *    "data_source": "my_set", "category": "search_required"}
 * `prompt` may be given instead of `question`; `images` entries may be strings or {path}.
 * Runtime-agnostic: lines and image bytes come from callbacks (Node: node-io.ts; browser: File objects).
 */
import { firstUserTurn } from '../protocol/prompts.js';
import { DatasetFormatError, type FvqaRow, type ProgressCallback } from './types.js';
import { recordToRow } from './validate.js';

/** Options of `jsonlBatches`. */
export interface JsonlOptions {
  /** Rows per batch (default 64). */
  batchRows?: number;
  /** `data_id` prefix for rows without one. */
  idPrefix?: string;
  onProgress?: ProgressCallback;
}

/**
 * Parses JSONL lines into validated FVQA rows, in batches. Blank lines are skipped; row numbers in
 * errors count non-blank lines from 0.
 * @param lines the file's lines, in order.
 * @param readImage returns the bytes of an image path; a rejection becomes "image file not readable".
 * @throws DatasetFormatError naming the row and field (invalid JSON, missing image, bad field).
 */
export async function* jsonlBatches(
  lines: AsyncIterable<string> | Iterable<string>,
  readImage: (path: string) => Promise<Uint8Array>,
  opts: JsonlOptions = {},
): AsyncGenerator<FvqaRow[]> {
  const n = opts.batchRows ?? 64;
  let batch: FvqaRow[] = [];
  let row = 0;
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new DatasetFormatError(row, null, `invalid JSON (${(e as Error).message})`);
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new DatasetFormatError(row, null, 'expected a JSON object');
    if (rec.prompt === undefined && typeof rec.question === 'string') rec.prompt = [{ role: 'user', content: firstUserTurn(rec.question) }];
    if (Array.isArray(rec.images)) {
      const images = [];
      for (const [i, im] of (rec.images as unknown[]).entries()) {
        const path = typeof im === 'string' ? im : (im as { path?: unknown })?.path;
        if (typeof path !== 'string' || path === '') throw new DatasetFormatError(row, `images[${i}]`, 'expected an image path');
        if (path.startsWith('/') || path.split(/[\\/]/).includes('..')) throw new DatasetFormatError(row, `images[${i}]`, `path must stay inside the folder: ${path}`);
        let bytes: Uint8Array;
        try {
          bytes = await readImage(path);
        } catch (e) {
          throw new DatasetFormatError(row, `images[${i}]`, `image file not readable: ${path} (${(e as Error).message})`);
        }
        images.push({ bytes, path });
      }
      rec.images = images;
    }
    batch.push(recordToRow(rec, row, { idPrefix: opts.idPrefix ?? 'row' }));
    row++;
    if (batch.length >= n) {
      yield batch;
      batch = [];
      opts.onProgress?.({ phase: 'import', done: row, total: null, unit: 'rows' });
    }
  }
  if (batch.length) yield batch;
  opts.onProgress?.({ phase: 'import', done: row, total: row, unit: 'rows' });
}
