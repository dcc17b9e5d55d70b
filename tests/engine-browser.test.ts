/**
 * The engine on the browser's WebGPU (headless Chromium, SwiftShader here) and on the WebAssembly
 * backend (relaxed SIMD, threads), in a page and in a dedicated worker, against the CPU reference
 * computed in the same page.
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

type Report = { adapter: string; wasm: string; results: Record<string, number>; error?: string };

for (const where of ['pageCheck', 'workerCheck'] as const) {
  test(`engine ops forward+backward on navigator.gpu and WebAssembly match the CPU reference (${where})`, async () => {
    const page = await b.page('/tests/pages/engine.html');
    await page.waitForFunction((fn) => typeof (window as any)[fn] === 'function', where);
    const report = (await page.evaluate((fn) => (window as any)[fn](), where)) as Report;
    expect(report.error).toBeUndefined();
    expect(Object.keys(report.results)).toHaveLength(6);
    // The lab's pages are cross-origin isolated (vite.config.ts headers): threads, and Chromium's relaxed SIMD.
    expect(report.wasm).toMatch(/relaxed FMA.*[2-9] threads/);
    for (const [name, worst] of Object.entries(report.results)) expect(worst, name).toBeLessThanOrEqual(1);
    expect(b.errors).toEqual([]);
  });
}
