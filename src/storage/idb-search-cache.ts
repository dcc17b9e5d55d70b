/**
 * The search proxy client's result cache in IndexedDB (browser, through `idb`), so a reloaded lab does
 * not pay again for searches it already made. One object store, key = cache key (src/search/types.ts
 * `cacheKey`).
 */
import { openDB, type IDBPDatabase } from 'idb';
import type { SearchResultCache } from '../search/client.js';

const STORE = 'results';

export class IdbSearchCache implements SearchResultCache {
  private constructor(private readonly db: IDBPDatabase) {}

  /** Opens (creating if needed) the database `name`. @throws DOMException when IndexedDB is unavailable. */
  static async open(name = 'mmsearch-search-cache'): Promise<IdbSearchCache> {
    const db = await openDB(name, 1, { upgrade: (d) => void d.createObjectStore(STORE) });
    return new IdbSearchCache(db);
  }

  async get(key: string): Promise<unknown[] | undefined> {
    return (await this.db.get(STORE, key)) as unknown[] | undefined;
  }

  async set(key: string, results: unknown[]): Promise<void> {
    await this.db.put(STORE, results, key);
  }

  /** Number of cached entries. */
  count(): Promise<number> {
    return this.db.count(STORE);
  }

  close(): void {
    this.db.close();
  }
}
