/**
 * Web worker hosting the in-worker `local` engine (LocalSearchIndex, the same code as the proxy's
 * local backend), so the lab runs searches with no proxy at all. Exposed with Comlink:
 *   const engine = Comlink.wrap<LocalSearchWorker>(new Worker(url, { type: 'module' }));
 *   await engine.load(corpus) or await engine.loadUrl('/corpus/'); await engine.textSearch(q, k);
 */
import * as Comlink from 'comlink';
import { loadCorpusFromUrl, type SearchCorpus } from './corpus.js';
import { LocalSearchIndex } from './local-index.js';
import type { ImageQuery, ImageSearchResult, TextSearchResult } from './types.js';

let index: LocalSearchIndex | undefined;

function ready(): LocalSearchIndex {
  if (!index) throw new Error('local search worker: call load() or loadUrl() first');
  return index;
}

const api = {
  /** Indexes a corpus given in memory; returns its size. */
  async load(corpus: SearchCorpus): Promise<{ pages: number; images: number }> {
    index = await LocalSearchIndex.build(corpus);
    return index.size;
  },
  /** Fetches a corpus folder served at `baseUrl` (pages.jsonl, images.jsonl, images/) and indexes it. */
  async loadUrl(baseUrl: string): Promise<{ pages: number; images: number }> {
    return api.load(await loadCorpusFromUrl(new URL(baseUrl, self.location.href).toString()));
  },
  textSearch: (query: string, k: number): Promise<TextSearchResult[]> => ready().textSearch(query, k),
  imageSearch: (query: ImageQuery, k: number): Promise<ImageSearchResult[]> => ready().imageSearch(query, k),
};

export type LocalSearchWorker = typeof api;
Comlink.expose(api);
