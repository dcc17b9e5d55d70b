/**
 * Result cache: query -> results, in memory (LRU) and on disk, keyed by backend + normalised query
 * or image hash (src/search/types.ts `cacheKey`), so repeated training steps never pay twice.
 * Disk entries are one JSON file per key, named by the key's SHA-256, and survive restarts.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';

export interface CacheStats {
  hits: number;
  misses: number;
  memoryEntries: number;
  disk: boolean;
}

export class ResultCache {
  private readonly memory: LRUCache<string, object>;
  hits = 0;
  misses = 0;

  /** @param dir disk folder, or '' for memory only; @param maxEntries LRU capacity. */
  constructor(
    private readonly dir: string,
    maxEntries: number,
  ) {
    this.memory = new LRUCache({ max: Math.max(1, maxEntries) });
  }

  private file(key: string): string {
    return join(this.dir, createHash('sha256').update(key).digest('hex') + '.json');
  }

  /** The cached value for `key`, or undefined; counts a hit or a miss. */
  async get<T extends object>(key: string): Promise<T | undefined> {
    let v = this.memory.get(key);
    if (v === undefined && this.dir) {
      try {
        const entry = JSON.parse(await readFile(this.file(key), 'utf8')) as { key: string; value: object };
        if (entry.key === key) {
          v = entry.value;
          this.memory.set(key, v);
        }
      } catch {
        // Missing or unreadable file: a miss.
      }
    }
    if (v === undefined) this.misses++;
    else this.hits++;
    return v as T | undefined;
  }

  /** Stores `value`; a failed disk write is reported on stderr and leaves the memory entry. */
  async set(key: string, value: object): Promise<void> {
    this.memory.set(key, value);
    if (!this.dir) return;
    try {
      await mkdir(this.dir, { recursive: true });
      const tmp = this.file(key) + `.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      await writeFile(tmp, JSON.stringify({ key, value }));
      await rename(tmp, this.file(key));
    } catch (e) {
      console.error(`search cache: cannot write to ${this.dir}: ${(e as Error).message}`);
    }
  }

  stats(): CacheStats {
    return { hits: this.hits, misses: this.misses, memoryEntries: this.memory.size, disk: Boolean(this.dir) };
  }
}
