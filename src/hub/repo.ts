/**
 * A model (or dataset) repository on a hub endpoint: resolves files, downloads them through the cache, and opens
 * a model's weights (single `model.safetensors` or sharded `model.safetensors.index.json`, the two layouts
 * transformers' `save_pretrained` writes and `from_pretrained` reads).
 */
import {
  openSafetensorsBlob,
  openSafetensorsUrl,
  openShardedSafetensors,
  type SafetensorsReader,
  type TensorSource,
} from '../io/safetensors.js';
import type { HubCache } from './cache.js';
import { downloadFile, HubHttpError, type DownloadProgress } from './download.js';
import { DEFAULT_HUB_ENDPOINT, parseHfRef, resolveUrl, type HfRef } from './ref.js';

export interface HubRepoOptions {
  /** Browser: `new IdbHubCache()`; Node: `new FsHubCache(dir)` (both in src/storage). */
  cache: HubCache;
  /** Default https://huggingface.co; a local mirror for offline labs. */
  endpoint?: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Extra request headers (e.g. `Authorization: Bearer hf_...` for gated repos). */
  headers?: HeadersInit;
  fetch?: typeof fetch;
  retries?: number;
  retryDelayMs?: number;
  chunkBytes?: number;
  signal?: AbortSignal;
}

export class HubRepo {
  readonly ref: HfRef;

  /**
   * @param ref `hf:ORG/NAME[@REVISION]` (a model repository) or a parsed reference (`repoType: 'dataset'` for a dataset's).
   * @throws Error for an invalid reference.
   */
  constructor(
    ref: string | HfRef,
    readonly opts: HubRepoOptions,
  ) {
    this.ref = typeof ref === 'string' ? parseHfRef(ref) : ref;
  }

  /** Resolve URL of `file` at this repo's revision. */
  url(file: string): string {
    return resolveUrl(this.ref, file, this.opts.endpoint ?? DEFAULT_HUB_ENDPOINT);
  }

  /** The file, from the cache or downloaded into it (see downloadFile for errors). */
  download(file: string): Promise<Blob> {
    const { cache, onProgress, headers, fetch, retries, retryDelayMs, chunkBytes, signal } = this.opts;
    return downloadFile(this.url(file), {
      cache,
      // A dataset and a model may share ORG/NAME: their cache entries must not.
      key: { repo: this.ref.repoType === 'dataset' ? `datasets/${this.ref.repo}` : this.ref.repo, revision: this.ref.revision, file },
      onProgress,
      headers,
      fetch,
      retries,
      retryDelayMs,
      chunkBytes,
      signal,
    });
  }

  /** A JSON file (config.json, tokenizer.json, ...). @throws Error naming the file when not JSON. */
  async json<T = unknown>(file: string): Promise<T> {
    const text = await (await this.download(file)).text();
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new Error(`${this.url(file)}: not valid JSON (${(e as Error).message})`);
    }
  }

  /** A safetensors file, downloaded (cached) then read by slices. @throws SafetensorsError when malformed. */
  async safetensors(file = 'model.safetensors'): Promise<SafetensorsReader> {
    return openSafetensorsBlob(await this.download(file), this.url(file));
  }

  /** A safetensors file read straight from the endpoint with Range requests, bypassing the cache. */
  streamSafetensors(file = 'model.safetensors'): Promise<SafetensorsReader> {
    return openSafetensorsUrl(this.url(file), { headers: this.opts.headers, signal: this.opts.signal }, this.opts.fetch);
  }

  /**
   * The model's weights: `model.safetensors.index.json` and its shards when the repo has an index,
   * else `model.safetensors`.
   * @throws HubHttpError when neither exists, SafetensorsError for a malformed index or file.
   */
  async weights(): Promise<TensorSource> {
    const index = 'model.safetensors.index.json';
    let text: string;
    try {
      text = await (await this.download(index)).text();
    } catch (e) {
      if (e instanceof HubHttpError && e.status === 404) return this.safetensors();
      throw e;
    }
    // Shard names in the weight_map are relative to the index, which sits at the repo root.
    return openShardedSafetensors(text, (shard) => this.safetensors(shard), this.url(index));
  }
}
