/**
 * `npx tsx scripts/search-chain.ts RUN_DIR/eval-heldout.json [RUN_DIR/eval-train.json ...more]`
 *
 * Where the search chains of an evaluation's search_required rows break (src/rl/evaluate.ts
 * searchChainStats), as a Markdown table per file: per mode and question kind, rows, image searches, the
 * title restated in the reasoning and copied into the text query, the text search finding the title's page,
 * correct answers given that page, and correct answers in all. A train-split file's rows are split by
 * creature: the GRPO drills' (64 creatures new to the warm start: how well it copies names it has never seen,
 * from many more names than the heldout split's four) and the world's own. The world is rebuilt from the
 * recipe.json beside the file. Make eval-train.json with `npm run eval -- --checkpoint RUN_DIR --split train
 * --modes rag --runtime wasm` (under a minute). docs/fvqa-mini-warm-start.md uses it on both splits.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TEMPLATES } from '../src/data/questions.js';
import { worldOf } from '../src/rl/environment.js';
import { searchChainStats, type EvalRecord } from '../src/rl/evaluate.js';
import { loadRecipe } from '../src/rl/recipe.js';
import { parseCli } from './cli.js';

const { positionals } = parseCli({ allowPositionals: true, options: {} }, import.meta.url);
if (!positionals.length) {
  console.error('search-chain: name one or more eval-<split>.json files (written by npm run eval); --help shows the usage');
  process.exit(2);
}

/** The records grouped by creature: train-split rows by GRPO drill or world creature, other splits as one group. */
function byCreatures(file: string, records: EvalRecord[]): [string, EvalRecord[]][] {
  if (!records.some((r) => r.data_id.startsWith('fvqa_mini_train_'))) return [['all', records]];
  const recipeFile = join(dirname(file), 'recipe.json');
  const world = worldOf(loadRecipe(readFileSync(recipeFile, 'utf8'), recipeFile), undefined, { warmStartDrills: false });
  const drillRows = new Set(world.splits.train.filter((r) => r.extra_info!.entity_id.startsWith('drillg')).map((r) => r.data_id));
  return [
    ['new (GRPO drills)', records.filter((r) => drillRows.has(r.data_id))],
    ["the world's", records.filter((r) => !drillRows.has(r.data_id))],
  ];
}

for (const file of positionals) {
  const { records } = JSON.parse(readFileSync(file, 'utf8')) as { records: EvalRecord[] };
  console.log(`${file}\n\n| creatures | mode | question | rows | image search | title in reasoning | title in query | right page | correct given page | correct |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const [creatures, group] of byCreatures(file, records))
    for (const s of searchChainStats(group, TEMPLATES.name))
      console.log(`| ${creatures} | ${s.mode} | ${s.question} | ${s.rows} | ${s.imageSearched} | ${s.titleInReasoning} | ${s.titleInQuery} | ${s.rightPage} | ${s.correctGivenPage} | ${s.correct} |`);
  console.log();
}
