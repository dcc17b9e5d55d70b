import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import type { FvqaRow } from '../data/types.js';
import { digestRows, runStoreContract } from './contract.js';
import { openFsStore } from './fs-store.js';
import { STORE_SCHEMA_VERSION, StoreError } from './store.js';

let rows: FvqaRow[];
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'mmsearch-store-'));
  dirs.push(d);
  return d;
};
beforeAll(() => {
  const w = generateFvqaMini({ seed: 5, entities: 24, heldOutEntities: 4, testSize: 30, distractorPages: 2 });
  rows = w.splits.test;
});
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('filesystem dataset store', () => {
  test('meets the store contract', async () => {
    const root = tempDir();
    const store = await openFsStore(root);
    const passed = await runStoreContract(store, rows, (q) => openFsStore(root, { quotaBytes: q }));
    expect(passed).toHaveLength(6);
  });

  test('an interrupted import (staging left behind) is swept on open and never listed', async () => {
    const root = tempDir();
    const store = await openFsStore(root);
    await store.write('kept', [rows], { source: 't' });
    mkdirSync(join(root, 'staging', 'half-import'), { recursive: true });
    writeFileSync(join(root, 'staging', 'half-import', 'chunk-000000.json'), '[]');
    const again = await openFsStore(root);
    expect((await again.list()).map((d) => d.name)).toEqual(['kept']);
    expect(readdirSync(root).includes('staging')).toBe(false);
  });

  test('migrates a v1 store (no category counts) and refuses a newer one', async () => {
    const root = tempDir();
    const store = await openFsStore(root);
    const info = await store.write('old', [rows], { source: 't', chunkRows: 8 });
    // Rewrite it as v1 left it: no marker file, records without categories.
    const rec = JSON.parse(readFileSync(join(root, 'datasets', 'old', 'dataset.json'), 'utf8'));
    delete rec.categories;
    writeFileSync(join(root, 'datasets', 'old', 'dataset.json'), JSON.stringify(rec));
    rmSync(join(root, 'store.json'));
    const migrated = await openFsStore(root);
    expect(await migrated.info('old')).toEqual(info);
    expect(JSON.parse(readFileSync(join(root, 'store.json'), 'utf8')).schemaVersion).toBe(STORE_SCHEMA_VERSION);
    const back: FvqaRow[] = [];
    for await (const b of migrated.rows('old')) back.push(...b);
    expect(await digestRows(back)).toBe(await digestRows(rows));
    writeFileSync(join(root, 'store.json'), JSON.stringify({ schemaVersion: STORE_SCHEMA_VERSION + 1 }));
    await expect(openFsStore(root)).rejects.toThrow(StoreError);
    await expect(openFsStore(root)).rejects.toThrow(/newer/);
  });
});
