/**
 * The side-by-side benchmark's page (bench/page.html) in headless Chromium: the three engines start
 * on the page's adapter, agree on a small workload within its tolerance, and report one timed run
 * each with the metered counters.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { RowResult } from '../bench/harness.js';
import { openBrowser, type TestBrowser } from './browser.js';

let b: TestBrowser;
beforeAll(async () => {
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
});

test('ours, jax-js and TF.js agree on causal GQA attention (T64) and are timed with their dispatches, submits and peak bytes', async () => {
  const page = await b.page('/bench/page.html');
  await page.waitForFunction(() => (window as unknown as { benchReady?: boolean }).benchReady === true);
  const row = (await page.evaluate(async () => {
    const bench = (window as any).bench;
    await bench.start({ engines: ['ours', 'jax-js', 'tfjs'], suites: ['attention'], quick: true });
    const timed = await bench.prepareRow('attention-fwd-64');
    for (const e of timed) await bench.runOnce(e);
    return bench.finishRow();
  })) as RowResult;
  expect(row.results.map((r) => [r.engine, r.status])).toEqual([['ours', 'ok'], ['jax-js', 'ok'], ['tfjs', 'ok']]);
  for (const r of row.results) {
    expect(r.ms, r.engine).toBeGreaterThan(0);
    expect(r.dispatches, r.engine).toBeGreaterThanOrEqual(1);
    expect(r.submits, r.engine).toBeGreaterThanOrEqual(1);
    expect(r.peakBytes, r.engine).toBeGreaterThan(0);
  }
  for (const r of row.results.slice(1)) expect(r.relErr, r.engine).toBeLessThanOrEqual(row.workload.tol);
  expect(b.errors).toEqual([]);
});
