/**
 * scripts/reproduce-fvqa-mini.ts --report-only refuses run folders trained with other settings than the recipe
 * it reports (a stale run must not enter the tables), naming the folder and the fields; a warm start is checked
 * on what it depends on only (a recipe that changes GRPO reuses it); a run whose recipe.json differs only in
 * name and description is reported, and the report says under which name it trained; hazy and sure familiar
 * facts are counted apart, greedy and sampled; results kept from an
 * earlier reproduction under other settings are refused; the machine named is the one that ran the seed.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';
import { fvqaMiniConfig, loadRecipe } from '../src/rl/recipe.js';
import { generateFvqaMini } from '../src/data/fvqa-mini.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'mmsearch-reproduce-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** OUT/seed-1 with a warm start and a finished main run (empty evaluations) whose recipe.json files are `recipe` (the warm start's `warmStart`). */
function runFolder(out: string, recipe: Record<string, unknown>, warmStart = recipe): void {
  for (const d of ['warm-start', 'main/checkpoint']) mkdirSync(join(out, 'seed-1', d), { recursive: true });
  writeFileSync(join(out, 'seed-1', 'warm-start', 'recipe.json'), JSON.stringify(warmStart));
  writeFileSync(join(out, 'seed-1', 'main', 'recipe.json'), JSON.stringify(recipe));
  writeFileSync(join(out, 'seed-1', 'main', 'checkpoint', 'eval.json'), JSON.stringify({ summaries: [], records: [] }));
}

const report = (out: string) =>
  run('npx', ['tsx', 'scripts/reproduce-fvqa-mini.ts', '--recipe', 'fvqa-mini', '--seeds', '1', '--out', out, '--report', join(out, 'report.md'), '--report-only'], { cwd: root })
    .then((r) => ({ code: 0, stderr: r.stderr }), (e: { code: number; stderr: string }) => e);

test('a run trained with other settings is refused, one under another name only is reported as such', async () => {
  const main = loadRecipe(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  const stale = join(tmp, 'stale');
  const otherGrpo = { ...main, grpo: { ...main.grpo, max_steps: main.grpo.max_steps + 1 } };
  runFolder(stale, otherGrpo);
  const refused = await report(stale);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/seed-1\/main was trained with other settings than recipes\/fvqa-mini\.json \(they differ in grpo;/);
  const staleWarmStart = join(tmp, 'stale-warm-start');
  runFolder(staleWarmStart, main, { ...otherGrpo, sft: { ...main.sft, num_train_epochs: 1 } });
  const refusedWarmStart = await report(staleWarmStart);
  expect(refusedWarmStart.code).toBe(2);
  expect(refusedWarmStart.stderr).toMatch(/seed-1\/warm-start was trained with other settings than recipes\/fvqa-mini\.json \(they differ in sft;/);
  // A warm start of a recipe that differs in GRPO only is this recipe's.
  const reused = join(tmp, 'reused');
  runFolder(reused, main, otherGrpo);
  const reusedOk = await report(reused);
  expect(reusedOk.code, reusedOk.stderr).toBe(0);

  const renamed = join(tmp, 'renamed');
  runFolder(renamed, { ...main, name: 'fvqa-mini-old-name', description: 'the same fields' });
  // The main run answered one hazy familiar fact after a search and one sure fact from memory; the report counts them apart.
  const world = generateFvqaMini({ ...fvqaMiniConfig(main), readingDrills: 0, lookDrills: 0, grpoDrills: 0 });
  const facts = world.splits.test.filter((r) => r.extra_info!.question_kind === 'familiar_fact');
  const isHazy = (r: (typeof facts)[number]) => world.hazyFacts.includes(`${r.extra_info!.entity_id}/${r.extra_info!.attribute}`);
  const [hazy, sure] = [facts.find(isHazy)!, facts.find((r) => !isHazy(r))!];
  writeFileSync(join(renamed, 'seed-1', 'main', 'checkpoint', 'eval.json'), JSON.stringify({
    summaries: [], records: [{ mode: 'on_demand', data_id: hazy.data_id, searched: true, correct: true }, { mode: 'on_demand', data_id: sure.data_id, searched: false, correct: true }],
  }));
  // The warm start sampled: the sure fact answered right from memory, the hazy one wrong after a search.
  writeFileSync(join(renamed, 'seed-1', 'warm-start', 'eval-test-t0.7.json'), JSON.stringify({
    summaries: [], decoding: { samples: 1 }, records: [{ mode: 'on_demand', data_id: sure.data_id, searched: false, correct: true }, { mode: 'on_demand', data_id: hazy.data_id, searched: true, correct: false }],
  }));
  // The main run sampled: the hazy fact searched in both samples (right once), the sure one in neither.
  writeFileSync(join(renamed, 'seed-1', 'main', 'eval-test-t0.7.json'), JSON.stringify({
    summaries: [], decoding: { samples: 2 }, records: [
      { mode: 'on_demand', data_id: hazy.data_id, searched: true, correct: true }, { mode: 'on_demand', data_id: hazy.data_id, searched: true, correct: false },
      { mode: 'on_demand', data_id: sure.data_id, searched: false, correct: true }, { mode: 'on_demand', data_id: sure.data_id, searched: false, correct: true },
    ],
  }));
  // Twenty GRPO steps: sampled search_free ratio 0.75 over steps 0-4, 1 over 5-9, 0.5 over the last ten (a late split).
  const steps = Array.from({ length: 20 }, (_, i) => ({ phase: 'grpo', step: i, 'search_ratio/search_free': i < 5 ? 0.75 : i < 10 ? 1 : 0.5, 'search_ratio/search_required': 1 }));
  writeFileSync(join(renamed, 'seed-1', 'main', 'metrics.jsonl'), steps.map((m) => JSON.stringify(m)).join('\n') + '\n');
  const ok = await report(renamed);
  expect(ok.code, ok.stderr).toBe(0);
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toContain('Seed 1: main run trained under the recipe name `fvqa-mini-old-name`, whose fields');
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toContain('after GRPO: hazy facts searched 1 of 1 (right 1), sure facts searched 0 of 1 (right 1)');
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toContain('The same sampled at temperature 0.7 (counts are samples): warm start: hazy facts searched 1 of 1 (right 0), sure facts searched 0 of 1 (right 1); after GRPO: hazy facts searched 2 of 2 (right 1), sure facts searched 0 of 2 (right 2).');
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toContain('after GRPO the hazy facts are searched 100.0% (2 of 2) of the time, the sure ones 0.0% (0 of 2); the warm start searched them 100.0% (1 of 1) and 0.0% (0 of 1). Per seed after GRPO, hazy / sure: 1: 100.0 / 0.0.');
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toContain('| 1 | 0.75 / 1.00 | – / – | 0.50 / 1.00 |');
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toContain('Familiar facts: answered from memory right 100.0% (of 1), after a search 0.0% (of 1).');
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toContain('The categories split late or little on seed 1 (sampled search_free search ratio 0.50 over the last ten GRPO steps');
  // No ablation ran: their targets are listed as not measured on every seed, not passed over.
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toMatch(/Not measured on every seed yet: .*search_required prompts only: search_free SR >= main \+ 30 \(0 of 1 seeds\)/);

  // --report-only draws no seed and writes no seeds.json: --draw is for the runs.
  await run('npx', ['tsx', 'scripts/reproduce-fvqa-mini.ts', '--recipe', 'fvqa-mini', '--seeds', '1', '--draw', '2', '--out', renamed, '--report', join(renamed, 'report.md'), '--report-only'], { cwd: root });
  expect(existsSync(join(renamed, 'seeds.json'))).toBe(false);
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).not.toContain('without a finished main run');

  // The machine is the one that ran the seed (its machine.json), not the one that writes the report.
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toContain('Machines: seed 1: not recorded;');
  writeFileSync(join(renamed, 'seed-1', 'machine.json'), JSON.stringify({ machines: ['2 × Test CPU, 3 GiB, no GPU, Node v0'] }));
  expect((await report(renamed)).code).toBe(0);
  expect(readFileSync(join(renamed, 'report.md'), 'utf8')).toContain('Machine: 2 × Test CPU, 3 GiB, no GPU, Node v0;');

  // Results kept from another machine's reproduction follow the listed seeds: chosen ones, then drawn ones, by number.
  const kept = JSON.parse(readFileSync(join(renamed, 'report', 'seed-1.json'), 'utf8'));
  for (const [seed, drawn] of [[100, true], [12, true], [3, false]] as const) writeFileSync(join(renamed, 'report', `seed-${seed}.json`), JSON.stringify({ ...kept, seed, drawn }));
  expect((await report(renamed)).code).toBe(0);
  const curveRows = [...readFileSync(join(renamed, 'report.md'), 'utf8').matchAll(/^\| (\d+)( \(drawn\))? \| 0\.75 \/ 1\.00 \|/gm)].map((m) => m[1]);
  expect(curveRows).toEqual(['1', '3', '12', '100']);
  // Results kept from another machine's reproduction enter the report only if they were made under the same settings.
  writeFileSync(join(renamed, 'report', 'seed-5.json'), JSON.stringify({ ...kept, seed: 5, recipe: otherGrpo }));
  const refusedKept = await report(renamed);
  expect(refusedKept.code).toBe(2);
  expect(refusedKept.stderr).toMatch(/report\/seed-5\.json holds results of other settings than recipes\/fvqa-mini\.json \(they differ in grpo\)/);
}, 120_000);
