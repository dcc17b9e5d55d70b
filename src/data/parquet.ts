/**
 * FVQA parquet import and export: the veRL parquet schema MMSearch-R1 trains on (lmms-lab/FVQA,
 * the authors' mmsearch_r1/data/mini_data.pq): `prompt` list<struct<content, role>>,
 * `images` list<struct<bytes, path>>, `reward_model` struct<candidate_answers (JSON string),
 * ground_truth, style>, `data_source`, `image_urls`, `data_id`, `category`, plus veRL's `extra_info`.
 * Reading uses hyparquet over an AsyncBuffer (a file, a Blob or HTTP Range reads), one window of rows
 * at a time, so memory stays flat; writing uses hyparquet-writer, one row group per batch.
 */
import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer, type FileMetaData, type SchemaElement } from 'hyparquet';
import { ParquetWriter, type Writer } from 'hyparquet-writer';
import { DatasetFormatError, type FvqaRow, type ProgressCallback } from './types.js';
import { recordToRow } from './validate.js';

/** Columns an FVQA file must have; `data_id`, `category`, `image_urls`, `extra_info` are optional. */
export const REQUIRED_COLUMNS = ['prompt', 'images', 'reward_model', 'data_source'] as const;

const utf8Leaf = (name: string): SchemaElement => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
const listOf = (name: string, children: SchemaElement[]): SchemaElement[] => [
  { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  ...children,
];

/** The parquet schema we write (field order and nesting as in pyarrow's FVQA files). */
export function fvqaSchema(withExtraInfo: boolean): SchemaElement[] {
  const columns: SchemaElement[][] = [
    listOf('prompt', [{ name: 'element', repetition_type: 'OPTIONAL', num_children: 2 }, utf8Leaf('content'), utf8Leaf('role')]),
    listOf('images', [
      { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
      { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
      utf8Leaf('path'),
    ]),
    [{ name: 'reward_model', repetition_type: 'OPTIONAL', num_children: 3 }, utf8Leaf('candidate_answers'), utf8Leaf('ground_truth'), utf8Leaf('style')],
    [utf8Leaf('data_source')],
    listOf('image_urls', [utf8Leaf('element')]),
    [utf8Leaf('data_id')],
    [utf8Leaf('category')],
  ];
  if (withExtraInfo) {
    columns.push([
      { name: 'extra_info', repetition_type: 'OPTIONAL', num_children: 7 },
      utf8Leaf('split'),
      { name: 'index', type: 'INT64', repetition_type: 'OPTIONAL' },
      utf8Leaf('question'),
      utf8Leaf('question_kind'),
      utf8Leaf('entity_id'),
      utf8Leaf('attribute'),
      utf8Leaf('search_mode'),
    ]);
  }
  return [{ name: 'schema', repetition_type: 'REQUIRED', num_children: columns.length }, ...columns.flat()];
}

function columnData(rows: readonly FvqaRow[], withExtraInfo: boolean): { name: string; data: unknown[] }[] {
  const cols: { name: string; data: unknown[] }[] = [
    { name: 'prompt', data: rows.map((r) => r.prompt.map((m) => ({ content: m.content, role: m.role }))) },
    { name: 'images', data: rows.map((r) => r.images.map((i) => ({ bytes: i.bytes, path: i.path }))) },
    {
      name: 'reward_model',
      data: rows.map((r) => ({
        candidate_answers: JSON.stringify(r.reward_model.candidate_answers),
        ground_truth: r.reward_model.ground_truth,
        style: r.reward_model.style,
      })),
    },
    { name: 'data_source', data: rows.map((r) => r.data_source) },
    { name: 'image_urls', data: rows.map((r) => r.image_urls) },
    { name: 'data_id', data: rows.map((r) => r.data_id) },
    { name: 'category', data: rows.map((r) => r.category) },
  ];
  if (withExtraInfo) {
    cols.push({ name: 'extra_info', data: rows.map((r) => (r.extra_info ? { ...r.extra_info, index: BigInt(r.extra_info.index), search_mode: r.extra_info.search_mode ?? null } : null)) });
  }
  return cols;
}

/** Options for writing. */
export interface WriteOptions {
  /** Rows per row group (default 256): a reader needs about one row group in memory. */
  rowGroupRows?: number;
  /** Write veRL `extra_info` (default: when the first row has one). */
  extraInfo?: boolean;
  onProgress?: ProgressCallback;
}

/**
 * Writes rows as an FVQA parquet file through a hyparquet-writer `Writer` (a ByteWriter for a
 * buffer, `fileWriter` in Node). Accepts an async iterable so a store can stream its rows out.
 */
export async function writeFvqaParquet(rows: Iterable<FvqaRow> | AsyncIterable<FvqaRow>, writer: Writer, opts: WriteOptions = {}): Promise<number> {
  const groupRows = opts.rowGroupRows ?? 256;
  let pq: ParquetWriter | null = null;
  let withExtra = opts.extraInfo;
  let batch: FvqaRow[] = [];
  let done = 0;
  const flush = () => {
    if (batch.length === 0) return;
    withExtra ??= batch[0].extra_info !== null;
    pq ??= new ParquetWriter({ writer, schema: fvqaSchema(withExtra), createdBy: 'mmsearch-lab (hyparquet-writer)' });
    pq.write({ columnData: columnData(batch, withExtra) as Parameters<ParquetWriter['write']>[0]['columnData'], rowGroupSize: batch.length });
    done += batch.length;
    batch = [];
    opts.onProgress?.({ phase: 'export', done, total: null, unit: 'rows' });
  };
  for await (const row of rows) {
    batch.push(row);
    if (batch.length >= groupRows) flush();
  }
  flush();
  // An empty dataset still gets a valid file with the schema.
  pq ??= new ParquetWriter({ writer, schema: fvqaSchema(withExtra ?? false), createdBy: 'mmsearch-lab (hyparquet-writer)' });
  await pq.finish();
  return done;
}

/** Options for reading. */
export interface ReadOptions {
  /** Rows per batch handed to `onRows` (default 64); bounds memory together with the row-group size. */
  batchRows?: number;
  /** `data_id` prefix for rows without one (default 'row'). */
  idPrefix?: string;
  /** Decode every image (default true). */
  decodeImages?: boolean;
  onProgress?: ProgressCallback;
}

/** Row count, columns and row groups of an FVQA parquet file, after checking the schema. */
export interface FvqaFileInfo {
  rows: number;
  columns: string[];
  rowGroups: number;
  metadata: FileMetaData;
}

/**
 * Reads the footer and checks the top-level schema.
 * @throws DatasetFormatError (row null) for a truncated or non-parquet file, a missing column, or a
 *   column of the wrong shape.
 */
export async function inspectFvqaParquet(file: AsyncBuffer): Promise<FvqaFileInfo> {
  let metadata: FileMetaData;
  try {
    // 64 KiB covers the footer of most files; hyparquet fetches more when the footer is larger.
    metadata = await parquetMetadataAsync(file, { initialFetchSize: 1 << 16 });
  } catch (e) {
    throw new DatasetFormatError(null, null, `not a readable parquet file, or truncated (${(e as Error).message})`);
  }
  const top = topLevel(metadata.schema);
  for (const c of REQUIRED_COLUMNS) if (!top.has(c)) throw new DatasetFormatError(null, c, 'missing column');
  const expectGroup = (name: string, what: string) => {
    const el = top.get(name);
    if (el && !el.num_children) throw new DatasetFormatError(null, name, `wrong type: expected ${what}, got ${el.type}`);
  };
  expectGroup('prompt', 'list<struct<content, role>>');
  expectGroup('images', 'list<struct<bytes, path>>');
  expectGroup('reward_model', 'struct<ground_truth, candidate_answers, style>');
  const ds = top.get('data_source')!;
  if (ds.num_children || ds.type !== 'BYTE_ARRAY') throw new DatasetFormatError(null, 'data_source', `wrong type: expected string, got ${ds.type ?? 'a group'}`);
  return { rows: Number(metadata.num_rows), columns: [...top.keys()], rowGroups: metadata.row_groups.length, metadata };
}

function topLevel(schema: SchemaElement[]): Map<string, SchemaElement> {
  // Walk the flattened schema: children follow their parent, num_children tells how many.
  const out = new Map<string, SchemaElement>();
  let i = 1;
  const skip = (): void => {
    const el = schema[i++];
    for (let c = 0; c < (el.num_children ?? 0); c++) skip();
  };
  for (let c = 0; c < (schema[0].num_children ?? 0); c++) {
    out.set(schema[i].name, schema[i]);
    skip();
  }
  return out;
}

/**
 * Streams the rows of an FVQA parquet file, validated and converted, one batch at a time; only the
 * footer and the current window of rows are in memory.
 * @param file an AsyncBuffer: `asyncBufferFromFile` (Node), `bufferFromBytes`, or `rangeBufferFromUrl`.
 * @throws DatasetFormatError naming row and field for bad rows, or the row range for truncated data.
 */
export async function* fvqaParquetBatches(file: AsyncBuffer, opts: ReadOptions = {}): AsyncGenerator<FvqaRow[], FvqaFileInfo> {
  const info = await inspectFvqaParquet(file);
  const batchRows = opts.batchRows ?? 64;
  const wanted = info.columns.filter((c) => ['prompt', 'images', 'reward_model', 'data_source', 'image_urls', 'data_id', 'category', 'extra_info'].includes(c));
  let start = 0;
  for (const rg of info.metadata.row_groups) {
    const rgEnd = start + Number(rg.num_rows);
    for (let s = start; s < rgEnd; s += batchRows) {
      const e = Math.min(rgEnd, s + batchRows);
      let records: Record<string, unknown>[];
      try {
        records = await parquetReadObjects({ file, metadata: info.metadata, columns: wanted, rowStart: s, rowEnd: e, utf8: false });
      } catch (err) {
        throw new DatasetFormatError(s, null, `cannot read rows ${s}-${e - 1}: file truncated or corrupt (${(err as Error).message})`);
      }
      if (records.length !== e - s) throw new DatasetFormatError(s, null, `expected ${e - s} rows, read ${records.length}: file truncated`);
      yield records.map((rec, k) => recordToRow(rec, s + k, { idPrefix: opts.idPrefix ?? 'row', decodeImages: opts.decodeImages }));
      opts.onProgress?.({ phase: 'import', done: e, total: info.rows, unit: 'rows' });
    }
    start = rgEnd;
  }
  return info;
}

/** Callback form of `fvqaParquetBatches`: `onRows(batch, firstRow)` is awaited for each batch. */
export async function readFvqaParquet(
  file: AsyncBuffer,
  onRows: (rows: FvqaRow[], firstRow: number) => Promise<void> | void,
  opts: ReadOptions = {},
): Promise<FvqaFileInfo> {
  const it = fvqaParquetBatches(file, opts);
  let first = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
    await onRows(r.value, first);
    first += r.value.length;
  }
}

/** An AsyncBuffer over an in-memory byte array. */
export function bufferFromBytes(bytes: Uint8Array): AsyncBuffer {
  return {
    byteLength: bytes.byteLength,
    slice: (s: number, e?: number) => bytes.slice(s, e).buffer as ArrayBuffer,
  };
}

/** An AsyncBuffer over a Blob or File (browser file picker): slices are read on demand, not the whole file. */
export function bufferFromBlob(blob: Blob): AsyncBuffer {
  return { byteLength: blob.size, slice: (s: number, e?: number) => blob.slice(s, e).arrayBuffer() };
}

/**
 * An AsyncBuffer that reads a remote file with HTTP Range requests, so only the footer and the
 * requested row windows are fetched (the hub's 1.5 GB fvqa_train.parquet streams in slices).
 * @param onBytes called with the total bytes fetched so far (for progress).
 * @throws Error when the server does not answer a Range request with 206 Partial Content.
 */
export async function rangeBufferFromUrl(url: string, opts: { fetch?: typeof fetch; onBytes?: (fetched: number) => void } = {}): Promise<AsyncBuffer> {
  const f = opts.fetch ?? globalThis.fetch;
  const head = await f(url, { method: 'HEAD' });
  if (!head.ok) throw new Error(`${url}: HTTP ${head.status}`);
  const length = Number(head.headers.get('content-length'));
  if (!Number.isFinite(length) || length <= 0) throw new Error(`${url}: no Content-Length; cannot read by ranges`);
  let fetched = 0;
  return {
    byteLength: length,
    async slice(start: number, end?: number) {
      const last = (end ?? length) - 1;
      const res = await f(url, { headers: { Range: `bytes=${start}-${last}` } });
      if (res.status !== 206) throw new Error(`${url}: server answered a Range request with HTTP ${res.status}, not 206; it cannot be streamed`);
      const buf = await res.arrayBuffer();
      if (buf.byteLength !== last - start + 1) throw new Error(`${url}: asked for ${last - start + 1} bytes, got ${buf.byteLength}`);
      fetched += buf.byteLength;
      opts.onBytes?.(fetched);
      return buf;
    },
  };
}
