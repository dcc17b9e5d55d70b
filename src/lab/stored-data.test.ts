import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { bufferFromBytes, readFvqaParquet } from '../data/parquet.js';
import type { FvqaRow } from '../data/types.js';
import { openFsStore } from '../storage/fs-store.js';
import { batchesOf } from '../storage/store.js';
import { readStoredDataset, storedDataFile } from './stored-data.js';

test('a store:NAME data file reads back as the stored rows in FVQA parquet; a missing dataset is named', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mmsearch-stored-data-'));
  try {
    const store = await openFsStore(root);
    const rows = generateFvqaMini({ seed: 3, entities: 12, heldOutEntities: 2, testSize: 10, distractorPages: 1 }).splits.test;
    await store.write('mini-test', batchesOf(rows, 4), { source: 'test' });
    const back: FvqaRow[] = [];
    await readFvqaParquet(bufferFromBytes(await readStoredDataset(storedDataFile('mini-test'), store)), (b) => void back.push(...b));
    expect(back.map((r) => r.prompt)).toEqual(rows.map((r) => r.prompt));
    expect(back.map((r) => r.images.map((i) => i.bytes.length))).toEqual(rows.map((r) => r.images.map((i) => i.bytes.length)));
    await expect(readStoredDataset(storedDataFile('nope'), store)).rejects.toThrow('store:nope: the dataset store has no dataset "nope"');
    await store.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
