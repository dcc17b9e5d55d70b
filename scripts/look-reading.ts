/**
 * `npx tsx scripts/look-reading.ts RUN_DIR/eval-train.json [RUN_DIR/eval-heldout.json ...more]`
 *
 * How well a checkpoint sees creatures it has not memorised (src/rl/evaluate.ts lookReading): the looks
 * its first turns describe against the creatures' own, for the GRPO drills' creatures (train split, new to
 * the warm start), the world's familiar and unfamiliar ones (train split) and the heldout split's, with how
 * often the first turn names a familiar creature (recognition_first), in all and on search_required questions,
 * as a Markdown table per file. Where a file holds several modes, the on-demand (policy) records are read.
 * The world is rebuilt from the recipe.json beside the file (train writes it into its --out folder). Make the
 * files with `npm run eval -- --checkpoint RUN_DIR --split train --modes direct --runtime wasm` (about 40 s)
 * and `--split heldout` (eval-heldout.json, any modes).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LOOK_ATTRIBUTES, LOOK_VALUES } from '../src/data/questions.js';
import { worldOf } from '../src/rl/environment.js';
import { lookReading, type EvalRecord } from '../src/rl/evaluate.js';
import { loadRecipe } from '../src/rl/recipe.js';
import { parseCli } from './cli.js';

const { positionals } = parseCli({ allowPositionals: true, options: {} }, import.meta.url);
if (!positionals.length) {
  console.error('look-reading: name one or more eval-train.json or eval-heldout.json files (written by npm run eval --split train / heldout); --help shows the usage');
  process.exit(2);
}
const pct = (n: number, of: number) => (of ? ((100 * n) / of).toFixed(0) : '');
for (const file of positionals) {
  const recipeFile = join(dirname(file), 'recipe.json');
  const world = worldOf(loadRecipe(readFileSync(recipeFile, 'utf8'), recipeFile), undefined, { warmStartDrills: false });
  const all = (JSON.parse(readFileSync(file, 'utf8')) as { records: EvalRecord[] }).records;
  // One mode's first turns (a file of several modes would count each row once per mode): the policy's own.
  const mode = all.some((r) => r.mode === 'on_demand') ? 'on_demand' : all[0]?.mode;
  const records = all.filter((r) => r.mode === mode);
  console.log(`${file} (${mode} first turns)\n\n| creatures | rows | look described | pattern % | colour % | shape % | marks % | recognised (says a familiar name) | recognised right | search_required rows: recognised / rows |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
  for (const s of lookReading(records, world).filter((r) => r.rows > 0))
    console.log(`| ${s.creatures} | ${s.rows} | ${s.described} | ${pct(s.pattern, s.rows)} | ${pct(s.colour, s.rows)} | ${pct(s.shape, s.rows)} | ${pct(s.marks, s.rows)} | ${s.recognised} | ${s.recognisedRight} | ${s.searchRequiredRecognised} / ${s.searchRequired} |`);
  console.log(`| chance | | | ${LOOK_ATTRIBUTES.map((a) => pct(1, LOOK_VALUES[a])).join(' | ')} | | | |\n`);
}
