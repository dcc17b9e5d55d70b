/**
 * Shared setup of the export interop tests (hf-compat.test.ts, trl.test.ts): temporary folders removed
 * after a test file's tests, and the lab's tiny-vlm tokenizer (its files as bytes, as the exporters
 * copy them, and loaded).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { loadTokenizer } from '../models/tokenizer.js';

/** The repository root. */
export const root = new URL('../../', import.meta.url).pathname;
export const read = (p: string) => new Uint8Array(readFileSync(p));
export const dec = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));

/** A maker of fresh temporary folders (named `prefix`...), all removed after the calling test file's tests. */
export function tempDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}

/** A local model source's tokenizer files (`models/tiny-vlm`: tokenizer.json, tokenizer_config.json as bytes) and the tokenizer they load as. */
export function tokenizerOf(source: string) {
  const files = { 'tokenizer.json': read(join(root, source, 'tokenizer.json')), 'tokenizer_config.json': read(join(root, source, 'tokenizer_config.json')) };
  return { files, tok: loadTokenizer(dec(files['tokenizer.json']), dec(files['tokenizer_config.json'])) };
}

/** models/tiny-vlm's tokenizer files and the tokenizer they load as. */
export const { files: tokFiles, tok } = tokenizerOf('models/tiny-vlm');
