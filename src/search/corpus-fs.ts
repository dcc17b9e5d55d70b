/** Node-only helpers to read and write a corpus folder (format in corpus.ts). */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { corpusToFiles, loadCorpus, type SearchCorpus } from './corpus.js';

/** Reads `dir`/pages.jsonl, images.jsonl and the PNGs they name. @throws Error naming the bad file. */
export function readCorpusDir(dir: string): Promise<SearchCorpus> {
  return loadCorpus(async (path) => new Uint8Array(await readFile(join(dir, path))));
}

/** Writes a corpus as a folder (created if missing); existing files of the same names are replaced. */
export async function writeCorpusDir(dir: string, corpus: SearchCorpus): Promise<void> {
  for (const [path, bytes] of corpusToFiles(corpus)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), bytes);
  }
}
