import { afterAll, beforeAll, expect, test } from 'vitest';
import { startProxy, type Proxy } from '../../proxy/server.js';
import { openBrowser, type TestBrowser } from '../../tests/browser.js';
import { LocalSearchIndex } from './local-index.js';
import { makeTestCorpus, png, TEST_IMAGES } from './testing.js';

let b: TestBrowser;
let proxy: Proxy;

beforeAll(async () => {
  b = await openBrowser();
  // CORS: the proxy allows exactly the dev server's origin.
  proxy = await startProxy({ port: 0, cacheDir: '', origins: [b.url] }, { corpus: makeTestCorpus() });
});

afterAll(async () => {
  await b?.close();
  await proxy?.close();
});

test('IndexedDB cache: repeats and reloads are served without a request to the proxy', async () => {
  const page = await b.page('/tests/pages/search-idb.html');
  await page.waitForFunction(() => 'runIdb' in window);
  const r = await page.evaluate((url) => (window as unknown as { runIdb(u: string): Promise<any> }).runIdb(url), proxy.url);
  expect(r.first[0].title).toBe('Verdant Tower');
  expect(r.again).toEqual(r.first);
  expect(r.third).toEqual(r.first);
  expect(r.attempts).toEqual([1, 0]);
  expect(r.count).toBe(1);
  expect(proxy.cache.stats()).toMatchObject({ hits: 0, misses: 1 });
  expect(b.errors).toEqual([]);
});

test('the local engine in a web worker gives the same results as in Node', async () => {
  const page = await b.page('/tests/pages/search-idb.html');
  await page.waitForFunction(() => 'runWorker' in window);
  const r = await page.evaluate(() => (window as unknown as { runWorker(): Promise<any> }).runWorker());
  const node = await LocalSearchIndex.build(makeTestCorpus());
  expect(r.size).toEqual({ pages: 4, images: 4 });
  expect(r.text).toEqual(await node.textSearch('lighthouse keeper', 2));
  expect(r.image).toEqual(await node.imageSearch({ bytes: png(TEST_IMAGES.e4) }, 2));
  expect(r.image[0].title).toBe('Violet Dome photograph');
  expect(b.errors).toEqual([]);
});
