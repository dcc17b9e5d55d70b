/**
 * Resumable, cached, size-checked file download (browser and Node: only `fetch` and streams).
 *
 * 1. HEAD the URL for the remote version (Content-Length, ETag). Offline (fetch throws) with a
 *    complete cache entry: serve the cache.
 * 2. A complete cache entry of the same version is served without a body request (a reload never
 *    downloads twice). A partial entry of the same version resumes where it stopped.
 * 3. GET with `Range: bytes=<stored>-` and `If-Range: <etag>` (RFC 9110 §13.1.5, §14): a 206 must
 *    start at the asked offset and report the same total; a 200 means the server ignored the range
 *    (its already-stored prefix is skipped) or the file changed (the entry restarts).
 * 4. Bytes are appended to the cache in chunks as they arrive; a dropped connection flushes what
 *    arrived and retries from there (up to `retries` attempts in a row without progress).
 * 5. The cache entry is only marked complete, and returned, when its size equals the remote size.
 */
import { keyString, sameVersion, type CacheKey, type HubCache, type RemoteVersion } from './cache.js';

/** Progress of one file. Bytes are file bytes; `loaded` never decreases unless the remote file changed mid-download. */
export interface DownloadProgress {
  /** `ORG/NAME@revision/file` */
  file: string;
  /** Bytes of the file held so far (cached + downloaded). */
  loaded: number;
  /** File size in bytes. */
  total: number;
  /** Download rate of this call, bytes per second (0 before any byte arrives). */
  bytesPerSecond: number;
  /** Seconds left at the current rate; undefined before the rate is known. */
  etaSeconds: number | undefined;
  /** True for the last report, when the file is complete. */
  done: boolean;
  /** True when the file came from the cache without downloading. */
  fromCache: boolean;
}

export interface DownloadOptions {
  cache: HubCache;
  key: CacheKey;
  onProgress?: (p: DownloadProgress) => void;
  /** Extra request headers (e.g. Authorization for gated repos). */
  headers?: HeadersInit;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Failed attempts in a row (no byte received) before giving up; default 5. */
  retries?: number;
  /** Wait before retry n (1-based) is n * retryDelayMs; default 250 ms. */
  retryDelayMs?: number;
  /** Size in bytes of each cache append (the last one of a response may be smaller); default 4 MiB. */
  chunkBytes?: number;
}

/** The server answered with an HTTP error status (404 for a missing file, 401/403 for gated repos). */
export class HubHttpError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`${url}: HTTP ${status}`);
    this.name = 'HubHttpError';
  }
}

/** The bytes received do not add up to the file the server announced; nothing partial is kept as complete. */
export class HubIntegrityError extends Error {
  constructor(
    readonly url: string,
    problem: string,
  ) {
    super(`${url}: ${problem}`);
    this.name = 'HubIntegrityError';
  }
}

const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

function versionOf(res: Response, url: string): RemoteVersion {
  const len = res.headers.get('Content-Length');
  if (len === null || !/^\d+$/.test(len)) throw new HubIntegrityError(url, 'no Content-Length: the download could not be verified');
  return { size: Number(len), etag: res.headers.get('ETag') ?? undefined };
}

/**
 * Downloads `url` into `opts.cache` under `opts.key` (or serves it from there) and returns the file.
 * @returns the complete file as a Blob of exactly the remote size in bytes.
 * @throws HubHttpError for an HTTP error status (after retries for 5xx/429), HubIntegrityError when the
 *   server's ranges or sizes do not add up, the last network error after `retries` failed attempts,
 *   or the abort reason when `signal` aborts.
 */
export async function downloadFile(url: string, opts: DownloadOptions): Promise<Blob> {
  const { cache, key } = opts;
  const fetchImpl = opts.fetch ?? fetch;
  const retries = opts.retries ?? 5;
  const delay = opts.retryDelayMs ?? 250;
  const chunkBytes = opts.chunkBytes ?? 4 << 20;
  const name = keyString(key);
  const report = (loaded: number, total: number, rate: number, done: boolean, fromCache: boolean) =>
    opts.onProgress?.({ file: name, loaded, total, bytesPerSecond: rate, etaSeconds: rate > 0 ? (total - loaded) / rate : done ? 0 : undefined, done, fromCache });
  const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

  const state = await cache.state(key);
  let remote: RemoteVersion;
  try {
    const res = await fetchImpl(url, { method: 'HEAD', headers: opts.headers, signal: opts.signal });
    if (!res.ok) throw new HubHttpError(url, res.status);
    remote = versionOf(res, url);
  } catch (e) {
    // Offline (a network error, not an HTTP answer): a complete cached copy is still the file.
    if (state?.complete && !(e instanceof HubHttpError) && !(e instanceof HubIntegrityError) && !opts.signal?.aborted) {
      report(state.version.size, state.version.size, 0, true, true);
      return cache.get(key);
    }
    throw e;
  }
  let offset = 0;
  if (state && sameVersion(state.version, remote)) {
    if (state.complete) {
      report(remote.size, remote.size, 0, true, true);
      return cache.get(key);
    }
    offset = state.stored;
  } else {
    await cache.reset(key, remote);
  }

  const t0 = performance.now();
  let received = 0;
  const rate = () => {
    const s = (performance.now() - t0) / 1000;
    return s > 0 ? received / s : 0;
  };
  let failures = 0;
  let lastError: unknown;
  const fail = async (e: unknown) => {
    if (opts.signal?.aborted) throw opts.signal.reason ?? e;
    lastError = e;
    if (++failures > retries) throw lastError;
    await sleep(failures * delay);
  };

  while (offset < remote.size) {
    const headers = new Headers(opts.headers);
    if (offset > 0) {
      headers.set('Range', `bytes=${offset}-`);
      if (remote.etag) headers.set('If-Range', remote.etag);
    }
    let res: Response;
    try {
      res = await fetchImpl(url, { headers, signal: opts.signal });
    } catch (e) {
      await fail(e);
      continue;
    }
    let skip = 0;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('Content-Range') ?? '');
      if (!m || Number(m[1]) !== offset || Number(m[3]) !== remote.size) {
        await res.body?.cancel();
        throw new HubIntegrityError(url, `asked bytes ${offset}- of ${remote.size}, got Content-Range "${res.headers.get('Content-Range')}"`);
      }
    } else if (res.status === 200) {
      const now = versionOf(res, url);
      if (sameVersion(now, remote)) {
        skip = offset; // Range ignored: the prefix we hold comes again
      } else {
        remote = now; // the file changed since the entry began: start it over
        await cache.reset(key, remote);
        offset = 0;
      }
    } else {
      await res.body?.cancel();
      if (RETRYABLE_STATUS.has(res.status)) {
        await fail(new HubHttpError(url, res.status));
        continue;
      }
      throw new HubHttpError(url, res.status);
    }

    const pending: Uint8Array[] = [];
    let pendingBytes = 0;
    // Appends pending bytes as chunks of exactly chunkBytes; with `all`, the remainder too.
    const flush = async (all: boolean) => {
      if (pendingBytes === 0 || (!all && pendingBytes < chunkBytes)) return;
      const buf = new Uint8Array(pendingBytes);
      let at = 0;
      for (const p of pending) buf.set(p, (at += p.byteLength) - p.byteLength);
      let cut = 0;
      for (; buf.byteLength - cut >= chunkBytes; cut += chunkBytes) await cache.append(key, buf.subarray(cut, cut + chunkBytes));
      if (all && cut < buf.byteLength) {
        await cache.append(key, buf.subarray(cut));
        cut = buf.byteLength;
      }
      pending.length = 0;
      pendingBytes = buf.byteLength - cut;
      if (pendingBytes > 0) pending.push(buf.subarray(cut));
    };
    try {
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        let bytes = value;
        if (skip > 0) {
          const n = Math.min(skip, bytes.byteLength);
          skip -= n;
          bytes = bytes.subarray(n);
          if (bytes.byteLength === 0) continue;
        }
        if (offset + bytes.byteLength > remote.size) {
          await reader.cancel();
          await cache.delete(key);
          throw new HubIntegrityError(url, `server sent more than the announced ${remote.size} bytes`);
        }
        pending.push(bytes);
        pendingBytes += bytes.byteLength;
        offset += bytes.byteLength;
        received += bytes.byteLength;
        failures = 0;
        await flush(false);
        report(offset, remote.size, rate(), false, false);
      }
      await flush(true);
    } catch (e) {
      if (e instanceof HubIntegrityError) throw e;
      // Keep what arrived before the connection dropped, then resume after it.
      await flush(true);
      await fail(e);
      continue;
    }
    if (offset < remote.size) await fail(new HubIntegrityError(url, `body ended at byte ${offset} of ${remote.size}`));
  }
  const blob = await cache.finish(key);
  if (blob.size !== remote.size) throw new HubIntegrityError(url, `cache returned ${blob.size} bytes, expected ${remote.size}`);
  report(remote.size, remote.size, rate(), true, false);
  return blob;
}
