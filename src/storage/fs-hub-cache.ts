/**
 * The hub downloader's cache (src/hub/cache.ts HubCache) on the filesystem (Node). Layout under `root`:
 *   <ORG%2FNAME>/<revision, percent-encoded>/<file, percent-encoded>.data   bytes stored so far
 *   <...same...>.json                                                        {size, etag, complete}
 * `stored` is the size of the .data file, so it always agrees with what is on disk. Returned Blobs
 * are file-backed (fs.openAsBlob): nothing is read into memory until sliced.
 */
import { appendFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { openAsBlob } from 'node:fs';
import { dirname, join } from 'node:path';
import { keyString, type CacheKey, type CacheState, type HubCache, type RemoteVersion } from '../hub/cache.js';

interface Meta extends RemoteVersion {
  complete: boolean;
}

export class FsHubCache implements HubCache {
  /** @param root folder of the cache (created on first write), e.g. `.cache/hub`. */
  constructor(readonly root: string) {}

  private paths(k: CacheKey): { data: string; meta: string } {
    const base = join(this.root, encodeURIComponent(k.repo), encodeURIComponent(k.revision), encodeURIComponent(k.file));
    return { data: `${base}.data`, meta: `${base}.json` };
  }

  private async meta(k: CacheKey): Promise<Meta | undefined> {
    try {
      return JSON.parse(await readFile(this.paths(k).meta, 'utf8')) as Meta;
    } catch {
      return undefined;
    }
  }

  async state(k: CacheKey): Promise<CacheState | undefined> {
    const m = await this.meta(k);
    if (!m) return undefined;
    const stored = await stat(this.paths(k).data).then((s) => s.size, () => 0);
    return { version: { size: m.size, etag: m.etag ?? undefined }, stored, complete: m.complete && stored === m.size };
  }

  async reset(k: CacheKey, version: RemoteVersion): Promise<void> {
    const p = this.paths(k);
    await mkdir(dirname(p.data), { recursive: true });
    await writeFile(p.data, new Uint8Array(0));
    await writeFile(p.meta, JSON.stringify({ size: version.size, etag: version.etag ?? null, complete: false }));
  }

  async append(k: CacheKey, bytes: Uint8Array): Promise<void> {
    const m = await this.meta(k);
    if (!m || m.complete) throw new Error(`${keyString(k)}: append to a cache entry that is ${m ? 'complete' : 'missing'}`);
    await appendFile(this.paths(k).data, bytes);
  }

  async finish(k: CacheKey): Promise<Blob> {
    const s = await this.state(k);
    if (!s || s.stored !== s.version.size) {
      await this.delete(k);
      throw new Error(`${keyString(k)}: stored ${s?.stored ?? 0} bytes, expected ${s?.version.size ?? '?'}; entry dropped`);
    }
    await writeFile(this.paths(k).meta, JSON.stringify({ size: s.version.size, etag: s.version.etag ?? null, complete: true }));
    return this.get(k);
  }

  async get(k: CacheKey): Promise<Blob> {
    const s = await this.state(k);
    if (!s?.complete) throw new Error(`${keyString(k)}: not in the cache as a complete file`);
    return openAsBlob(this.paths(k).data);
  }

  async delete(k: CacheKey): Promise<void> {
    const p = this.paths(k);
    await rm(p.meta, { force: true });
    await rm(p.data, { force: true });
  }
}
