/**
 * The dataset store in IndexedDB (browser), through `idb`. Object stores:
 *   datasets  keyPath "name": { name, info: DatasetInfo, generation }
 *   chunks    key [generation, index]: StoredChunk (rows + image blob)
 * An import writes its chunks under a fresh generation id, one transaction per chunk, then switches
 * the dataset record to that generation and deletes the old generation's chunks in one transaction.
 * Chunks of no committed generation (an import cut short by a closed tab) are swept on open.
 * The IndexedDB version is the store schema version; `upgrade` runs the migrations.
 */
import { openDB, type IDBPDatabase, type IDBPTransaction } from 'idb';
import type { FvqaRow } from '../data/types.js';
import {
  DEFAULT_CHUNK_ROWS, STORE_SCHEMA_VERSION, StoreError, StoreQuotaError, checkName, chunked, countCategories, recordChunk, decodeChunk,
  emptyCategories, encodeChunk, rebatch, type DatasetInfo, type DatasetStore, type StoredChunk, type WriteOptions,
} from './store.js';

/** Default IndexedDB database name. */
export const DEFAULT_IDB_NAME = 'mmsearch-datasets';

interface DatasetRecord {
  name: string;
  info: DatasetInfo;
  generation: string;
}

type Db = IDBPDatabase<unknown>;
const range = (gen: string) => IDBKeyRange.bound([gen, 0], [gen, Number.MAX_SAFE_INTEGER]);
const isQuota = (e: unknown) => (e as { name?: string })?.name === 'QuotaExceededError';

/** Options of `openIdbStore`. */
export interface IdbStoreOptions {
  /** Upper bound on the bytes all datasets may take, below the browser's own quota. */
  quotaBytes?: number;
}

/**
 * Opens the store in database `dbName`, creating or migrating it.
 * @throws StoreError when the database has a newer schema than this lab (IndexedDB VersionError).
 */
export async function openIdbStore(dbName = DEFAULT_IDB_NAME, opts: IdbStoreOptions = {}): Promise<DatasetStore> {
  let db: Db;
  try {
    db = await openDB(dbName, STORE_SCHEMA_VERSION, {
      async upgrade(db, oldVersion, _newVersion, tx) {
        if (oldVersion < 1) {
          db.createObjectStore('datasets', { keyPath: 'name' });
          db.createObjectStore('chunks');
        }
        if (oldVersion >= 1 && oldVersion < 2) await migrateV1toV2(tx);
      },
    });
  } catch (e) {
    if ((e as Error).name === 'VersionError') {
      throw new StoreError(`IndexedDB "${dbName}" has a newer schema than this lab's v${STORE_SCHEMA_VERSION}; update the lab`);
    }
    throw e;
  }
  await sweep(db);
  return new IdbStore(db, opts);
}

/** v1 -> v2: dataset records gain `info.categories`, counted from their chunks (inside the upgrade transaction). */
async function migrateV1toV2(tx: IDBPTransaction<unknown, string[], 'versionchange'>): Promise<void> {
  const datasets = tx.objectStore('datasets');
  const chunks = tx.objectStore('chunks');
  for (const rec of (await datasets.getAll()) as DatasetRecord[]) {
    const categories = emptyCategories();
    for (const c of (await chunks.getAll(range(rec.generation))) as StoredChunk[]) countCategories(c.rows, categories);
    await datasets.put({ ...rec, info: { ...rec.info, categories } });
  }
}

/** Deletes chunks whose generation no dataset record names (interrupted imports). */
async function sweep(db: Db): Promise<void> {
  const tx = db.transaction(['datasets', 'chunks'], 'readwrite');
  const live = new Set(((await tx.objectStore('datasets').getAll()) as DatasetRecord[]).map((r) => r.generation));
  const dead = new Set<string>();
  for (const key of (await tx.objectStore('chunks').getAllKeys()) as [string, number][]) if (!live.has(key[0])) dead.add(key[0]);
  for (const g of dead) await tx.objectStore('chunks').delete(range(g));
  await tx.done;
}

class IdbStore implements DatasetStore {
  constructor(
    private readonly db: Db,
    private readonly opts: IdbStoreOptions,
  ) {}

  async list(): Promise<DatasetInfo[]> {
    return ((await this.db.getAll('datasets')) as DatasetRecord[]).map((r) => r.info);
  }

  async info(name: string): Promise<DatasetInfo | null> {
    checkName(name);
    return ((await this.db.get('datasets', name)) as DatasetRecord | undefined)?.info ?? null;
  }

  async write(name: string, batches: AsyncIterable<FvqaRow[]> | Iterable<FvqaRow[]>, opts: WriteOptions): Promise<DatasetInfo> {
    checkName(name);
    const generation = crypto.randomUUID();
    const used = this.opts.quotaBytes === undefined ? 0 : (await this.list()).filter((d) => d.name !== name).reduce((s, d) => s + d.bytes, 0);
    const info: DatasetInfo = {
      name, rows: 0, chunks: 0, bytes: 0, imageBytes: 0, categories: emptyCategories(), source: opts.source,
      createdAt: new Date().toISOString(),
    };
    const enc = new TextEncoder();
    try {
      for await (const rows of chunked(batches, opts.chunkRows ?? DEFAULT_CHUNK_ROWS)) {
        const c = encodeChunk(rows);
        const size = enc.encode(JSON.stringify(c.rows)).length + c.blob.length;
        if (this.opts.quotaBytes !== undefined && used + info.bytes + size > this.opts.quotaBytes) {
          throw new StoreQuotaError(name, `quota of ${this.opts.quotaBytes} bytes reached`);
        }
        const tx = this.db.transaction('chunks', 'readwrite');
        await Promise.all([tx.store.put(c, [generation, info.chunks]), tx.done]);
        recordChunk(info, rows, size, c.blob.length, opts.onProgress);
      }
      const tx = this.db.transaction(['datasets', 'chunks'], 'readwrite');
      const old = (await tx.objectStore('datasets').get(name)) as DatasetRecord | undefined;
      await tx.objectStore('datasets').put({ name, info, generation } satisfies DatasetRecord);
      if (old) await tx.objectStore('chunks').delete(range(old.generation));
      await tx.done;
      return info;
    } catch (e) {
      await this.dropGeneration(generation).catch(() => undefined);
      if (isQuota(e)) throw new StoreQuotaError(name, `browser storage quota exceeded: ${(e as Error).message}`);
      throw e;
    }
  }

  private async dropGeneration(generation: string): Promise<void> {
    const tx = this.db.transaction('chunks', 'readwrite');
    await Promise.all([tx.store.delete(range(generation)), tx.done]);
  }

  async *rows(name: string, opts: { batchRows?: number } = {}): AsyncGenerator<FvqaRow[]> {
    checkName(name);
    const rec = (await this.db.get('datasets', name)) as DatasetRecord | undefined;
    if (!rec) throw new StoreError(`no dataset named "${name}"`);
    const db = this.db;
    const chunks = async function* () {
      for (let i = 0; i < rec.info.chunks; i++) {
        const c = (await db.get('chunks', [rec.generation, i])) as StoredChunk | undefined;
        if (!c) throw new StoreError(`dataset "${name}": chunk ${i} is missing`);
        yield decodeChunk(c);
      }
    };
    yield* opts.batchRows ? rebatch(chunks(), opts.batchRows) : chunks();
  }

  async delete(name: string): Promise<void> {
    checkName(name);
    const tx = this.db.transaction(['datasets', 'chunks'], 'readwrite');
    const rec = (await tx.objectStore('datasets').get(name)) as DatasetRecord | undefined;
    if (rec) {
      await tx.objectStore('datasets').delete(name);
      await tx.objectStore('chunks').delete(range(rec.generation));
    }
    await tx.done;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
