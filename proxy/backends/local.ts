/**
 * `local` backend (the default): the lab's own index (src/search/local-index.ts) over a corpus
 * folder or the synthetic world. Needs no network and no key. Image URLs are fetched through the
 * SSRF-safe fetcher, then searched like uploaded bytes.
 */
import { LocalSearchIndex } from '../../src/search/local-index.js';
import type { ImageQuery, ImageSearchResult, TextSearchResult } from '../../src/search/types.js';
import { badRequest } from '../errors.js';
import { IMAGE_TYPES, type SafeFetcher } from '../fetcher.js';
import type { BackendHealth, SearchBackend } from './types.js';

export class LocalBackend implements SearchBackend {
  readonly name = 'local';

  constructor(
    readonly index: LocalSearchIndex,
    private readonly fetcher: SafeFetcher,
    private readonly source: string,
  ) {}

  async textSearch(query: string, k: number): Promise<TextSearchResult[]> {
    return this.index.textSearch(query, k);
  }

  /** @throws ProxyError 400 naming `image_url` when the URL cannot be fetched, `image` when it does not decode. */
  async imageSearch(query: ImageQuery, k: number, signal?: AbortSignal): Promise<ImageSearchResult[]> {
    let bytes = query.bytes;
    if (!bytes) {
      try {
        bytes = (await this.fetcher.fetch(query.url!, IMAGE_TYPES, signal)).body;
      } catch (e) {
        throw badRequest('image_url', `cannot fetch the image (${(e as Error).message})`);
      }
    }
    try {
      return await this.index.imageSearch({ bytes }, k);
    } catch (e) {
      throw badRequest('image', `cannot decode the image (${(e as Error).message})`);
    }
  }

  async health(): Promise<BackendHealth> {
    const { pages, images } = this.index.size;
    return { name: this.name, reachable: true, detail: `${this.source}: ${pages} pages, ${images} images, embedder ${this.index.embedder.name}` };
  }
}
