/**
 * Node-only dataset I/O for the CLI and tests: FVQA-mini to a folder, parquet files, JSONL folders,
 * and file-or-URL sources. Browser code uses parquet.ts / jsonl.ts with Blob or Range readers instead.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { asyncBufferFromFile, type AsyncBuffer } from 'hyparquet';
import { fileWriter } from 'hyparquet-writer';
import { writeCorpusDir } from '../search/corpus-fs.js';
import { SPLITS, type FvqaMini } from './fvqa-mini.js';
import { jsonlBatches, type JsonlOptions } from './jsonl.js';
import { rangeBufferFromUrl, writeFvqaParquet, type WriteOptions } from './parquet.js';
import type { FvqaRow, ProgressCallback } from './types.js';

/** Writes rows to a parquet file in the FVQA schema. @returns the number of rows written. */
export function writeParquetFile(path: string, rows: Iterable<FvqaRow> | AsyncIterable<FvqaRow>, opts: WriteOptions = {}): Promise<number> {
  return writeFvqaParquet(rows, fileWriter(path), opts);
}

/** Counts per split and category, stored in world.json and printed by the CLI. */
export function fvqaMiniStats(m: FvqaMini) {
  const splits = Object.fromEntries(
    SPLITS.map((s) => {
      const rows = m.splits[s];
      const count = (f: (r: FvqaRow) => string) => rows.reduce<Record<string, number>>((a, r) => ((a[f(r)] = (a[f(r)] ?? 0) + 1), a), {});
      return [s, { rows: rows.length, category: count((r) => r.category ?? 'none'), question_kind: count((r) => r.extra_info!.question_kind) }];
    }),
  );
  const familiarity = m.entities.reduce<Record<string, number>>((a, e) => ((a[e.familiarity] = (a[e.familiarity] ?? 0) + 1), a), {});
  return { entities: m.entities.length, familiarity, splits, corpus: { pages: m.corpus.pages.length, images: m.corpus.images.length } };
}

/**
 * Writes FVQA-mini to `dir`: train/test/heldout/sft.parquet (FVQA schema), corpus/ (search corpus
 * folder format, src/search/corpus.ts), one folder per drill world under drill-corpora/ (the corpus a
 * drill row's searches run on: `drillWorldOf(row)` names it) and world.json (config, entities,
 * statistics, the hazy familiar facts and the drill worlds when there are any). Same world, same bytes.
 */
export async function writeFvqaMiniDir(m: FvqaMini, dir: string, onProgress?: ProgressCallback): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const s of SPLITS) {
    await writeParquetFile(join(dir, `${s}.parquet`), m.splits[s], {
      onProgress: (p) => onProgress?.({ ...p, phase: `write ${s}.parquet`, total: m.splits[s].length }),
    });
  }
  await writeCorpusDir(join(dir, 'corpus'), m.corpus);
  onProgress?.({ phase: 'write corpus', done: m.corpus.images.length, total: m.corpus.images.length, unit: 'images' });
  const drillWorlds = Object.keys(m.drillCorpora);
  for (const [k, key] of drillWorlds.entries()) {
    await writeCorpusDir(join(dir, 'drill-corpora', key), m.drillCorpora[key]);
    onProgress?.({ phase: 'write drill corpora', done: k + 1, total: drillWorlds.length, unit: 'corpora' });
  }
  const hazy = m.hazyFacts.length ? { hazyFacts: m.hazyFacts } : {};
  const drills = drillWorlds.length ? { drillWorlds } : {};
  await writeFile(join(dir, 'world.json'), JSON.stringify({ config: m.config, stats: fvqaMiniStats(m), entities: m.entities, ...hazy, ...drills }, null, 1) + '\n');
}

/** An AsyncBuffer over a local file or, for http(s) URLs, HTTP Range reads. */
export function openParquetSource(fileOrUrl: string, onBytes?: (n: number) => void): Promise<AsyncBuffer> {
  return /^https?:\/\//.test(fileOrUrl) ? rangeBufferFromUrl(fileOrUrl, { onBytes }) : asyncBufferFromFile(fileOrUrl);
}

/** Streams a JSONL file's lines and resolves image paths against its folder. */
export function jsonlFileBatches(path: string, opts: JsonlOptions = {}): AsyncGenerator<FvqaRow[]> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  const root = dirname(path);
  return jsonlBatches(lines, async (p) => new Uint8Array(await readFile(join(root, p))), { idPrefix: basename(path).replace(/\.jsonl$/, ''), ...opts });
}
