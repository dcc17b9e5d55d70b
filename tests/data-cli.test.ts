import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { drillWorldOf } from '../src/data/fvqa-mini.js';
import { FIXTURE, fixtureBytes } from '../src/data/testing.js';
import { worldOf } from '../src/rl/environment.js';
import { readCorpusDir } from '../src/search/corpus-fs.js';
import { parseRecipe } from '../src/rl/recipe.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
let tmp: string;
const cli = (...args: string[]) => run('npx', ['tsx', 'scripts/dataset.ts', ...args], { cwd: root, maxBuffer: 1 << 26 });
const files = (dir: string): Map<string, Buffer> => {
  const out = new Map<string, Buffer>();
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p, `${rel}${n}/`);
      else out.set(rel + n, readFileSync(p));
    }
  };
  walk(dir, '');
  return out;
};

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mmsearch-cli-'));
  fixtureBytes();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test('generate writes the same bytes twice for one seed, other bytes for another', async () => {
  const small = ['--entities', '30', '--held-out', '4', '--test-size', '20'];
  await cli('generate', 'fvqa-mini', '--seed', '1', '--out', join(tmp, 'a'), ...small);
  const { stdout, stderr } = await cli('generate', 'fvqa-mini', '--seed', '1', '--out', join(tmp, 'b'), ...small);
  await cli('generate', 'fvqa-mini', '--seed', '2', '--out', join(tmp, 'c'), ...small);
  const [a, b, c] = ['a', 'b', 'c'].map((d) => files(join(tmp, d)));
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [k, v] of a) expect(v.equals(b.get(k)!), k).toBe(true);
  expect(a.get('train.parquet')!.equals(c.get('train.parquet')!)).toBe(false);
  expect([...a.keys()]).toEqual(expect.arrayContaining(['train.parquet', 'test.parquet', 'heldout.parquet', 'sft.parquet', 'corpus/pages.jsonl', 'corpus/images.jsonl', 'world.json']));
  expect([...a.keys()].filter((k) => k.startsWith('corpus/images/')).length).toBe(30);
  expect(JSON.parse(stdout).splits.test.rows).toBe(20);
  expect(stderr).toMatch(/write train\.parquet: \d+\/\d+ rows/);
});

test("generate --recipe writes the recipe's world: its drill rows, and each drill world's corpus under drill-corpora/", async () => {
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  const recipe = { ...base, name: 'cli-drills', data: { source: 'fvqa-mini', fvqa_mini: { ...base.data.fvqa_mini, entities: 12, held_out_entities: 2, test_size: 8, reading_drills: 3, look_drills: 2, grpo_drills: 2 } } };
  const file = join(tmp, 'cli-drills.json');
  writeFileSync(file, JSON.stringify(recipe));
  const { stdout, stderr } = await cli('generate', 'fvqa-mini', '--recipe', file, '--seed', '4', '--out', join(tmp, 'r'));
  expect(stderr).toMatch(/write drill corpora: \d+\/\d+ corpora/);
  // The same world as the trainer's for that recipe and seed (an independent generation in this process).
  const world = worldOf(parseRecipe({ ...recipe, seed: 4 }));
  const stats = JSON.parse(stdout);
  for (const split of ['train', 'test', 'heldout', 'sft'] as const) expect(stats.splits[split].rows, split).toBe(world.splits[split].length);
  const sftIds = (await parquetReadObjects({ file: await asyncBufferFromFile(join(tmp, 'r', 'sft.parquet')), columns: ['data_id'] })).map((r) => r.data_id);
  expect(sftIds).toEqual(world.splits.sft.map((r) => r.data_id));
  const written = JSON.parse(readFileSync(join(tmp, 'r', 'world.json'), 'utf8'));
  expect(written.config).toMatchObject({ seed: 4, readingDrills: 3, lookDrills: 2, grpoDrills: 2 });
  expect(written.drillWorlds.sort()).toEqual(Object.keys(world.drillCorpora).sort());
  const drillRows = [...world.splits.sft, ...world.splits.train].filter((r) => drillWorldOf(r) !== null);
  expect(drillRows).toHaveLength(3 + 2 * 2 + 2); // a reading drill each, two trajectories per look drill, a question per GRPO drill (its search_free partner is a world row)
  expect(new Set(drillRows.map((r) => drillWorldOf(r)!)).size).toBeGreaterThan(2);
  for (const key of written.drillWorlds) expect(await readCorpusDir(join(tmp, 'r', 'drill-corpora', key)), key).toEqual(world.drillCorpora[key]);
  // World flags and --recipe do not mix; a recipe that is not there is named.
  const mixed = await cli('generate', 'fvqa-mini', '--recipe', file, '--entities', '30', '--out', join(tmp, 'x')).then(() => null, (e: { code: number; stderr: string }) => e);
  expect(mixed?.code).toBe(1);
  expect(mixed?.stderr).toMatch(/--recipe sets the world \(its data\.fvqa_mini\): drop --entities/);
  const missing = await cli('generate', 'fvqa-mini', '--recipe', 'no-such-recipe', '--out', join(tmp, 'x')).then(() => null, (e: { stderr: string }) => e);
  expect(missing?.stderr).toMatch(/recipe no-such-recipe not found \(looked at no-such-recipe and .*recipes\/no-such-recipe\.json\)/);
  const parquet = await cli('generate', 'fvqa-mini', '--recipe', 'smolvlm-256m-lora', '--out', join(tmp, 'x')).then(() => null, (e: { stderr: string }) => e);
  expect(parquet?.stderr).toMatch(/recipe smolvlm-256m-lora: data\.source is \w+, not fvqa-mini: it has no world to generate/);
}, 120_000);

test('import, list, export and inspect through the CLI; bad files exit 1 naming row and field', async () => {
  const store = join(tmp, 'store');
  const { stdout } = await cli('import', FIXTURE, '--store', store);
  expect(JSON.parse(stdout)).toMatchObject({ name: 'mini_data', rows: 5, categories: { none: 5 } });
  const listed = JSON.parse((await cli('list', '--store', store)).stdout);
  expect(listed.map((d: { name: string }) => d.name)).toEqual(['mini_data']);
  const out = join(tmp, 'back.parquet');
  await cli('export', 'mini_data', '--format', 'parquet', '--out', out, '--store', store);
  const report = JSON.parse((await cli('inspect', out, '--json')).stdout);
  expect(report).toMatchObject({ rows: 5, valid_rows: 5, images: { total: 5, decodable: 5 }, errors: [] });
  const original = JSON.parse((await cli('inspect', FIXTURE, '--json')).stdout);
  expect(report.first_rows).toEqual(original.first_rows);
  await cli('export', 'fvqa-mini-test', '--format', 'parquet', '--out', join(tmp, 'gen.parquet'), '--seed', '3', '--store', store);
  const gen = JSON.parse((await cli('inspect', join(tmp, 'gen.parquet'), '--json')).stdout);
  expect(gen.rows).toBe(160);
  expect(gen.categories.search_free + gen.categories.search_required).toBe(160);

  const truncated = join(tmp, 'cut.parquet');
  writeFileSync(truncated, fixtureBytes().subarray(0, 1000));
  const bad = await cli('import', truncated, '--store', store).then(() => null, (e: { code: number; stderr: string }) => e);
  expect(bad?.code).toBe(1);
  expect(bad?.stderr).toMatch(/truncated/);
  expect(JSON.parse((await cli('list', '--store', store)).stdout).map((d: { name: string }) => d.name)).toEqual(['mini_data']);
  const missing = await cli('export', 'nope', '--format', 'parquet', '--out', join(tmp, 'x.parquet'), '--store', store).then(() => null, (e: { stderr: string }) => e);
  expect(missing?.stderr).toMatch(/no dataset "nope".*mini_data/);
});

test('--help prints the command\'s usage (its header comment); an unknown option exits 2 with a one-line message', async () => {
  const { stdout } = await cli('--help');
  expect(stdout).toContain('`npm run dataset -- <command>`');
  expect(stdout).toContain('generate fvqa-mini --seed 1 --out DIR');
  expect(stdout).not.toMatch(/^\s*\*/m);
  const bad = await cli('list', '--bogus').then(() => null, (e: { code: number; stderr: string }) => e);
  expect(bad?.code).toBe(2);
  expect(bad?.stderr).toContain("dataset: Unknown option '--bogus'; --help lists the options");
  expect(bad?.stderr).not.toContain('    at ');
});
