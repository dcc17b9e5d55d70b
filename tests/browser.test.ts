import { afterAll, beforeAll, expect, test } from 'vitest';
import { openBrowser, type TestBrowser } from './browser.js';

let b: TestBrowser;
beforeAll(async () => {
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
});

test('headless Chromium exposes a WebGPU adapter', async () => {
  const page = await b.page('/tests/pages/adapter.html');
  const info = await page.evaluate(() => (window as unknown as { adapterInfo: Promise<unknown> }).adapterInfo);
  expect(info).toMatchObject({ maxBufferSize: expect.any(Number) });
  expect(b.errors).toEqual([]);
});
