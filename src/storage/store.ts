/**
 * The dataset store: named datasets of FVQA rows (src/data/types.ts), kept as chunks of rows plus one
 * binary blob of image bytes per chunk, streamed back in batches for training, listed with sizes.
 * Two backends share this interface: IndexedDB (browser, idb-store.ts) and the filesystem (Node,
 * fs-store.ts). Writes are atomic: a dataset becomes visible (or replaces the old one) only when all
 * its chunks are stored; a failed or interrupted import leaves the store as it was.
 */
import type { Category, FvqaRow, ProgressCallback } from '../data/types.js';

/**
 * Store layout version. v1: dataset records without per-category counts. v2 (current): records carry
 * `categories`; the v1 -> v2 migration counts them from the stored rows.
 */
export const STORE_SCHEMA_VERSION = 2;

/** Rows per stored chunk (default). */
export const DEFAULT_CHUNK_ROWS = 64;

/** One dataset as listed. Sizes in bytes. */
export interface DatasetInfo {
  name: string;
  rows: number;
  chunks: number;
  /** Bytes of row JSON plus image blobs as stored. */
  bytes: number;
  imageBytes: number;
  /** FVQA `category` counts; rows without a category count under "none". */
  categories: Record<Category | 'none', number>;
  /** Where the rows came from (a path, a URL, "fvqa-mini seed 1 train"). */
  source: string;
  /** ISO time of the import. */
  createdAt: string;
}

/** Options of `DatasetStore.write`. */
export interface WriteOptions {
  source: string;
  chunkRows?: number;
  onProgress?: ProgressCallback;
}

/** Common interface of the IndexedDB and filesystem stores. */
export interface DatasetStore {
  /** All committed datasets, by name. */
  list(): Promise<DatasetInfo[]>;
  /** One dataset, or null when absent. */
  info(name: string): Promise<DatasetInfo | null>;
  /**
   * Stores batches of rows as dataset `name`, atomically: on any error (bad row from the source,
   * quota) nothing of it remains and a previous dataset of that name is untouched.
   * @throws StoreQuotaError when storage is full; the error of `batches` when the source fails.
   */
  write(name: string, batches: AsyncIterable<FvqaRow[]> | Iterable<FvqaRow[]>, opts: WriteOptions): Promise<DatasetInfo>;
  /** Streams a dataset's rows in batches of `batchRows` (default: one chunk). @throws StoreError if absent. */
  rows(name: string, opts?: { batchRows?: number }): AsyncGenerator<FvqaRow[]>;
  /** Removes a dataset (no-op when absent). */
  delete(name: string): Promise<void>;
  close(): Promise<void>;
}

/** A store error that is not the caller's data: unknown dataset, newer schema, bad name. */
export class StoreError extends Error {
  override name = 'StoreError';
}

/** Storage is full. The store is unchanged: the partial import was removed. */
export class StoreQuotaError extends StoreError {
  override name = 'StoreQuotaError';
  constructor(dataset: string, detail: string) {
    super(`not enough storage to import "${dataset}" (${detail}); the store is unchanged. Free space or delete a dataset and retry.`);
  }
}

/** Dataset names double as folder names: letters, digits, '.', '_' and '-', at most 100. */
export function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name)) throw new StoreError(`invalid dataset name "${name}": use letters, digits, '.', '_' or '-'`);
}

/** A row as stored: image bytes replaced by their place in the chunk's blob. */
export type StoredRow = Omit<FvqaRow, 'images'> & { images: { offset: number; length: number; path: string | null }[] };

/** One chunk: rows (structured-clone / JSON safe) and the concatenated image bytes they point into. */
export interface StoredChunk {
  rows: StoredRow[];
  blob: Uint8Array;
}

/** Packs rows into a chunk. */
export function encodeChunk(rows: readonly FvqaRow[]): StoredChunk {
  let size = 0;
  for (const r of rows) for (const i of r.images) size += i.bytes.length;
  const blob = new Uint8Array(size);
  let offset = 0;
  const stored = rows.map((r) => ({
    ...r,
    images: r.images.map((i) => {
      blob.set(i.bytes, offset);
      const ref = { offset, length: i.bytes.length, path: i.path };
      offset += i.bytes.length;
      return ref;
    }),
  }));
  return { rows: stored, blob };
}

/** Unpacks a chunk; image bytes are copies, independent of the blob. */
export function decodeChunk(c: StoredChunk): FvqaRow[] {
  return c.rows.map((r) => ({ ...r, images: r.images.map((i) => ({ bytes: c.blob.slice(i.offset, i.offset + i.length), path: i.path })) }));
}

/** Category counts of some rows (for DatasetInfo). */
export function countCategories(rows: readonly { category: Category | null }[], into = emptyCategories()): DatasetInfo['categories'] {
  for (const r of rows) into[r.category ?? 'none']++;
  return into;
}

/**
 * Adds one stored chunk to a dataset's running totals (rows, bytes, image bytes, categories) and
 * reports progress: the bookkeeping both store backends share after writing a chunk.
 */
export function recordChunk(
  info: DatasetInfo, rows: readonly { category: Category | null }[], bytes: number, imageBytes: number,
  onProgress?: (p: { phase: string; done: number; total: null; unit: 'rows' }) => void,
): void {
  info.chunks++;
  info.rows += rows.length;
  info.bytes += bytes;
  info.imageBytes += imageBytes;
  countCategories(rows, info.categories);
  onProgress?.({ phase: 'store', done: info.rows, total: null, unit: 'rows' });
}

export function emptyCategories(): DatasetInfo['categories'] {
  return { search_free: 0, search_required: 0, none: 0 };
}

/** Re-batches a chunk stream into batches of `n` rows. */
export async function* rebatch(chunks: AsyncIterable<FvqaRow[]>, n: number): AsyncGenerator<FvqaRow[]> {
  let buf: FvqaRow[] = [];
  for await (const c of chunks) {
    buf.push(...c);
    while (buf.length >= n) {
      yield buf.slice(0, n);
      buf = buf.slice(n);
    }
  }
  if (buf.length) yield buf;
}

/** Splits incoming batches into chunks of `chunkRows` rows. */
export async function* chunked(batches: AsyncIterable<FvqaRow[]> | Iterable<FvqaRow[]>, chunkRows: number): AsyncGenerator<FvqaRow[]> {
  let buf: FvqaRow[] = [];
  for await (const b of batches) {
    buf.push(...b);
    while (buf.length >= chunkRows) {
      yield buf.slice(0, chunkRows);
      buf = buf.slice(chunkRows);
    }
  }
  if (buf.length) yield buf;
}

/** Wraps an array of rows as one batch source. */
export function batchesOf(rows: readonly FvqaRow[], n = DEFAULT_CHUNK_ROWS): FvqaRow[][] {
  const out: FvqaRow[][] = [];
  for (let i = 0; i < rows.length; i += n) out.push(rows.slice(i, i + n));
  return out;
}
