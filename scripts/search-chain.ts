/**
 * `npx tsx scripts/search-chain.ts RUN_DIR/eval-heldout.json [...more]`
 *
 * Where the search chains of an evaluation's search_required rows break (src/rl/evaluate.ts
 * searchChainStats), as a Markdown table per file: per mode and question kind, rows, image searches, the
 * title restated in the reasoning and copied into the text query, the text search finding the title's page,
 * correct answers given that page, and correct answers in all. docs/fvqa-mini-warm-start.md uses it on the heldout split.
 */
import { readFileSync } from 'node:fs';
import { TEMPLATES } from '../src/data/questions.js';
import { searchChainStats, type EvalRecord } from '../src/rl/evaluate.js';
import { parseCli } from './cli.js';

const { positionals } = parseCli({ allowPositionals: true, options: {} }, import.meta.url);
if (!positionals.length) {
  console.error('search-chain: name one or more eval-<split>.json files (written by npm run eval); --help shows the usage');
  process.exit(2);
}
for (const file of positionals) {
  const { records } = JSON.parse(readFileSync(file, 'utf8')) as { records: EvalRecord[] };
  console.log(`${file}\n\n| mode | question | rows | image search | title in reasoning | title in query | right page | correct given page | correct |\n|---|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const s of searchChainStats(records, TEMPLATES.name))
    console.log(`| ${s.mode} | ${s.question} | ${s.rows} | ${s.imageSearched} | ${s.titleInReasoning} | ${s.titleInQuery} | ${s.rightPage} | ${s.correctGivenPage} | ${s.correct} |`);
  console.log();
}
