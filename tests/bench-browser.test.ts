/**
 * The side-by-side benchmark's page (bench/page.html) in headless Chromium: the WebGPU engines start
 * on the page's adapter, agree on a small workload within its tolerance, and report one timed run
 * each with the metered counters; the WebAssembly engines (ours-wasm and the peers' wasm backends)
 * run every --quick workload they support, multithreaded (the page is cross-origin isolated), agree
 * with ours, and report their memory instead of GPU counters.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { SUITES, markdownTable, type RowResult } from '../bench/harness.js';
import { workloads } from '../bench/workloads.js';
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
    expect(r.peakMeasure, r.engine).toBe('gpu-buffers');
  }
  for (const r of row.results.slice(1)) expect(r.relErr, r.engine).toBeLessThanOrEqual(row.workload.tol);
  expect(b.errors).toEqual([]);
}, 600_000);

// One test per workload, each on its own page: the train rows take minutes of software WebGPU and
// WebAssembly, and a shared CI machine may run another browser test beside them.
type Info = { crossOriginIsolated: boolean; engines: { name: string; version: string }[] };
const wasmRows: RowResult[] = [];

test.each(workloads(SUITES, true).map((w) => [w.id, w.suite]))('ours-wasm, jax-js-wasm and tfjs-wasm run --quick %s if they support it, agree with ours, and report memory instead of GPU counters', async (id, suite) => {
  const page = await b.page('/bench/page.html');
  await page.waitForFunction(() => (window as unknown as { benchReady?: boolean }).benchReady === true);
  const { info, rows } = (await page.evaluate(
    async ([id, suite]) => {
      const bench = (window as any).bench;
      const info = await bench.start({ engines: ['ours', 'ours-wasm', 'jax-js-wasm', 'tfjs-wasm'], suites: [suite], quick: true });
      // Check and warm-up (prepareRow), then one timed run each.
      const timed = await bench.prepareRow(id);
      for (const e of timed) {
        await bench.before(e);
        await bench.runOnce(e);
      }
      return { info, rows: [await bench.finishRow()] };
    },
    [id, suite],
  )) as { info: Info; rows: RowResult[] };
  await page.close(); // its WebGPU device, wasm heaps and jax-js's workers

  expect(info.crossOriginIsolated).toBe(true);
  const version = (n: string) => info.engines.find((e) => e.name === n)?.version ?? '';
  expect(version('ours-wasm')).toMatch(/wasm: WebAssembly SIMD.*, \d+ threads?/);
  // Thread counts depend on the machine (jax-js: a worker per logical core; TF.js: half of them).
  expect(version('jax-js-wasm')).toMatch(/\(wasm, jit, \d+ threads?\)/);
  expect(version('tfjs-wasm')).toMatch(/tfjs-backend-wasm 4\.22\.0 \(SIMD, threaded build/);

  const unsupported = /f16 is storage-only|no float16 ops|f32 only|no UnsortedSegmentSum|ours-only row/;
  for (const { workload: w, results } of rows) {
    expect(results.map((r) => r.engine), w.id).toEqual(['ours', 'ours-wasm', 'jax-js-wasm', 'tfjs-wasm']);
    for (const r of results) {
      const where = `${w.id} ${r.engine}: ${r.note ?? ''}`;
      if (r.status === 'unsupported') {
        expect(r.note, where).toMatch(unsupported);
        continue;
      }
      expect(r.status, where).toBe('ok');
      expect(r.ms, where).toBeGreaterThan(0);
      if (r.engine === 'ours') continue;
      expect(r.relErr, where).toBeLessThanOrEqual(w.tol);
      // No GPU counters on the CPU engines; memory as each library exposes it.
      expect(r.dispatches, where).toBeUndefined();
      expect(r.submits, where).toBeUndefined();
      if (r.engine === 'jax-js-wasm') expect(r.peakBytes, where).toBeUndefined();
      else {
        // ours-wasm: its live tensors' peak (comparable with ours on WebGPU); TF.js: its heap
        expect(r.peakMeasure, where).toBe(r.engine === 'ours-wasm' ? 'live-bytes' : 'wasm-heap');
        expect(r.peakBytes, where).toBeGreaterThan(0);
      }
    }
  }
  wasmRows.push(...rows);
  expect(b.errors).toEqual([]);
}, 600_000);

test('across the suites, every engine ran the workloads it supports, and the table gives no memory ratio between different measures', () => {
  expect(wasmRows.map((r) => r.workload.id)).toEqual(workloads(SUITES, true).map((w) => w.id));
  const ok = new Map<string, number>();
  for (const { results } of wasmRows) for (const r of results) if (r.status === 'ok') ok.set(r.engine, (ok.get(r.engine) ?? 0) + 1);
  // Every f32 workload (f16 matmuls are unsupported everywhere; the SFT step is ours only); TF.js's wasm
  // backend lacks the gradient of gather, so it runs the matmuls, attention forward, the linear step and decoding.
  const f32 = wasmRows.filter((r) => !(r.workload.spec.kind === 'matmul' && r.workload.spec.dtype === 'f16')).length;
  expect(Object.fromEntries(ok)).toEqual({ ours: f32, 'ours-wasm': f32, 'jax-js-wasm': f32 - 1, 'tfjs-wasm': 10 });

  const table = markdownTable(wasmRows);
  expect(table).toMatch(/\| matmul f32 \[256x512\]·\[512x512\]ᵀ \| jax-js-wasm \|( [^|]*\|){6} n\/a \| [\d.]+x \|/);
  // TF.js's heap and ours-wasm's live bytes are different measures: no memory ratio between them.
  expect(table).toMatch(/\| matmul f32 \[256x512\]·\[512x512\]ᵀ \| tfjs-wasm \|( [^|]*\|){6} [\d.]+ \(heap\) \| [\d.]+x \|  \|/);
});
