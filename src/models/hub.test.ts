/**
 * Loading a policy model by `hf:` reference from a local hub server (127.0.0.1) serving the fixture
 * checkpoints: the same logits as loading the files directly, and a second load served by the cache.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { FsHubCache } from '../storage/fs-hub-cache.js';
import { startLocalHub, type LocalHub } from '../hub/local-hub.js';
import { writeFixtureHub } from '../../scripts/make-fixtures.js';
import { loadFromHub } from './hub.js';
import { lastLogits } from './llama.js';
import { pixelValues } from './image.js';

let dir: string;
let hub: LocalHub;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mmsearch-hub-'));
  writeFixtureHub(join(dir, 'hub'), 5);
  hub = await startLocalHub(join(dir, 'hub'));
});
afterAll(async () => {
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('hf:fixtures/tiny-llama-sharded loads through the cache; the second load downloads nothing', async () => {
  const be = new E.CpuBackend();
  const cache = new FsHubCache(join(dir, 'cache'));
  const progress: number[] = [];
  const m1 = await loadFromHub('hf:fixtures/tiny-llama-sharded', be, { cache, endpoint: hub.url }, (done) => progress.push(done));
  expect(progress.at(-1)).toBe(m1.parameters().length);
  const gets = hub.requests.filter((r) => r.method === 'GET').length;
  const m2 = await loadFromHub('hf:fixtures/tiny-llama-sharded@main', be, { cache, endpoint: hub.url });
  expect(hub.requests.filter((r) => r.method === 'GET').length).toBe(gets);
  const run = async (m: typeof m1) => E.noGrad(() => E.scope(() => lastLogits(m, m.forward({ ids: Int32Array.from([1, 5, 9]), batch: 1, length: 3 })).keep())).data();
  expect(Array.from(await run(m2))).toEqual(Array.from(await run(m1)));
  await expect(loadFromHub('hf:fixtures/no-such-model', be, { cache, endpoint: hub.url })).rejects.toThrow(/404|not found/i);
});

test('pixelValues: identity size keeps pixels; values normalised to [-1, 1] in CHW order', () => {
  const rgba = Uint8Array.from([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255]); // 2x2: red, green / blue, white
  const p = pixelValues(rgba, 2, 2, 2);
  expect(Array.from(p)).toEqual([1, -1, -1, 1, /* G */ -1, 1, -1, 1, /* B */ -1, -1, 1, 1]);
  const up = pixelValues(rgba, 2, 2, 4); // bilinear: corners keep their colour, centre blends all four
  expect(up[0]).toBe(1); // red channel at (0, 0)
  expect(up[(0 * 4 + 1) * 4 + 1]).toBeCloseTo(((0.5625 * 255 + 0.1875 * 0 + 0.1875 * 0 + 0.0625 * 255) / 255 - 0.5) / 0.5, 5);
  expect(() => pixelValues(rgba, 3, 2, 2)).toThrow(/16 bytes for a 3x2 RGBA image/);
});
