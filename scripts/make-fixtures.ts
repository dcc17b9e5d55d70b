/**
 * Writes the fixture checkpoints of src/io/fixtures.ts as a hub-shaped folder whose paths equal the
 * hub's resolve URLs: `<out>/<org>/<name>/resolve/main/<file>`, so a static server on that folder
 * (src/hub/local-hub.ts) is a hub endpoint.
 *
 *   npx tsx scripts/make-fixtures.ts [outDir=.cache/fixtures/hub] [--seed N]
 *
 * Tests call `writeFixtureHub` in beforeAll. Files are written to a temporary name and renamed, so
 * test files generating the same folder concurrently never see a half-written file.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildFixtures, type FixtureRepo } from '../src/io/fixtures.js';

/** Default output folder (ignored by git). */
export const DEFAULT_FIXTURE_HUB = resolve(import.meta.dirname, '..', '.cache', 'fixtures', 'hub');

/**
 * Writes every fixture repo under `outDir` at revision `main`.
 * @returns the repos written (their files in memory too, for byte comparisons in tests).
 */
export function writeFixtureHub(outDir = DEFAULT_FIXTURE_HUB, seed = 0): FixtureRepo[] {
  const repos = buildFixtures(seed);
  for (const r of repos) {
    for (const [file, bytes] of r.files) {
      const path = join(outDir, r.repo, 'resolve', 'main', file);
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      writeFileSync(tmp, bytes);
      renameSync(tmp, path);
    }
  }
  return repos;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const seedAt = args.indexOf('--seed');
  const seed = seedAt >= 0 ? Number(args[seedAt + 1]) : 0;
  if (!Number.isInteger(seed)) throw new Error('--seed needs an integer');
  const out = resolve(args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--seed') ?? DEFAULT_FIXTURE_HUB);
  for (const r of writeFixtureHub(out, seed)) console.log(`${r.repo}: ${[...r.files.keys()].join(', ')}`);
  console.log(`fixtures written to ${out}`);
}
