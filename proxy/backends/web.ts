/**
 * Real web backends. Each maps one provider's JSON to the lab's result shapes; base URLs are
 * configurable (tests point them at fake upstream servers on 127.0.0.1). Keys stay on the server.
 *  - serpapi: Google Lens (`engine=google_lens`, `visual_matches`) for images and Google Search
 *    (`engine=google`, `organic_results`) for text, the providers MMSearch-R1 used (paper section 3.1).
 *  - searxng: `GET /search?format=json` (`results[]`), text only.
 *  - wikipedia: MediaWiki `action=query&list=search`, then `prop=extracts` for page text; text only, no key.
 */
import type { ImageQuery, ImageSearchResult, TextSearchResult } from '../../src/search/types.js';
import { badRequest, upstreamFailed, upstreamJson } from '../errors.js';
import type { PageSummariser } from '../summariser.js';
import { uniqueBy, type BackendHealth, type SearchBackend } from './types.js';

/** A search hit before summarisation. */
interface Hit {
  title: string;
  url: string;
  snippet: string;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function asArray(backend: string, v: unknown, what: string): Record<string, unknown>[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw upstreamFailed(backend, `${what} is not an array`);
  return v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null);
}

async function summariseHits(hits: Hit[], question: string, summariser: PageSummariser, signal?: AbortSignal): Promise<TextSearchResult[]> {
  return Promise.all(hits.map(async (h) => ({ title: h.title, url: h.url, summary: await summariser.summarise(h.url, h.snippet, question, signal) })));
}

async function ping(backend: string, url: string, timeoutMs: number): Promise<BackendHealth> {
  try {
    await upstreamJson(backend, url, { timeoutMs });
    return { name: backend, reachable: true, detail: 'answered' };
  } catch (e) {
    return { name: backend, reachable: false, detail: (e as Error).message };
  }
}

/** SerpApi settings. */
export interface SerpApiConfig {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
}

export class SerpApiBackend implements SearchBackend {
  readonly name = 'serpapi';

  constructor(
    private readonly config: SerpApiConfig,
    private readonly summariser: PageSummariser,
  ) {}

  private url(params: Record<string, string>): string {
    const u = new URL('/search.json', this.config.baseUrl);
    for (const [key, v] of Object.entries({ ...params, api_key: this.config.apiKey })) u.searchParams.set(key, v);
    return u.toString();
  }

  /** Google Lens needs a public image URL; uploaded bytes get 400 naming `image`. */
  async imageSearch(query: ImageQuery, k: number, signal?: AbortSignal): Promise<ImageSearchResult[]> {
    if (!query.url) throw badRequest('image', 'the serpapi backend (Google Lens) needs image_url, not uploaded bytes', 422);
    const json = (await upstreamJson(this.name, this.url({ engine: 'google_lens', url: query.url }), { timeoutMs: this.config.timeoutMs, signal })) as Record<string, unknown>;
    if (json.error) throw upstreamFailed(this.name, str(json.error));
    const matches = asArray(this.name, json.visual_matches, 'visual_matches');
    return uniqueBy(
      matches.map((m) => ({ title: str(m.title), url: str(m.link), thumbnail: str(m.thumbnail) })).filter((r) => r.url),
      (r) => r.url,
      k,
    );
  }

  async textSearch(query: string, k: number, signal?: AbortSignal): Promise<TextSearchResult[]> {
    const json = (await upstreamJson(this.name, this.url({ engine: 'google', q: query, num: String(k) }), { timeoutMs: this.config.timeoutMs, signal })) as Record<string, unknown>;
    if (json.error && !String(json.error).includes("hasn't returned any results")) throw upstreamFailed(this.name, str(json.error));
    const organic = asArray(this.name, json.organic_results, 'organic_results');
    const hits = uniqueBy(organic.map((o) => ({ title: str(o.title), url: str(o.link), snippet: str(o.snippet) })).filter((h) => h.url), (h) => h.url, k);
    return summariseHits(hits, query, this.summariser, signal);
  }

  health(): Promise<BackendHealth> {
    const u = new URL('/account.json', this.config.baseUrl);
    u.searchParams.set('api_key', this.config.apiKey);
    return ping(this.name, u.toString(), Math.min(this.config.timeoutMs, 3000));
  }
}

/** SearXNG settings (instance must enable the json format). */
export interface SearxngConfig {
  baseUrl: string;
  timeoutMs: number;
}

export class SearxngBackend implements SearchBackend {
  readonly name = 'searxng';

  constructor(
    private readonly config: SearxngConfig,
    private readonly summariser: PageSummariser,
  ) {}

  async textSearch(query: string, k: number, signal?: AbortSignal): Promise<TextSearchResult[]> {
    const u = new URL('search', this.config.baseUrl.replace(/\/?$/, '/'));
    u.searchParams.set('q', query);
    u.searchParams.set('format', 'json');
    const json = (await upstreamJson(this.name, u.toString(), { timeoutMs: this.config.timeoutMs, signal })) as Record<string, unknown>;
    const results = asArray(this.name, json.results, 'results');
    const hits = uniqueBy(results.map((r) => ({ title: str(r.title), url: str(r.url), snippet: str(r.content) })).filter((h) => h.url), (h) => h.url, k);
    return summariseHits(hits, query, this.summariser, signal);
  }

  health(): Promise<BackendHealth> {
    const u = new URL('config', this.config.baseUrl.replace(/\/?$/, '/'));
    return ping(this.name, u.toString(), Math.min(this.config.timeoutMs, 3000));
  }
}

/** Wikipedia settings: `baseUrl` is the wiki's origin, e.g. https://en.wikipedia.org. */
export interface WikipediaConfig {
  baseUrl: string;
  timeoutMs: number;
}

export class WikipediaBackend implements SearchBackend {
  readonly name = 'wikipedia';

  constructor(
    private readonly config: WikipediaConfig,
    private readonly summariser: PageSummariser,
  ) {}

  private api(params: Record<string, string>): string {
    const u = new URL('/w/api.php', this.config.baseUrl);
    for (const [key, v] of Object.entries({ ...params, format: 'json', formatversion: '2' })) u.searchParams.set(key, v);
    return u.toString();
  }

  async textSearch(query: string, k: number, signal?: AbortSignal): Promise<TextSearchResult[]> {
    const opts = { timeoutMs: this.config.timeoutMs, signal };
    const found = (await upstreamJson(this.name, this.api({ action: 'query', list: 'search', srsearch: query, srlimit: String(k) }), opts)) as {
      query?: { search?: unknown };
    };
    const search = asArray(this.name, found.query?.search, 'query.search').slice(0, k);
    if (search.length === 0) return [];
    const ids = search.map((s) => String(s.pageid));
    // Page text from the same API (no third-party fetch): plain-text extracts of the intro sections.
    const ex = (await upstreamJson(this.name, this.api({ action: 'query', prop: 'extracts', explaintext: '1', exintro: '1', pageids: ids.join('|') }), opts)) as {
      query?: { pages?: unknown };
    };
    const pages = new Map(asArray(this.name, ex.query?.pages, 'query.pages').map((p) => [String(p.pageid), str(p.extract)]));
    return Promise.all(
      search.map(async (s) => {
        const title = str(s.title);
        const text = pages.get(String(s.pageid)) || str(s.snippet).replace(/<[^>]*>/g, '');
        const url = new URL('/wiki/' + encodeURIComponent(title.replace(/ /g, '_')), this.config.baseUrl).toString();
        return { title, url, summary: await this.summariser.summariseText(text, query, signal) };
      }),
    );
  }

  health(): Promise<BackendHealth> {
    return ping(this.name, this.api({ action: 'query', meta: 'siteinfo' }), Math.min(this.config.timeoutMs, 3000));
  }
}
