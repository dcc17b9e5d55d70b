/**
 * The engine on the browser's WebGPU (headless Chromium, SwiftShader here), in a page and in a
 * dedicated worker, against the CPU reference computed in the same page.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { openBrowser, type TestBrowser } from './browser.js';

let b: TestBrowser;
beforeAll(async () => {
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
});

type Report = { adapter: string; results: Record<string, number>; error?: string };

for (const where of ['pageCheck', 'workerCheck'] as const) {
  test(`engine ops forward+backward on navigator.gpu match the CPU reference (${where})`, async () => {
    const page = await b.page('/tests/pages/engine.html');
    await page.waitForFunction((fn) => typeof (window as any)[fn] === 'function', where);
    const report = (await page.evaluate((fn) => (window as any)[fn](), where)) as Report;
    expect(report.error).toBeUndefined();
    expect(Object.keys(report.results)).toHaveLength(3);
    for (const [name, worst] of Object.entries(report.results)) expect(worst, name).toBeLessThanOrEqual(1);
    expect(b.errors).toEqual([]);
  });
}
