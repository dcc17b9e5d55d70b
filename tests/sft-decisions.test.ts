/**
 * scripts/sft-decisions.ts on a small neutral world: its counts against the generated warm start
 * (world rows once per epoch, drills once), its loss-weight shares against what each loss_agg_mode implies
 * (token-sum-norm: exactly half on searching; token-mean with length grouping: less, the answers being shorter).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { generateFvqaMini } from '../src/data/fvqa-mini.js';
import { fvqaMiniConfig, parseRecipe } from '../src/rl/recipe.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mmsearch-sft-decisions-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const EPOCHS = 3;
const recipe = (sft: Record<string, unknown>) => {
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  return {
    ...base,
    name: 'sft-decisions-test',
    caption: null,
    data: { source: 'fvqa-mini', fvqa_mini: { ...base.data.fvqa_mini, entities: 12, held_out_entities: 2, test_size: 8, reading_drills: 6, look_drills: 5, grpo_drills: 0 } },
    sft: { ...base.sft, num_train_epochs: EPOCHS, ...sft },
  };
};

/** The script's table rows: kind -> [answers, searches, percent of the loss weight on searching]. */
async function table(sft: Record<string, unknown>): Promise<{ rows: Map<string, number[]>; mixed: number[] }> {
  const file = join(tmp, `r${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(recipe(sft)));
  const { stdout } = await run('npx', ['tsx', 'scripts/sft-decisions.ts', '--recipe', file], { cwd: root, maxBuffer: 1 << 24 });
  const rows = new Map<string, number[]>();
  for (const m of stdout.matchAll(/^\| (\w+) \| (\d+) \/ (\d+) \| ([\d.]+) \|$/gm)) rows.set(m[1], [Number(m[2]), Number(m[3]), Number(m[4])]);
  const mixed = /(\d+) of the (\d+) steps that train a decision train both/.exec(stdout)!.slice(1).map(Number);
  return { rows, mixed };
}

test('counts the trained first turns per kind as the generated warm start holds them; token-sum-norm weighs searching at exactly half, token-mean less', async () => {
  const world = generateFvqaMini(fvqaMiniConfig(parseRecipe(recipe({}))));
  const expected = new Map<string, number[]>();
  for (const r of world.splits.sft) {
    if (r.extra_info!.search_mode === 'rag') continue;
    const times = /^drill/.test(r.extra_info!.entity_id) ? 1 : EPOCHS;
    const k = expected.get(r.extra_info!.question_kind!) ?? [0, 0];
    k[r.prompt.filter((m) => m.role === 'assistant').length > 1 ? 1 : 0] += times;
    expected.set(r.extra_info!.question_kind!, k);
  }
  const balanced = await table({});
  const mean = await table({ loss_agg_mode: 'token-mean', balance_decisions: false });
  expect([...balanced.rows.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [kind, [answers, searches]] of expected) {
    expect(answers, kind).toBe(searches);
    expect(balanced.rows.get(kind)!.slice(0, 2), kind).toEqual([answers, searches]);
    expect(mean.rows.get(kind)!.slice(0, 2), kind).toEqual([answers, searches]);
    // The world's kinds are in every epoch, each epoch one constant: exactly half. (Visual also holds the look
    // drills, dealt once; balance_decisions deals each drill's pair to one epoch, so it is exactly half too.)
    expect(balanced.rows.get(kind)![2], kind).toBe(50);
    expect(mean.rows.get(kind)![2], kind).toBeLessThan(45);
  }
  // Balanced steps mix answers and searches; unbalanced length-grouped ones almost never do.
  expect(balanced.mixed[0] / balanced.mixed[1]).toBeGreaterThan(0.5);
  expect(mean.mixed[0] / mean.mixed[1]).toBeLessThan(0.2);
}, 300_000);
