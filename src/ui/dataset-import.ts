/**
 * Dataset import from the browser's file pickers into the dataset store, as `npm run dataset -- import`
 * does in Node: an FVQA parquet file (read in slices, never whole), or a folder holding a JSONL file
 * and the images its lines name by relative path.
 */
import { jsonlBatches } from '../data/jsonl.js';
import { bufferFromBlob, fvqaParquetBatches } from '../data/parquet.js';
import type { Progress } from '../data/types.js';
import type { DatasetInfo, DatasetStore } from '../storage/store.js';

/** The dataset name the CLI would give a file: its name without extension, other characters as `_`. */
export function datasetNameOf(fileName: string): string {
  return fileName.replace(/\.(parquet|pq|jsonl)$/, '').replace(/[^A-Za-z0-9._-]/g, '_') || 'dataset';
}

/** Where a picked file sits: its folder-relative path when picked with a folder, else its name. */
const pathOf = (f: File) => f.webkitRelativePath || f.name;

/**
 * Imports picked files as dataset `name` (default from the file name): one `.parquet` file, or the
 * files of a folder with exactly one `.jsonl` (images relative to the JSONL's folder).
 * @throws Error saying what to pick; DatasetFormatError naming the row and field of a bad row (the
 *   store is then unchanged)
 */
export async function importDatasetFiles(store: DatasetStore, files: File[], opts: { name?: string; onProgress?: (p: Progress) => void } = {}): Promise<DatasetInfo> {
  const parquet = files.filter((f) => /\.(parquet|pq)$/.test(f.name));
  const jsonl = files.filter((f) => f.name.endsWith('.jsonl'));
  if (parquet.length + jsonl.length !== 1) {
    throw new Error(`pick one FVQA .parquet file, or a folder with one .jsonl file and its images (got ${parquet.length} parquet and ${jsonl.length} JSONL files)`);
  }
  const file = parquet[0] ?? jsonl[0];
  const name = opts.name || datasetNameOf(file.name);
  const source = pathOf(file);
  if (parquet.length) return store.write(name, fvqaParquetBatches(bufferFromBlob(file), { idPrefix: name, onProgress: opts.onProgress }), { source });
  const root = source.includes('/') ? source.slice(0, source.lastIndexOf('/') + 1) : '';
  const byPath = new Map(files.map((f) => [pathOf(f), f]));
  const readImage = async (p: string) => {
    const f = byPath.get(root + p.replace(/^\.\//, ''));
    if (!f) throw new Error(root ? `not in the picked folder` : 'pick the folder that holds the JSONL file and its images, not the file alone');
    return new Uint8Array(await f.arrayBuffer());
  };
  const lines = (await file.text()).split(/\r?\n/);
  return store.write(name, jsonlBatches(lines, readImage, { idPrefix: name, onProgress: opts.onProgress }), { source });
}
