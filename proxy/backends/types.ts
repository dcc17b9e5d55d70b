/** The interface every search backend of the proxy implements (issue 4, "Backends behind one interface"). */
import type { ImageQuery, ImageSearchResult, TextSearchResult } from '../../src/search/types.js';

/** Configured + reachable state of one backend, reported by GET /api/health. */
export interface BackendHealth {
  name: string;
  reachable: boolean;
  detail: string;
}

/**
 * A search provider. Methods throw ProxyError: 4xx for requests the backend cannot serve (naming
 * the field), 502 naming the backend for upstream failures, 504 for upstream timeouts.
 */
export interface SearchBackend {
  readonly name: string;
  imageSearch?(query: ImageQuery, k: number, signal?: AbortSignal): Promise<ImageSearchResult[]>;
  textSearch?(query: string, k: number, signal?: AbortSignal): Promise<TextSearchResult[]>;
  health(): Promise<BackendHealth>;
}

/** Up to `k` items whose `key` is not seen before (search engines repeat links). */
export function uniqueBy<T>(items: T[], key: (t: T) => string, k: number): T[] {
  const seen = new Set<string>();
  return items.filter((t) => !seen.has(key(t)) && seen.add(key(t))).slice(0, k);
}
