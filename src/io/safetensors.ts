/**
 * safetensors reader and writer, exact to the format of huggingface/safetensors (README "Format" and
 * the Rust crate `safetensors`, src/tensor.rs):
 *
 *   8 bytes   N, u64 little-endian: byte length of the header
 *   N bytes   UTF-8 JSON object: { "__metadata__"?: {string: string},
 *                                  "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} }
 *             offsets are relative to the start of the data section; the reference writer pads the
 *             JSON with spaces to a multiple of 8 bytes
 *   rest      data section: tensors in C order, little-endian
 *
 * Validation mirrors `Metadata::validate` and `SafeTensors::read_metadata` of the Rust crate: the header
 * must fit in the file and be at most 100 MB; tensors, sorted by offsets, must tile the data section
 * exactly (first begins at 0, each begins where the previous ends, end >= begin, the last ends at the
 * end of the file); `end - begin` must equal the element count times the dtype size. Any violation
 * raises a SafetensorsError naming the file, the tensor and the problem: never a partial load.
 *
 * Sources: an ArrayBuffer/Uint8Array, a Blob (sliced per tensor, never read whole), or a URL read with
 * HTTP Range requests (header first, then each tensor's byte range when asked for). Sharded
 * checkpoints (`model.safetensors.index.json`) are resolved by `openShardedSafetensors`.
 * Typed-array views assume a little-endian host (every platform WebGPU runs on).
 */

import { bf16ToF32, f16ToF32, numel } from '../engine/dtype.js';

/** Element types of the format, in the Rust crate's `Dtype` order (increasing alignment). */
export const DTYPES = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const;
export type Dtype = (typeof DTYPES)[number];

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  C64: 8,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** The Rust crate refuses headers above this size (bytes); so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

/** A malformed or mismatching safetensors file. `tensor` is set when one tensor is at fault. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly tensor?: string,
  ) {
    super(`${file}${tensor !== undefined ? `: tensor "${tensor}"` : ''}: ${problem}`);
    this.name = 'SafetensorsError';
  }
}

/** One header entry. `dataOffsets` are byte offsets relative to the start of the data section. */
export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  dataOffsets: [number, number];
}

/** A tensor's raw bytes (little-endian, C order) with its dtype and shape. */
export interface RawTensor {
  dtype: Dtype;
  shape: number[];
  data: Uint8Array;
}

/** Parsed header. `dataStart` = 8 + N is the file offset (bytes) of the data section. */
export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string> | undefined;
  dataStart: number;
  fileSize: number;
}

function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

function isIndex(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Reads N from the first 8 bytes and checks that the header fits in a file of `fileSize` bytes.
 * @returns N, the header length in bytes.
 * @throws SafetensorsError when the file is shorter than 8 bytes, N exceeds MAX_HEADER_BYTES, or
 *   8 + N exceeds the file.
 */
export function readHeaderLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || first8.byteLength < 8) {
    throw new SafetensorsError(file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8n + n > BigInt(fileSize)) {
    throw new SafetensorsError(file, `header length ${n} goes beyond the end of the ${fileSize}-byte file`);
  }
  return Number(n);
}

/**
 * Parses and validates the JSON header (the N bytes after the length) of a file of `fileSize` bytes.
 * @throws SafetensorsError for invalid UTF-8, non-JSON or non-object header, a non-string metadata
 *   value, an unknown dtype, a malformed shape or data_offsets, overlapping/gapped/out-of-range
 *   offsets, a byte size that disagrees with dtype x shape, or data that does not end the file.
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(file, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError(file, 'header is not a JSON object');
  }
  let metadata: Record<string, string> | undefined;
  const entries: [string, TensorInfo][] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new SafetensorsError(file, '__metadata__ is not an object of strings');
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__ value of "${k}" is not a string`);
      }
      metadata = value as Record<string, string>;
      continue;
    }
    entries.push([name, parseTensorInfo(value, file, name)]);
  }
  // The crate sorts by offsets before validating: header order is free, the byte layout is not.
  entries.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  const dataStart = 8 + headerBytes.byteLength;
  const dataSize = fileSize - dataStart;
  let cursor = 0;
  for (const [name, info] of entries) {
    const [begin, end] = info.dataOffsets;
    if (end < begin) throw new SafetensorsError(file, `data_offsets [${begin}, ${end}] end before they begin`, name);
    if (begin < cursor) {
      throw new SafetensorsError(file, `data_offsets [${begin}, ${end}] overlap the previous tensor, which ends at ${cursor}`, name);
    }
    if (begin > cursor) {
      throw new SafetensorsError(file, `data_offsets [${begin}, ${end}] leave a gap after byte ${cursor} of the data section`, name);
    }
    if (end > dataSize) {
      throw new SafetensorsError(file, `data_offsets [${begin}, ${end}] go beyond the ${dataSize}-byte data section`, name);
    }
    const expected = numel(info.shape) * DTYPE_BYTES[info.dtype];
    if (!Number.isSafeInteger(expected)) throw new SafetensorsError(file, `shape [${info.shape}] overflows`, name);
    if (end - begin !== expected) {
      throw new SafetensorsError(
        file,
        `${info.dtype} shape [${info.shape}] needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
        name,
      );
    }
    cursor = end;
  }
  if (cursor !== dataSize) {
    throw new SafetensorsError(file, `tensors cover ${cursor} bytes but the data section has ${dataSize} (file not fully covered)`);
  }
  return { tensors: new Map(entries), metadata, dataStart, fileSize };
}

function parseTensorInfo(value: unknown, file: string, name: string): TensorInfo {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SafetensorsError(file, 'entry is not an object with dtype, shape and data_offsets', name);
  }
  const v = value as Record<string, unknown>;
  if (!isDtype(v.dtype)) throw new SafetensorsError(file, `unknown dtype ${JSON.stringify(v.dtype)}`, name);
  if (!Array.isArray(v.shape) || !v.shape.every(isIndex)) {
    throw new SafetensorsError(file, `shape ${JSON.stringify(v.shape)} is not a list of non-negative integers`, name);
  }
  const o = v.data_offsets;
  if (!Array.isArray(o) || o.length !== 2 || !isIndex(o[0]) || !isIndex(o[1])) {
    throw new SafetensorsError(file, `data_offsets ${JSON.stringify(o)} are not two non-negative integers`, name);
  }
  return { dtype: v.dtype, shape: [...v.shape], dataOffsets: [o[0], o[1]] };
}

/** Reads byte ranges of one file. `read(begin, end)` returns bytes [begin, end) of the file. */
export interface ByteSource {
  /** Name used in error messages (path or URL). */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  read(begin: number, end: number): Promise<Uint8Array>;
}

/** Common interface of single-file and sharded readers, the one model loaders consume. */
export interface TensorSource {
  /** Tensor names, in data order (per shard for sharded checkpoints). */
  names(): string[];
  has(name: string): boolean;
  /** Header entry. @throws SafetensorsError naming the file when `name` is missing. */
  info(name: string): TensorInfo;
  /** @throws SafetensorsError when missing or when its shape differs from `shape`. */
  expectTensor(name: string, shape: readonly number[]): TensorInfo;
  /** Raw bytes of a tensor; reads only its byte range. */
  read(name: string): Promise<RawTensor>;
  /** A floating-point tensor (F32, F16, BF16, F64) converted to Float32Array, shape unchanged. */
  readF32(name: string): Promise<Float32Array>;
}

/** A validated single safetensors file; tensors are read lazily from its ByteSource. */
export class SafetensorsReader implements TensorSource {
  private constructor(
    readonly source: ByteSource,
    readonly header: SafetensorsHeader,
  ) {}

  /**
   * Reads and validates the header (8 bytes, then N bytes) of `source`; tensor data stays unread.
   * @throws SafetensorsError for every malformed-header case of `readHeaderLength` and `parseHeader`.
   */
  static async open(source: ByteSource): Promise<SafetensorsReader> {
    if (source.size < 8) readHeaderLength(new Uint8Array(0), source.size, source.name);
    const n = readHeaderLength(await source.read(0, 8), source.size, source.name);
    const header = parseHeader(await source.read(8, 8 + n), source.size, source.name);
    return new SafetensorsReader(source, header);
  }

  get file(): string {
    return this.source.name;
  }

  get metadata(): Record<string, string> | undefined {
    return this.header.metadata;
  }

  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.header.tensors.get(name);
    if (!info) throw new SafetensorsError(this.file, 'missing: the file has no tensor of this name', name);
    return info;
  }

  expectTensor(name: string, shape: readonly number[]): TensorInfo {
    return checkShape(this.info(name), shape, this.file, name);
  }

  async read(name: string): Promise<RawTensor> {
    const info = this.info(name);
    const [b, e] = info.dataOffsets;
    const data = await this.source.read(this.header.dataStart + b, this.header.dataStart + e);
    if (data.byteLength !== e - b) {
      throw new SafetensorsError(this.file, `read ${data.byteLength} bytes, expected ${e - b}`, name);
    }
    return { dtype: info.dtype, shape: [...info.shape], data };
  }

  async readF32(name: string): Promise<Float32Array> {
    return toFloat32(await this.read(name), this.file, name);
  }
}

function checkShape(info: TensorInfo, shape: readonly number[], file: string, name: string): TensorInfo {
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw new SafetensorsError(file, `shape [${info.shape}] in the file, expected [${shape}]`, name);
  }
  return info;
}

/** ByteSource over bytes in memory (no copy: returns views). */
export function bufferSource(bytes: ArrayBuffer | Uint8Array, name = 'buffer'): ByteSource {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    name,
    size: u8.byteLength,
    read: async (b, e) => u8.subarray(b, e),
  };
}

/** ByteSource over a Blob/File: each read slices the blob, so the whole file is never loaded. */
export function blobSource(blob: Blob, name = blob instanceof File ? blob.name : 'blob'): ByteSource {
  return {
    name,
    size: blob.size,
    read: async (b, e) => new Uint8Array(await blob.slice(b, e).arrayBuffer()),
  };
}

/**
 * ByteSource over a URL with HTTP Range requests (RFC 9110 §14): the total size comes from the
 * Content-Range of the first request (bytes 0-7), so nothing beyond the asked ranges is downloaded.
 * @throws SafetensorsError if the server answers without 206 Partial Content (no Range support) or with
 *   a Content-Range that does not match the request.
 */
export async function urlSource(url: string, init: RequestInit = {}, fetchImpl: typeof fetch = fetch): Promise<ByteSource> {
  const get = async (b: number, e: number): Promise<{ bytes: Uint8Array; total: number }> => {
    const headers = new Headers(init.headers);
    headers.set('Range', `bytes=${b}-${e - 1}`);
    const res = await fetchImpl(url, { ...init, headers });
    if (res.status !== 206) {
      await res.body?.cancel();
      throw new SafetensorsError(url, `Range request for bytes ${b}-${e - 1} answered ${res.status}, not 206 Partial Content`);
    }
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('Content-Range') ?? '');
    if (!m || Number(m[1]) !== b || Number(m[2]) !== e - 1) {
      await res.body?.cancel();
      throw new SafetensorsError(url, `Content-Range "${res.headers.get('Content-Range')}" does not match bytes ${b}-${e - 1}`);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.byteLength !== e - b) {
      throw new SafetensorsError(url, `got ${bytes.byteLength} bytes for range ${b}-${e - 1}`);
    }
    return { bytes, total: Number(m[3]) };
  };
  const first = await get(0, 8).catch((err: unknown) => {
    // A file shorter than 8 bytes makes the server answer 416 Range Not Satisfiable.
    if (err instanceof SafetensorsError && /answered 416/.test(err.problem)) {
      throw new SafetensorsError(url, 'file is shorter than the 8-byte header length');
    }
    throw err;
  });
  const size = first.total;
  return {
    name: url,
    size,
    read: async (b, e) => {
      if (b === 0 && e === 8) return first.bytes;
      if (e <= b) return new Uint8Array(0);
      return (await get(b, e)).bytes;
    },
  };
}

/** Opens safetensors bytes in memory. @throws SafetensorsError when malformed. */
export function openSafetensorsBuffer(bytes: ArrayBuffer | Uint8Array, name?: string): Promise<SafetensorsReader> {
  return SafetensorsReader.open(bufferSource(bytes, name));
}

/** Opens a safetensors Blob/File, reading only the header now. @throws SafetensorsError when malformed. */
export function openSafetensorsBlob(blob: Blob, name?: string): Promise<SafetensorsReader> {
  return SafetensorsReader.open(blobSource(blob, name));
}

/** Opens a safetensors URL with Range requests, reading only the header now. @throws SafetensorsError */
export async function openSafetensorsUrl(url: string, init?: RequestInit, fetchImpl?: typeof fetch): Promise<SafetensorsReader> {
  return SafetensorsReader.open(await urlSource(url, init, fetchImpl));
}

/** `model.safetensors.index.json` as written by transformers' `save_pretrained`. */
export interface ShardIndex {
  metadata?: { total_size?: number; [k: string]: unknown };
  weight_map: Record<string, string>;
}

/** Parses and checks the shape of a shard index. @throws SafetensorsError naming `file`. */
export function parseShardIndex(text: string, file = 'model.safetensors.index.json'): ShardIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(file, `index is not valid JSON (${(e as Error).message})`);
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new SafetensorsError(file, 'index has no weight_map object');
  }
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== 'string' || shard === '') throw new SafetensorsError(file, `weight_map value is not a file name`, name);
  }
  return json as ShardIndex;
}

/** A sharded checkpoint: each tensor read from the shard the index maps it to. */
export class ShardedSafetensors implements TensorSource {
  constructor(
    readonly indexFile: string,
    readonly index: ShardIndex,
    /** Shard file name -> its reader. */
    readonly shards: ReadonlyMap<string, SafetensorsReader>,
  ) {}

  names(): string[] {
    return Object.keys(this.index.weight_map);
  }

  has(name: string): boolean {
    return Object.hasOwn(this.index.weight_map, name);
  }

  private shardOf(name: string): SafetensorsReader {
    const shard = this.has(name) ? this.index.weight_map[name] : undefined;
    if (shard === undefined) throw new SafetensorsError(this.indexFile, 'missing: not in the weight_map', name);
    return this.shards.get(shard)!;
  }

  info(name: string): TensorInfo {
    return this.shardOf(name).info(name);
  }

  expectTensor(name: string, shape: readonly number[]): TensorInfo {
    return this.shardOf(name).expectTensor(name, shape);
  }

  read(name: string): Promise<RawTensor> {
    return this.shardOf(name).read(name);
  }

  readF32(name: string): Promise<Float32Array> {
    return this.shardOf(name).readF32(name);
  }
}

/**
 * Opens a sharded checkpoint from its index (text of `model.safetensors.index.json`) and a function
 * that opens a shard by file name (relative to the index). Opens every shard's header and checks that
 * each tensor of the weight_map is in the shard named for it.
 * @throws SafetensorsError naming the index or shard and the tensor for a bad index, a malformed
 *   shard, or a tensor the weight_map places in a shard that lacks it.
 */
export async function openShardedSafetensors(
  indexText: string,
  openShard: (file: string) => Promise<SafetensorsReader>,
  indexFile = 'model.safetensors.index.json',
): Promise<ShardedSafetensors> {
  const index = parseShardIndex(indexText, indexFile);
  const files = [...new Set(Object.values(index.weight_map))];
  const readers = await Promise.all(files.map((f) => openShard(f)));
  const shards = new Map(files.map((f, i) => [f, readers[i]]));
  for (const [name, file] of Object.entries(index.weight_map)) {
    if (!shards.get(file)!.has(name)) {
      throw new SafetensorsError(file, `missing: ${indexFile} places it in this shard, which lacks it`, name);
    }
  }
  return new ShardedSafetensors(indexFile, index, shards);
}

// ---- dtype conversion ----

/** Typed view of `data` (copied when misaligned for the element size). */
function aligned(data: Uint8Array, bytesPer: number): ArrayBuffer {
  if (data.byteOffset % bytesPer === 0 && data.buffer instanceof ArrayBuffer) {
    return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength
      ? data.buffer
      : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  }
  // A copy: `new Uint8Array(view)` always copies, where a Node Buffer's slice() would share memory.
  return new Uint8Array(data).buffer;
}

/**
 * Converts a floating-point tensor (F32, F64, F16, BF16) to a Float32Array of numel(shape) values.
 * @throws SafetensorsError naming `file` and `name` for any other dtype.
 */
export function toFloat32(t: RawTensor, file = 'tensor', name?: string): Float32Array {
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(aligned(t.data, 4));
    case 'F64':
      return Float32Array.from(new Float64Array(aligned(t.data, 8)));
    case 'F16':
      return f16ToF32(new Uint16Array(aligned(t.data, 2)));
    case 'BF16':
      return bf16ToF32(new Uint16Array(aligned(t.data, 2)));
    default:
      throw new SafetensorsError(file, `dtype ${t.dtype} is not a floating-point type convertible to f32`, name);
  }
}

// ---- writer ----

/** A tensor to write: `data` holds numel(shape) * DTYPE_BYTES[dtype] little-endian bytes. */
export interface TensorToWrite {
  dtype: Dtype;
  shape: readonly number[];
  data: ArrayBufferView;
}

function compareUtf8(a: string, b: string): number {
  // Rust orders String keys by UTF-8 bytes; UTF-16 code-unit order differs above U+D7FF.
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * Serializes tensors the way the reference writer (`safetensors::serialize`, used by
 * `safetensors.torch.save_file`) does: tensors ordered by descending dtype alignment then name,
 * compact JSON with `__metadata__` first, header padded with spaces to a multiple of 8 bytes.
 * Returns the parts [length + header, data of each tensor] (for `new Blob(parts)` without a copy).
 * @throws SafetensorsError if a tensor's byte length disagrees with its dtype and shape, a shape is
 *   not a list of non-negative integers, or a name is `__metadata__`.
 */
export function safetensorsParts(
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>,
  file = 'output',
): Uint8Array<ArrayBuffer>[] {
  const list = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))];
  list.sort(
    ([an, a], [bn, b]) => DTYPES.indexOf(b.dtype) - DTYPES.indexOf(a.dtype) || compareUtf8(an, bn),
  );
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const datas: Uint8Array<ArrayBuffer>[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new SafetensorsError(file, 'the name __metadata__ is reserved', name);
    if (!isDtype(t.dtype)) throw new SafetensorsError(file, `unknown dtype ${JSON.stringify(t.dtype)}`, name);
    if (!t.shape.every(isIndex)) throw new SafetensorsError(file, `shape [${t.shape}] is not non-negative integers`, name);
    const n = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== n) {
      throw new SafetensorsError(file, `${t.dtype} shape [${t.shape}] needs ${n} bytes, data has ${t.data.byteLength}`, name);
    }
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + n] };
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    // Blob parts must not be shared memory: copy only in that case.
    datas.push(bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice());
    offset += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return [head, ...datas];
}

/** `safetensorsParts` concatenated into one buffer (the file's bytes). */
export function serializeSafetensors(
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>,
  file?: string,
): Uint8Array<ArrayBuffer> {
  const parts = safetensorsParts(tensors, metadata, file);
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
