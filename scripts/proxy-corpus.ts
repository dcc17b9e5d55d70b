/**
 * The corpus the `local` search backend serves when LOCAL_CORPUS_DIR is not set: the FVQA-mini world
 * of the default recipe (seed 1), generated in memory (a few seconds), so that the lab's chat and
 * evaluation can search through the proxy out of the box.
 */
import { generateFvqaMini } from '../src/data/fvqa-mini.js';
import type { SearchCorpus } from '../src/search/corpus.js';
import type { ProxyConfig } from '../proxy/config.js';

/** The default corpus for `config`, or undefined when a folder is configured or no backend is local. */
export function defaultCorpus(config: ProxyConfig): SearchCorpus | undefined {
  const local = config.imageBackend === 'local' || config.textBackend === 'local';
  return local && !config.corpusDir ? generateFvqaMini({ seed: 1 }).corpus : undefined;
}
