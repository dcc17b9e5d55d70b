/**
 * The `local` search engine: BM25 text search (MiniSearch) over a corpus's pages and
 * nearest-neighbour image search over its images. The same class serves the proxy's `local` backend
 * and the in-worker engine that lets the lab run with no proxy at all.
 */
import MiniSearch from 'minisearch';
import type { CorpusPage, SearchCorpus } from './corpus.js';
import { LayoutHashEmbedder, type ImageEmbedder } from './embed.js';
import { decodeImage, thumbnailDataUrl } from './image.js';
import { extractiveSummary, processTerm } from './summarise.js';
import type { ImageQuery, ImageSearchResult, SearchTools, TextSearchResult } from './types.js';

interface IndexedImage {
  title: string;
  url: string;
  thumbnail: string;
  embedding: Float32Array;
}

/** Options of {@link LocalSearchIndex.build}. */
export interface LocalIndexOptions {
  /** Image embedder; default {@link LayoutHashEmbedder}. */
  embedder?: ImageEmbedder;
  /** Longer side of returned thumbnails in pixels; default 64. */
  thumbnailSide?: number;
  /** Sentences per text-search summary; default 5 (the paper's summaries are <= 5 sentences). */
  summarySentences?: number;
}

/** In-memory index of a {@link SearchCorpus}; implements both tools. */
export class LocalSearchIndex implements SearchTools {
  private constructor(
    private readonly text: MiniSearch<CorpusPage>,
    private readonly pages: Map<string, CorpusPage>,
    private readonly images: IndexedImage[],
    readonly embedder: ImageEmbedder,
    private readonly summarySentences: number,
  ) {}

  /**
   * Indexes every page (fields title and text, title boosted x2) and embeds every image.
   * @throws Error naming the image id when an image cannot be decoded.
   */
  static async build(corpus: SearchCorpus, opts: LocalIndexOptions = {}): Promise<LocalSearchIndex> {
    const embedder = opts.embedder ?? new LayoutHashEmbedder();
    const text = new MiniSearch<CorpusPage>({
      fields: ['title', 'text'],
      storeFields: [],
      processTerm,
      searchOptions: { boost: { title: 2 }, combineWith: 'OR' },
    });
    text.addAll(corpus.pages);
    const images: IndexedImage[] = [];
    for (const im of corpus.images) {
      let rgba;
      try {
        rgba = decodeImage(im.png);
      } catch (e) {
        throw new Error(`corpus image ${im.id}: ${(e as Error).message}`);
      }
      images.push({
        title: im.title,
        url: im.url,
        thumbnail: thumbnailDataUrl(rgba, opts.thumbnailSide ?? 64),
        embedding: await embedder.embed(rgba),
      });
    }
    const pages = new Map(corpus.pages.map((p) => [p.id, p]));
    return new LocalSearchIndex(text, pages, images, embedder, opts.summarySentences ?? 5);
  }

  /** Number of indexed pages and images. */
  get size(): { pages: number; images: number } {
    return { pages: this.pages.size, images: this.images.length };
  }

  /** Top `k` pages by BM25 with a question-focused extractive summary of each. */
  async textSearch(query: string, k: number): Promise<TextSearchResult[]> {
    return this.text
      .search(query)
      .slice(0, k)
      .map((hit) => {
        const page = this.pages.get(hit.id as string)!;
        return { title: page.title, url: page.url, summary: extractiveSummary(page.text, query, this.summarySentences) };
      });
  }

  /**
   * Top `k` images by embedding similarity to the query image (ties keep corpus order).
   * @throws Error when the query is a URL (the index fetches nothing) or the bytes do not decode.
   */
  async imageSearch(query: ImageQuery, k: number): Promise<ImageSearchResult[]> {
    if (!query.bytes) throw new Error('the local engine needs image bytes, not a URL');
    const q = await this.embedder.embed(decodeImage(query.bytes));
    return this.images
      .map((im, i) => ({ im, i, s: this.embedder.similarity(q, im.embedding) }))
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .slice(0, k)
      .map(({ im }) => ({ title: im.title, url: im.url, thumbnail: im.thumbnail }));
  }
}
