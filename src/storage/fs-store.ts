/**
 * The dataset store over the filesystem (Node: CLI, tests). Layout under the root folder:
 *   store.json                         {"schemaVersion": 2}
 *   datasets/<name>/dataset.json       DatasetInfo
 *   datasets/<name>/chunk-000000.json  rows of the chunk (images as offsets into the .bin)
 *   datasets/<name>/chunk-000000.bin   image bytes of the chunk
 *   staging/, trash/                   in-flight imports and replaced datasets, swept on open
 * An import writes into staging/ and becomes visible by a directory rename.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FvqaRow } from '../data/types.js';
import {
  DEFAULT_CHUNK_ROWS, STORE_SCHEMA_VERSION, StoreError, StoreQuotaError, checkName, chunked, countCategories, recordChunk, decodeChunk,
  emptyCategories, encodeChunk, rebatch, type DatasetInfo, type DatasetStore, type StoredChunk, type WriteOptions,
} from './store.js';

const chunkName = (i: number) => `chunk-${String(i).padStart(6, '0')}`;
const isQuota = (e: unknown) => ['ENOSPC', 'EDQUOT', 'EFBIG'].includes((e as NodeJS.ErrnoException).code ?? '');

/** Options of `openFsStore`. */
export interface FsStoreOptions {
  /** Upper bound on the bytes all datasets may take; an import past it fails with StoreQuotaError. */
  quotaBytes?: number;
}

/**
 * Opens (creating if needed) a store rooted at `root`, migrating older layouts and sweeping
 * leftovers of interrupted imports.
 * @throws StoreError when the store was written by a newer version of the lab.
 */
export async function openFsStore(root: string, opts: FsStoreOptions = {}): Promise<DatasetStore> {
  await mkdir(join(root, 'datasets'), { recursive: true });
  const marker = join(root, 'store.json');
  let version = STORE_SCHEMA_VERSION;
  try {
    version = JSON.parse(await readFile(marker, 'utf8')).schemaVersion;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    // A folder with datasets but no marker predates versioning: layout v1.
    version = (await readdir(join(root, 'datasets'))).length > 0 ? 1 : STORE_SCHEMA_VERSION;
  }
  if (version > STORE_SCHEMA_VERSION) {
    throw new StoreError(`dataset store ${root} has schema v${version}, newer than this lab's v${STORE_SCHEMA_VERSION}; update the lab`);
  }
  if (version < 2) await migrateV1toV2(root);
  await writeFile(marker, JSON.stringify({ schemaVersion: STORE_SCHEMA_VERSION }) + '\n');
  await rm(join(root, 'staging'), { recursive: true, force: true });
  await rm(join(root, 'trash'), { recursive: true, force: true });
  return new FsStore(root, opts);
}

async function readChunk(dir: string, i: number): Promise<StoredChunk> {
  const rows = JSON.parse(await readFile(join(dir, `${chunkName(i)}.json`), 'utf8'));
  return { rows, blob: new Uint8Array(await readFile(join(dir, `${chunkName(i)}.bin`))) };
}

/** v1 -> v2: dataset records gain `categories`, counted from the stored rows. */
async function migrateV1toV2(root: string): Promise<void> {
  for (const name of await readdir(join(root, 'datasets'))) {
    const dir = join(root, 'datasets', name);
    const info = JSON.parse(await readFile(join(dir, 'dataset.json'), 'utf8')) as DatasetInfo;
    const categories = emptyCategories();
    for (let i = 0; i < info.chunks; i++) countCategories((await readChunk(dir, i)).rows, categories);
    await writeFile(join(dir, 'dataset.json'), JSON.stringify({ ...info, categories }, null, 1));
  }
}

class FsStore implements DatasetStore {
  constructor(
    private readonly root: string,
    private readonly opts: FsStoreOptions,
  ) {}

  private dir(name: string) {
    checkName(name);
    return join(this.root, 'datasets', name);
  }

  async list(): Promise<DatasetInfo[]> {
    const names = (await readdir(join(this.root, 'datasets'))).sort();
    return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(this.root, 'datasets', n, 'dataset.json'), 'utf8'))));
  }

  async info(name: string): Promise<DatasetInfo | null> {
    try {
      return JSON.parse(await readFile(join(this.dir(name), 'dataset.json'), 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async write(name: string, batches: AsyncIterable<FvqaRow[]> | Iterable<FvqaRow[]>, opts: WriteOptions): Promise<DatasetInfo> {
    const target = this.dir(name);
    const staging = join(this.root, 'staging', `${name}-${randomUUID()}`);
    await mkdir(staging, { recursive: true });
    const used = this.opts.quotaBytes === undefined ? 0 : (await this.list()).filter((d) => d.name !== name).reduce((s, d) => s + d.bytes, 0);
    const info: DatasetInfo = {
      name, rows: 0, chunks: 0, bytes: 0, imageBytes: 0, categories: emptyCategories(), source: opts.source,
      createdAt: new Date().toISOString(),
    };
    try {
      for await (const rows of chunked(batches, opts.chunkRows ?? DEFAULT_CHUNK_ROWS)) {
        const c = encodeChunk(rows);
        const json = JSON.stringify(c.rows);
        const size = Buffer.byteLength(json) + c.blob.length;
        if (this.opts.quotaBytes !== undefined && used + info.bytes + size > this.opts.quotaBytes) {
          throw new StoreQuotaError(name, `quota of ${this.opts.quotaBytes} bytes reached`);
        }
        await writeFile(join(staging, `${chunkName(info.chunks)}.json`), json);
        await writeFile(join(staging, `${chunkName(info.chunks)}.bin`), c.blob);
        recordChunk(info, rows, size, c.blob.length, opts.onProgress);
      }
      await writeFile(join(staging, 'dataset.json'), JSON.stringify(info, null, 1));
      // Commit: move any old copy aside, move the new one in, then drop the old one.
      const trash = join(this.root, 'trash', `${name}-${randomUUID()}`);
      const hadOld = await stat(target).then(() => true, () => false);
      if (hadOld) {
        await mkdir(join(this.root, 'trash'), { recursive: true });
        await rename(target, trash);
      }
      await rename(staging, target);
      if (hadOld) await rm(trash, { recursive: true, force: true });
      return info;
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      if (isQuota(e)) throw new StoreQuotaError(name, (e as Error).message);
      throw e;
    }
  }

  async *rows(name: string, opts: { batchRows?: number } = {}): AsyncGenerator<FvqaRow[]> {
    const info = await this.info(name);
    if (!info) throw new StoreError(`no dataset named "${name}"`);
    const dir = this.dir(name);
    const chunks = async function* () {
      for (let i = 0; i < info.chunks; i++) yield decodeChunk(await readChunk(dir, i));
    };
    yield* opts.batchRows ? rebatch(chunks(), opts.batchRows) : chunks();
  }

  async delete(name: string): Promise<void> {
    await rm(this.dir(name), { recursive: true, force: true });
  }

  async close(): Promise<void> {}
}
