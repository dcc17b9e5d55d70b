/**
 * The hub downloader's cache (src/hub/cache.ts HubCache) in IndexedDB (browser), through `idb`. Two object stores:
 *   entries  key "ORG/NAME@revision/file" -> {repo, revision, file, size, etag, stored, chunks, complete}
 *   chunks   key [entry key, index]       -> Blob of the index-th appended piece
 * Each append writes a chunk and updates its entry in one transaction, so `stored` always equals the
 * sum of the chunks, even when the tab closes mid-download. The file is returned as a Blob made of the
 * chunk Blobs (the browser keeps large Blobs on disk; nothing is concatenated in memory).
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { keyString, type CacheKey, type CacheState, type HubCache, type RemoteVersion } from '../hub/cache.js';

interface Entry {
  id: string;
  repo: string;
  revision: string;
  file: string;
  size: number;
  etag: string | null;
  stored: number;
  chunks: number;
  complete: boolean;
}

interface HubDB extends DBSchema {
  entries: { key: string; value: Entry };
  chunks: { key: [string, number]; value: Blob };
}

/** Default database name. */
export const HUB_DB_NAME = 'mmsearch-hub';

export class IdbHubCache implements HubCache {
  private db: Promise<IDBPDatabase<HubDB>>;

  /** @param dbName IndexedDB database (one per origin), default `mmsearch-hub`. */
  constructor(readonly dbName = HUB_DB_NAME) {
    this.db = openDB<HubDB>(dbName, 1, {
      upgrade(db) {
        db.createObjectStore('entries', { keyPath: 'id' });
        db.createObjectStore('chunks');
      },
    });
  }

  private range(id: string): IDBKeyRange {
    return IDBKeyRange.bound([id, 0], [id, Infinity]);
  }

  async state(k: CacheKey): Promise<CacheState | undefined> {
    const e = await (await this.db).get('entries', keyString(k));
    if (!e) return undefined;
    return { version: { size: e.size, etag: e.etag ?? undefined }, stored: e.stored, complete: e.complete && e.stored === e.size };
  }

  async reset(k: CacheKey, version: RemoteVersion): Promise<void> {
    const id = keyString(k);
    const tx = (await this.db).transaction(['entries', 'chunks'], 'readwrite');
    await tx.objectStore('chunks').delete(this.range(id));
    await tx.objectStore('entries').put({ id, ...k, size: version.size, etag: version.etag ?? null, stored: 0, chunks: 0, complete: false });
    await tx.done;
  }

  async append(k: CacheKey, bytes: Uint8Array): Promise<void> {
    const id = keyString(k);
    const tx = (await this.db).transaction(['entries', 'chunks'], 'readwrite');
    const e = await tx.objectStore('entries').get(id);
    if (!e || e.complete) {
      tx.done.catch(() => undefined); // the abort below rejects `done`; the error thrown is the one to report
      tx.abort();
      throw new Error(`${id}: append to a cache entry that is ${e ? 'complete' : 'missing'}`);
    }
    await tx.objectStore('chunks').put(new Blob([bytes as Uint8Array<ArrayBuffer>]), [id, e.chunks]);
    await tx.objectStore('entries').put({ ...e, stored: e.stored + bytes.byteLength, chunks: e.chunks + 1 });
    await tx.done;
  }

  async finish(k: CacheKey): Promise<Blob> {
    const id = keyString(k);
    const tx = (await this.db).transaction('entries', 'readwrite');
    const e = await tx.store.get(id);
    if (e && e.stored === e.size) await tx.store.put({ ...e, complete: true });
    await tx.done;
    if (!e || e.stored !== e.size) {
      await this.delete(k);
      throw new Error(`${id}: stored ${e?.stored ?? 0} bytes, expected ${e?.size ?? '?'}; entry dropped`);
    }
    return this.get(k);
  }

  async get(k: CacheKey): Promise<Blob> {
    const id = keyString(k);
    const tx = (await this.db).transaction(['entries', 'chunks'], 'readonly');
    const e = await tx.objectStore('entries').get(id);
    const chunks = e?.complete ? await tx.objectStore('chunks').getAll(this.range(id)) : [];
    await tx.done;
    if (!e?.complete) throw new Error(`${id}: not in the cache as a complete file`);
    const blob = new Blob(chunks);
    if (blob.size !== e.size || chunks.length !== e.chunks) throw new Error(`${id}: cache holds ${blob.size} bytes in ${chunks.length} chunks, expected ${e.size} in ${e.chunks}`);
    return blob;
  }

  async delete(k: CacheKey): Promise<void> {
    const id = keyString(k);
    const tx = (await this.db).transaction(['entries', 'chunks'], 'readwrite');
    await tx.objectStore('chunks').delete(this.range(id));
    await tx.objectStore('entries').delete(id);
    await tx.done;
  }

  /** Closes the database connection. */
  async close(): Promise<void> {
    (await this.db).close();
  }
}
