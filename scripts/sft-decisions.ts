/**
 * `npx tsx scripts/sft-decisions.ts --recipe NAME|FILE [--seed N]`
 *
 * How a recipe's warm start weighs the search decision, per question kind, before any training: the trained
 * first turns that answer and that search, the share of the SFT loss weight on the searching ones (the
 * probability a perfectly fitted policy would give searching), and how many of the optimizer steps that
 * train a decision train both. A decision-neutral warm start has equal counts; its loss weight is neutral
 * only with sft.loss_agg_mode token-sum-norm (token-mean divides each step by its own trained tokens, and with
 * group_by_length the short answers fill steps of their own), and its steps mix answers and searches only
 * with sft.balance_decisions (docs/fvqa-mini-warm-start.md, 2026-12-06). Builds the world and the
 * conversations as `npm run train` does (a minute or two for a drilled world); trains nothing.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseCli, recipeFile } from './cli.js';
import { createRuntimeBackend, recipeServices } from './runtime.js';
import { progressLine } from './train-output.js';

const { values } = parseCli({ options: { recipe: { type: 'string' }, seed: { type: 'string' } } }, import.meta.url);
const fail = (msg: string): never => {
  console.error(`sft-decisions: ${msg}`);
  process.exit(2);
};
if (!values.recipe) fail('--recipe NAME|FILE is required');
if (values.seed !== undefined && !(Number.isInteger(Number(values.seed)) && Number(values.seed) >= 0)) fail(`--seed ${values.seed}: a whole number >= 0`);
const root = resolve(new URL('..', import.meta.url).pathname);
const { loadRecipe } = await import('../src/rl/recipe.js');
const { Trainer } = await import('../src/rl/trainer.js');
const { sftPlan } = await import('../src/rl/sft-plan.js');
const { trainedTokens } = await import('../src/rl/steps.js');

const path = (() => {
  try {
    return recipeFile(values.recipe!);
  } catch (e) {
    return fail((e as Error).message);
  }
})();
const raw = JSON.parse(readFileSync(path, 'utf8'));
const r = loadRecipe(JSON.stringify(values.seed === undefined ? raw : { ...raw, seed: Number(values.seed) }), path);
if (!r.sft) fail(`${path} has no sft section: no warm start to weigh`);
const s = r.sft!;
const { search, hub } = await recipeServices(r, root);
const t = new Trainer(r, {
  backend: await createRuntimeBackend('cpu'),
  readFile: async (p: string) => new Uint8Array(readFileSync(resolve(root, p))),
  store: { load: async () => null, save: async () => {} },
  proxyTools: search,
  hub,
  // Progress on stderr: building a drilled world and encoding its trajectories takes a minute or two.
  onEvent: (e) => e.type === 'progress' && e.total && process.stderr.write(progressLine(e.phase, e.done, e.total, null, !!process.stderr.isTTY)),
});
await t.setup();
t.model.dispose();
const convs = await t.warmStartConversations();
const plan = sftPlan(convs, s, r.seed);

type Tally = { answers: number; searches: number; weight: [number, number] };
const kinds = new Map<string, Tally>();
let decisionSteps = 0, mixedSteps = 0;
for (let i = 0; i < plan.total; i++) {
  const { rows, normalizer } = plan.step(i);
  // The loss weight of one trained token in this step: 1 / the normaliser sftStep divides by.
  const w = 1 / (normalizer ?? rows.reduce((n, j) => n + trainedTokens({ completion_mask: convs[j].lossMask }), 0));
  const sides = new Set<boolean>();
  for (const j of rows) {
    const d = convs[j].decision;
    if (!d) continue;
    sides.add(d.searches);
    const k = kinds.get(d.kind) ?? { answers: 0, searches: 0, weight: [0, 0] };
    if (d.searches) k.searches++;
    else k.answers++;
    k.weight[+d.searches] += w;
    kinds.set(d.kind, k);
  }
  if (sides.size) decisionSteps++;
  if (sides.size === 2) mixedSteps++;
}
console.log(`${r.name}, seed ${r.seed}: ${plan.total} SFT steps (loss_agg_mode ${s.loss_agg_mode}, group_by_length ${s.group_by_length}, balance_decisions ${s.balance_decisions})\n`);
console.log('| question kind | trained first turns: answer / search | loss weight on searching (%) |');
console.log('|---|---:|---:|');
for (const [kind, k] of [...kinds].sort(([a], [b]) => a.localeCompare(b)))
  console.log(`| ${kind} | ${k.answers} / ${k.searches} | ${((100 * k.weight[1]) / (k.weight[0] + k.weight[1])).toFixed(1)} |`);
console.log(`\n${mixedSteps} of the ${decisionSteps} steps that train a decision train both an answer and a search.`);
