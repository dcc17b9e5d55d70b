import { afterAll, beforeAll, expect, test } from 'vitest';
import { generateFvqaMini, SPLITS } from '../src/data/fvqa-mini.js';
import { digestRows } from '../src/storage/contract.js';
import { STORE_SCHEMA_VERSION } from '../src/storage/store.js';
import { openBrowser, type TestBrowser } from './browser.js';

type Win = Record<string, (...a: unknown[]) => Promise<unknown>>;
let b: TestBrowser;
beforeAll(async () => {
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
});

test('IndexedDB store meets the store contract in headless Chromium', async () => {
  const page = await b.page('/tests/pages/data-store.html');
  const passed = await page.evaluate(() => (window as unknown as Win).runContract());
  expect(passed).toEqual([
    'write, list, info and read back',
    'stream in batches',
    'atomic import',
    'replace',
    'quota exceeded: clear error, store unchanged',
    'names, unknown datasets, delete',
  ]);
  expect(b.errors).toEqual([]);
});

test('IndexedDB v1 database is migrated; a newer one is refused', async () => {
  const page = await b.page('/tests/pages/data-store.html');
  const r = (await page.evaluate(() => (window as unknown as Win).runMigration())) as Record<string, unknown>;
  expect(r.migrated).toEqual(r.expected);
  expect(r.same).toBe(true);
  expect(r.version).toBe(STORE_SCHEMA_VERSION);
  expect(r.newer).toMatch(/StoreError: .*newer schema/);
});

test('a parquet File imports into IndexedDB in the browser, in batches with progress', async () => {
  const page = await b.page('/tests/pages/data-store.html');
  const r = await page.evaluate(() => (window as unknown as Win).runBlobImport());
  expect(r).toEqual({ rows: 40, same: true, progress: [8, 16, 24, 32, 40] });
  expect(b.errors).toEqual([]);
});

test('the generator gives the same bytes in Chromium as in Node', async () => {
  const page = await b.page('/tests/pages/data-store.html');
  const config = { seed: 7, entities: 30, heldOutEntities: 4, testSize: 20 };
  const inBrowser = await page.evaluate((c) => (window as unknown as Win).generateDigest(c), config);
  const w = generateFvqaMini(config);
  expect(inBrowser).toBe(await digestRows(SPLITS.flatMap((s) => w.splits[s])));
});
