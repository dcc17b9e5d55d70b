/**
 * Result and request shapes of the two MMSearch-R1 tools (paper section 3.1; notes "Conversation
 * protocol"), shared by the proxy, its client and the in-worker `local` engine.
 */

import type { ImageSearchResult, TextSearchResult } from '../protocol/tools.js';

/** The two tools' hits are the protocol's (src/protocol/tools.ts). */
export type { ImageSearchResult, TextSearchResult };

/** The image to search with: its file bytes (PNG/JPEG) or a public http(s) URL of it. */
export type ImageQuery = { bytes: Uint8Array; url?: undefined } | { url: string; bytes?: undefined };

/** Anything that can run the two tools: the proxy client, the in-worker local engine. */
export interface SearchTools {
  /** Up to `k` results for the question image. @throws Error when the search fails. */
  imageSearch(query: ImageQuery, k: number, signal?: AbortSignal): Promise<ImageSearchResult[]>;
  /** Up to `k` results for a text query. @throws Error when the search fails. */
  textSearch(query: string, k: number, signal?: AbortSignal): Promise<TextSearchResult[]>;
}

/** Largest `k` the proxy accepts. */
export const MAX_K = 10;
/** Longest text query the proxy accepts, in UTF-16 code units. */
export const MAX_QUERY_LENGTH = 512;

/**
 * Normalises a text query for cache keys: Unicode NFKC, lowercase, whitespace collapsed, trimmed.
 * Two queries that differ only in case or spacing share one cache entry.
 */
export function normaliseQuery(q: string): string {
  return q.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}

/** Lowercase hex SHA-256 of bytes (WebCrypto, available in Node >= 20, browsers and workers). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Cache key of one tool call, identical on the server and in the browser cache:
 * `<backend>|text|<k>|<normalised query>` or `<backend>|image|<k>|sha256:<hex>` / `|url:<url>`.
 */
export async function cacheKey(backend: string, kind: 'text' | 'image', k: number, q: string | ImageQuery): Promise<string> {
  if (typeof q === 'string') return `${backend}|${kind}|${k}|${normaliseQuery(q)}`;
  if (q.bytes) return `${backend}|${kind}|${k}|sha256:${await sha256Hex(q.bytes)}`;
  return `${backend}|${kind}|${k}|url:${q.url}`;
}
