import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { writeFixtureHub } from '../../scripts/make-fixtures.js';
import { openBrowser, type TestBrowser } from '../../tests/browser.js';
import type { FixtureRepo } from '../io/fixtures.js';
import { openSafetensorsBuffer } from '../io/safetensors.js';
import type { DownloadProgress } from './download.js';
import { startLocalHub, type LocalHub } from './local-hub.js';

// Real IndexedDB in headless Chromium; the page fetches from a local hub on another origin (CORS).
let b: TestBrowser;
let hub: LocalHub;
let root: string;
let repos: FixtureRepo[];
const FILE = 'model.safetensors';
const REF = 'hf:fixtures/tiny-idefics3';

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'hub-browser-'));
  repos = writeFixtureHub(root, 0);
  const size = repos.find((r) => r.repo === 'fixtures/tiny-idefics3')!.files.get(FILE)!.length;
  // The first GET of the weights drops the connection after 40% of the body.
  hub = await startLocalHub(root, { truncate: (p, i) => (p.endsWith(`tiny-idefics3/resolve/main/${FILE}`) && i === 0 ? Math.floor(size * 0.4) : undefined) });
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
});

interface Result {
  size: number;
  sha256: string;
  progress: DownloadProgress[];
}
type HubWindow = Record<string, (a: unknown) => Promise<unknown>>;

test('IndexedDB cache: resumed download, chunked storage, no second download after a reload', async () => {
  const body = repos.find((r) => r.repo === 'fixtures/tiny-idefics3')!.files.get(FILE)!;
  const args = { endpoint: hub.url, ref: REF, file: FILE, db: 'hub-test', chunkBytes: 8192 };
  const page = await b.page('/tests/pages/hub-cache.html');
  const first = (await page.evaluate((a) => (window as unknown as HubWindow).hubDownload(a), args)) as Result;
  expect(first.size).toBe(body.length);
  expect(first.sha256).toBe(createHash('sha256').update(body).digest('hex'));
  const gets = hub.requests.filter((q) => q.method === 'GET' && q.path.endsWith(FILE));
  const cut = Math.floor(body.length * 0.4);
  expect(gets.map((q) => q.range)).toEqual([undefined, `bytes=${cut}-`]);
  for (let i = 1; i < first.progress.length; i++) expect(first.progress[i].loaded).toBeGreaterThanOrEqual(first.progress[i - 1].loaded);
  expect(first.progress.at(-1)).toMatchObject({ loaded: body.length, total: body.length, done: true, fromCache: false });
  expect(await page.evaluate((a) => (window as unknown as HubWindow).hubState(a), { db: 'hub-test', key: { repo: 'fixtures/tiny-idefics3', revision: 'main', file: FILE } })).toEqual({
    version: { size: body.length, etag: expect.any(String) },
    stored: body.length,
    complete: true,
  });
  expect(await page.evaluate((a) => (window as unknown as HubWindow).hubChunkCount(a), { db: 'hub-test' })).toBe(Math.ceil(cut / 8192) + Math.ceil((body.length - cut) / 8192)); // 8 KiB pieces of each response
  await page.close();

  // A new page load (same origin, same IndexedDB): served from the cache, the server sends no body.
  const before = hub.requests.length;
  const page2 = await b.page('/tests/pages/hub-cache.html');
  const second = (await page2.evaluate((a) => (window as unknown as HubWindow).hubDownload(a), args)) as Result;
  expect(second.sha256).toBe(first.sha256);
  expect(second.progress).toEqual([expect.objectContaining({ loaded: body.length, done: true, fromCache: true })]);
  expect(hub.requests.slice(before).filter((q) => q.method === 'GET')).toEqual([]);

  // Weights read from the cached Blob match the fixture.
  const name = 'model.vision_model.embeddings.patch_embedding.weight';
  const values = (await page2.evaluate((a) => (window as unknown as HubWindow).hubTensor(a), { endpoint: hub.url, ref: REF, db: 'hub-test', name })) as number[];
  expect(values).toEqual(Array.from(await (await openSafetensorsBuffer(body)).readF32(name)));
  // The only console errors are the deliberate drop and weights() probing for an index that the
  // single-file checkpoint does not have.
  expect(b.errors).toEqual([
    expect.stringContaining('net::ERR_CONTENT_LENGTH_MISMATCH'),
    expect.stringContaining('status of 404'),
  ]);
});
