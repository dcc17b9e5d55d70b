/**
 * Training on datasets of the dataset store: a recipe's data.train / data.test may name a stored
 * dataset as `store:NAME`; the trainer worker serves it to the Trainer as FVQA parquet bytes through
 * its readFile, so the Trainer reads it like any other parquet file.
 */
import { ByteWriter } from 'hyparquet-writer';
import { writeFvqaParquet } from '../data/parquet.js';
import type { DatasetStore } from '../storage/store.js';

/** The prefix of a data file that names a stored dataset. */
export const STORE_PREFIX = 'store:';

/** The data file naming stored dataset `name`. */
export const storedDataFile = (name: string): string => STORE_PREFIX + name;

/**
 * Exports the stored dataset a `store:NAME` path names as FVQA parquet bytes.
 * @throws Error naming the dataset when the store has none of that name
 */
export async function readStoredDataset(path: string, store: DatasetStore): Promise<Uint8Array> {
  const name = path.slice(STORE_PREFIX.length);
  if (!(await store.info(name))) throw new Error(`${path}: the dataset store has no dataset "${name}" (import or generate it first)`);
  async function* rows() {
    for await (const batch of store.rows(name)) yield* batch;
  }
  const w = new ByteWriter();
  await writeFvqaParquet(rows(), w);
  return w.getBytes();
}
