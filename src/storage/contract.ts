/**
 * Behaviour every DatasetStore must have, as plain checks that throw on failure, so that the same
 * checks run on the filesystem store under vitest and on the IndexedDB store inside headless Chromium
 * (tests/pages/data-store.html). Test support only; not used by the lab at run time.
 */
import type { FvqaRow } from '../data/types.js';
import { DatasetFormatError } from '../data/types.js';
import { StoreError, StoreQuotaError, batchesOf, type DatasetStore } from './store.js';

/** SHA-256 (hex) over rows: their JSON without image bytes, then every image's bytes. */
export async function digestRows(rows: readonly FvqaRow[]): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const r of rows) {
    parts.push(enc.encode(JSON.stringify({ ...r, images: r.images.map((i) => i.path) })));
    for (const i of r.images) parts.push(i.bytes);
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
  return Array.from(h, (b) => b.toString(16).padStart(2, '0')).join('');
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`store contract: ${what}`);
}

async function collect(it: AsyncIterable<FvqaRow[]>): Promise<FvqaRow[][]> {
  const out: FvqaRow[][] = [];
  for await (const b of it) out.push(b);
  return out;
}

async function rejects(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => {
    throw new Error('store contract: expected a rejection');
  }, (e: unknown) => e);
}

/**
 * Runs the contract on `store` with `rows` (at least 20, both categories present).
 * `openWithQuota(bytes)` opens the same store with an app-level byte quota.
 * @returns the names of the checks that passed (all of them, or it throws).
 */
export async function runStoreContract(
  store: DatasetStore,
  rows: readonly FvqaRow[],
  openWithQuota: (bytes: number) => Promise<DatasetStore>,
): Promise<string[]> {
  const passed: string[] = [];
  const want = await digestRows(rows);
  const imageBytes = rows.reduce((n, r) => n + r.images.reduce((m, i) => m + i.bytes.length, 0), 0);

  const info = await store.write('alpha', batchesOf(rows as FvqaRow[], 7), { source: 'contract', chunkRows: 8 });
  check(info.rows === rows.length && info.chunks === Math.ceil(rows.length / 8), `row/chunk counts ${info.rows}/${info.chunks}`);
  check(info.imageBytes === imageBytes && info.bytes > imageBytes, `sizes ${info.imageBytes} vs ${imageBytes}`);
  const free = rows.filter((r) => r.category === 'search_free').length;
  check(info.categories.search_free === free && info.categories.search_required === rows.length - free, 'category counts');
  check(JSON.stringify(await store.info('alpha')) === JSON.stringify(info), 'info() equals what write() returned');
  check((await store.list()).map((d) => d.name).join() === 'alpha', 'list() names');
  const chunks = await collect(store.rows('alpha'));
  check(chunks.every((c, i) => c.length === (i < chunks.length - 1 ? 8 : rows.length - 8 * (chunks.length - 1))), 'chunk sizes');
  check((await digestRows(chunks.flat())) === want, 'rows read back byte-identical');
  passed.push('write, list, info and read back');

  const batches = await collect(store.rows('alpha', { batchRows: 5 }));
  check(batches.slice(0, -1).every((b) => b.length === 5) && (await digestRows(batches.flat())) === want, 'batches of 5');
  passed.push('stream in batches');

  // A source that fails half-way (a bad row) leaves neither a new dataset nor a changed old one.
  const failing = async function* () {
    yield rows.slice(0, 10) as FvqaRow[];
    throw new DatasetFormatError(10, 'reward_model.ground_truth', 'empty answer');
  };
  const e1 = await rejects(store.write('beta', failing(), { source: 'contract', chunkRows: 4 }));
  check(e1 instanceof DatasetFormatError && (e1 as DatasetFormatError).row === 10, 'source error passes through');
  check((await store.info('beta')) === null, 'failed new import left nothing');
  await rejects(store.write('alpha', failing(), { source: 'contract', chunkRows: 4 }));
  check((await digestRows((await collect(store.rows('alpha'))).flat())) === want, 'failed re-import kept the old rows');
  check(JSON.stringify(await store.info('alpha')) === JSON.stringify(info), 'failed re-import kept the old info');
  passed.push('atomic import');

  const half = rows.slice(0, 10) as FvqaRow[];
  await store.write('alpha', [half], { source: 'contract-2' });
  check((await digestRows((await collect(store.rows('alpha'))).flat())) === (await digestRows(half)), 'replaced rows');
  check((await store.info('alpha'))?.source === 'contract-2', 'replaced info');
  passed.push('replace');

  const limited = await openWithQuota(info.bytes + imageBytes / 2);
  const before = JSON.stringify(await limited.list());
  const e2 = await rejects(limited.write('gamma', batchesOf(rows as FvqaRow[], 4), { source: 'contract', chunkRows: 4 }));
  check(e2 instanceof StoreQuotaError && /store is unchanged/.test((e2 as Error).message), `quota error: ${e2}`);
  check(JSON.stringify(await limited.list()) === before, 'quota failure left the store unchanged');
  await limited.close();
  passed.push('quota exceeded: clear error, store unchanged');

  check((await rejects(store.write('../evil', [half], { source: 'x' }))) instanceof StoreError, 'bad name refused');
  check((await rejects(collect(store.rows('nope')))) instanceof StoreError, 'unknown dataset refused');
  await store.delete('alpha');
  check((await store.list()).length === 0 && (await store.info('alpha')) === null, 'delete');
  passed.push('names, unknown datasets, delete');
  return passed;
}
