/**
 * The production build of the lab (`vite build`): the page and both workers are emitted, and no ONNX
 * runtime comes with them (the tokenizer no longer drags transformers.js and its 26 MB WebAssembly into
 * the bundle; the lab runs its models on its own engine, whose WebAssembly is generated at run time).
 * The Bench view's TF.js peer brings its wasm backend's three files, loaded only when that peer runs.
 * The shipped checkpoints' weights (checkpoints/, issue 16) are the only files above 1 MiB, a few MB each.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'vite';
import { afterAll, expect, test } from 'vitest';

const out = mkdtempSync(join(tmpdir(), 'mmsearch-lab-build-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

test('vite build emits the page and the workers without an ONNX runtime, every file but the shipped weights below 1 MiB', async () => {
  await build({ configFile: join(import.meta.dirname, '..', 'vite.config.ts'), logLevel: 'silent', build: { outDir: out, emptyOutDir: true } });
  const assets = readdirSync(join(out, 'assets')).map((f) => ({ f, bytes: statSync(join(out, 'assets', f)).size }));
  const names = assets.map((a) => a.f);
  expect(names.some((f) => /^index-.*\.js$/.test(f))).toBe(true);
  expect(names.some((f) => /^trainer\.worker-.*\.js$/.test(f))).toBe(true);
  expect(names.some((f) => /^inference\.worker-.*\.js$/.test(f))).toBe(true);
  // The only WebAssembly files: TF.js's wasm backend, a peer the Bench view loads on demand.
  expect(names.filter((f) => (f.endsWith('.wasm') && !/^tfjs-backend-wasm(-simd|-threaded-simd)?-/.test(f)) || /ort-|onnx/i.test(f))).toEqual([]);
  const weights = assets.filter((a) => a.f.endsWith('.safetensors'));
  expect(weights.filter((a) => a.bytes > 5 * 2 ** 20)).toEqual([]);
  expect(assets.filter((a) => a.bytes > 2 ** 20 && !weights.includes(a))).toEqual([]);
}, 120_000);
