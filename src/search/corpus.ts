/**
 * The search corpus format shared by the dataset generator (src/data) and the `local` search backend
 * (src/search, proxy/): documents for text search and images for image search.
 *
 * On disk a corpus is a folder:
 *   pages.jsonl          one CorpusPage per line
 *   images.jsonl         one CorpusImageMeta per line
 *   images/<id>.png      the image bytes named by CorpusImageMeta.file
 */

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
