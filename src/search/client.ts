/**
 * Client of the search proxy for web workers (and Node): time limit per attempt, retry with
 * exponential backoff on network errors, 429, 502, 503 and 504, and an optional result cache
 * (IndexedDB in the browser: src/storage/idb-search-cache.ts) keyed like the proxy's own cache.
 */
import { bytesToBase64 } from './image.js';
import { cacheKey, type ImageQuery, type ImageSearchResult, type SearchTools, type TextSearchResult } from './types.js';

/** A key -> results store; `IdbSearchCache` and `MemorySearchCache` implement it. */
export interface SearchResultCache {
  get(key: string): Promise<unknown[] | undefined>;
  set(key: string, results: unknown[]): Promise<void>;
}

/** A Map-backed {@link SearchResultCache} (tests, Node). */
export class MemorySearchCache implements SearchResultCache {
  readonly map = new Map<string, unknown[]>();
  async get(key: string) {
    return this.map.get(key);
  }
  async set(key: string, results: unknown[]) {
    this.map.set(key, results);
  }
}

/** An error the proxy answered (status >= 400) or a failure after all retries. */
export class SearchClientError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 for network errors and timeouts. */
    readonly status: number,
    /** `field` or `backend` the proxy named, when it did. */
    readonly field?: string,
    readonly backend?: string,
  ) {
    super(message);
    this.name = 'SearchClientError';
  }
}

/** Options of {@link ProxySearchClient}. */
export interface ProxyClientOptions {
  /** Proxy base URL, e.g. import.meta.env.VITE_PROXY_URL. */
  baseUrl: string;
  /** Time limit of one attempt, ms; default 20000. */
  timeoutMs?: number;
  /** Extra attempts after the first; default 2. */
  retries?: number;
  /** Wait before retry i (0-based) is backoffMs * 2^i, ms; default 250. */
  backoffMs?: number;
  /** Result cache; default none. */
  cache?: SearchResultCache;
  /** Name used in cache keys for the proxy's backend set; default "proxy". */
  cacheNamespace?: string;
  fetch?: typeof fetch;
}

const RETRY_STATUS = new Set([429, 502, 503, 504]);

/** Calls the proxy; implements {@link SearchTools} so a rollout can use it directly. */
export class ProxySearchClient implements SearchTools {
  private readonly o: Required<Omit<ProxyClientOptions, 'cache'>> & { cache?: SearchResultCache };
  /** Network attempts made (first tries + retries), for metrics and tests. */
  attempts = 0;

  constructor(opts: ProxyClientOptions) {
    this.o = { timeoutMs: 20000, retries: 2, backoffMs: 250, cacheNamespace: 'proxy', fetch: globalThis.fetch.bind(globalThis), ...opts };
  }

  /** POST /api/search/text. @throws SearchClientError */
  textSearch(query: string, k: number, signal?: AbortSignal): Promise<TextSearchResult[]> {
    return this.cached('text', k, query, () => this.post('/api/search/text', { query, k }, signal)) as Promise<TextSearchResult[]>;
  }

  /** POST /api/search/image with the bytes as base64 JSON, or the URL. @throws SearchClientError */
  imageSearch(query: ImageQuery, k: number, signal?: AbortSignal): Promise<ImageSearchResult[]> {
    const body = query.bytes ? { image_base64: bytesToBase64(query.bytes), k } : { image_url: query.url, k };
    return this.cached('image', k, query, () => this.post('/api/search/image', body, signal)) as Promise<ImageSearchResult[]>;
  }

  /** GET /api/health. @throws SearchClientError */
  async health(signal?: AbortSignal): Promise<unknown> {
    return this.request('/api/health', undefined, signal);
  }

  private async cached(kind: 'text' | 'image', k: number, q: string | ImageQuery, run: () => Promise<unknown>): Promise<unknown[]> {
    const key = this.o.cache ? await cacheKey(this.o.cacheNamespace, kind, k, q) : '';
    if (this.o.cache) {
      const hit = await this.o.cache.get(key);
      if (hit) return hit;
    }
    const json = (await run()) as { results?: unknown };
    if (!Array.isArray(json.results)) throw new SearchClientError('proxy answer has no results array', 0);
    if (this.o.cache) await this.o.cache.set(key, json.results);
    return json.results;
  }

  private post(path: string, body: object, signal?: AbortSignal): Promise<unknown> {
    return this.request(path, JSON.stringify(body), signal);
  }

  private async request(path: string, body: string | undefined, signal?: AbortSignal): Promise<unknown> {
    let last: SearchClientError = new SearchClientError('no attempt made', 0);
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) await sleep(this.o.backoffMs * 2 ** (attempt - 1), signal);
      signal?.throwIfAborted();
      this.attempts++;
      const timeout = AbortSignal.timeout(this.o.timeoutMs);
      const all = signal ? AbortSignal.any([signal, timeout]) : timeout;
      let res: Response;
      try {
        res = await this.o.fetch(new URL(path, this.o.baseUrl), {
          method: body === undefined ? 'GET' : 'POST',
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body,
          signal: all,
        });
      } catch (e) {
        signal?.throwIfAborted();
        last = new SearchClientError(timeout.aborted ? `no answer within ${this.o.timeoutMs} ms` : `network error: ${(e as Error).message}`, 0);
        continue;
      }
      const json = (await res.json().catch(() => ({}))) as { error?: string; field?: string; backend?: string };
      if (res.ok) return json;
      last = new SearchClientError(json.error ?? `HTTP ${res.status}`, res.status, json.field, json.backend);
      if (!RETRY_STATUS.has(res.status)) throw last;
    }
    throw last;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });
}

/**
 * The proxy URL `npm start` hands the page (`VITE_PROXY_URL`, set by scripts/start.ts), or
 * undefined when the lab runs with no proxy (then use the in-worker local engine).
 */
export function configuredProxyUrl(): string | undefined {
  return import.meta.env?.VITE_PROXY_URL || undefined;
}
