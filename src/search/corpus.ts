/**
 * The search corpus format shared by the dataset generator (src/data) and the `local` search backend
 * (src/search, proxy/): documents for text search and images for image search.
 *
 * On disk a corpus is a folder:
 *   pages.jsonl          one CorpusPage per line
 *   images.jsonl         one CorpusImageMeta per line
 *   images/<id>.png      the image bytes named by CorpusImageMeta.file
 */
import { parseJsonl } from '../io/jsonl.js';

/** A text document the text-search backend indexes. `url` is a stable identifier, not fetched. */
export interface CorpusPage {
  id: string;
  title: string;
  url: string;
  /** Plain text, sentences separated by '. ' so that extractive summaries can split it. */
  text: string;
}

/** An image the image-search backend indexes; results return its title, url and a thumbnail. */
export interface CorpusImageMeta {
  id: string;
  title: string;
  url: string;
  /** Path of the PNG relative to the corpus folder, e.g. `images/e0001.png`. */
  file: string;
  /** Id of the CorpusPage about the same entity, when there is one. */
  pageId?: string;
}

export interface CorpusImage extends CorpusImageMeta {
  /** PNG file bytes. */
  png: Uint8Array;
}

export interface SearchCorpus {
  pages: CorpusPage[];
  images: CorpusImage[];
}

/** The folder form of a corpus: file path (relative to the folder) -> bytes. */
export function corpusToFiles(corpus: SearchCorpus): Map<string, Uint8Array> {
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>();
  files.set('pages.jsonl', enc.encode(corpus.pages.map((p) => JSON.stringify(p) + '\n').join('')));
  const metas = corpus.images.map(({ png: _png, ...meta }) => JSON.stringify(meta) + '\n');
  files.set('images.jsonl', enc.encode(metas.join('')));
  for (const im of corpus.images) files.set(im.file, im.png);
  return files;
}

/**
 * Loads a corpus folder through `read(path)` (relative paths), so the same code reads from disk
 * (Node) or over HTTP (a worker). @throws Error naming the file that is missing or malformed.
 */
export async function loadCorpus(read: (path: string) => Promise<Uint8Array>): Promise<SearchCorpus> {
  const dec = new TextDecoder();
  const pages = parseJsonl<CorpusPage>(dec.decode(await read('pages.jsonl')), 'pages.jsonl');
  const metas = parseJsonl<CorpusImageMeta>(dec.decode(await read('images.jsonl')), 'images.jsonl');
  const images: CorpusImage[] = [];
  for (const meta of metas) {
    if (meta.file.includes('..') || meta.file.startsWith('/')) throw new Error(`images.jsonl: unsafe file path ${meta.file}`);
    images.push({ ...meta, png: await read(meta.file) });
  }
  return { pages, images };
}

/** Loads a corpus served over HTTP at `baseUrl` (ending in '/'), e.g. from a worker. */
export function loadCorpusFromUrl(baseUrl: string, fetchFn: typeof fetch = fetch): Promise<SearchCorpus> {
  return loadCorpus(async (path) => {
    const res = await fetchFn(new URL(path, baseUrl));
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  });
}
