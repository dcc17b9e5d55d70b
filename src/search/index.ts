/**
 * Entry point of the search tools for workers: protocol, proxy client, browser cache and the
 * in-worker `local` engine (LocalSearchIndex over a corpus loaded with loadCorpusFromUrl or given in memory).
 */
export * from './types.js';
export * from './protocol.js';
export * from './client.js';
export { IdbSearchCache } from './idb-cache.js';
export { LocalSearchIndex, type LocalIndexOptions } from './local-index.js';
export { loadCorpus, loadCorpusFromUrl, parseJsonl, corpusToFiles } from './corpus.js';
export type { CorpusPage, CorpusImage, CorpusImageMeta, SearchCorpus } from './corpus.js';
