/**
 * `npx tsx scripts/report.ts RUN_DIR OUT.md [--title T] [--machine M]`: writes a run's report for docs/:
 * the evaluation table (eval.md), the GRPO curves per step (reward, accuracy, format, search ratio
 * overall and per category) as a table and an SVG line chart, the SFT loss, and the wall time.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { title: { type: 'string' }, machine: { type: 'string', default: '' } } });
const [run, out] = positionals;
if (!run || !out) {
  console.error('usage: npx tsx scripts/report.ts RUN_DIR OUT.md [--title T] [--machine M]');
  process.exit(2);
}
type Row = { phase: string; step: number; [k: string]: number | string };
const rows: Row[] = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const grpo = rows.filter((r) => r.phase === 'grpo');
const sft = rows.filter((r) => r.phase === 'sft');
const f = (v: unknown, d = 3) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '');
const curves: [string, string][] = [
  ['reward', 'reward'], ['rewards/accuracy/mean', 'accuracy'], ['rewards/format/mean', 'format'],
  ['search_ratio', 'search ratio'], ['search_ratio/search_free', 'SR search_free'], ['search_ratio/search_required', 'SR search_required'],
];

/** A small SVG line chart of the curves over GRPO steps (values in [0, 1]). */
function svg(): string {
  const W = 640, H = 240, L = 40, B = 24, colours = ['#1f77b4', '#2ca02c', '#9467bd', '#d62728', '#ff7f0e', '#8c564b'];
  const n = Math.max(1, grpo.length - 1);
  const x = (i: number) => L + ((W - L - 10) * i) / n, y = (v: number) => H - B - (H - B - 10) * v;
  const lines = curves.map(([key], c) => {
    const pts = grpo.map((r, i) => [x(i), y(Number(r[key]))] as const).filter(([, py]) => Number.isFinite(py));
    return `<polyline fill="none" stroke="${colours[c]}" stroke-width="2" points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>`;
  });
  const legend = curves.map(([, label], c) => `<text x="${L + 4 + c * 100}" y="12" font-size="11" fill="${colours[c]}">${label}</text>`);
  const axes = [0, 0.5, 1].map((v) => `<text x="4" y="${y(v) + 4}" font-size="10">${v}</text><line x1="${L}" x2="${W - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">${axes.join('')}${lines.join('')}${legend.join('')}<text x="${W / 2}" y="${H - 4}" font-size="11">GRPO step</text></svg>`;
}

const svgName = basename(out).replace(/\.md$/, '.svg');
writeFileSync(join(dirname(out), svgName), svg());
// eval.md from the training run's own evaluation, else eval-test.md from `npm run eval`.
const evalFile = ['eval.md', 'eval-test.md'].map((f) => join(run, f)).find((f) => existsSync(f));
const eval_ = evalFile ? readFileSync(evalFile, 'utf8') : '(no evaluation yet)\n';
// The warm-start policy's own evaluation (recipe eval.after_sft), kept in the checkpoint.
const sftEvalFile = join(run, 'checkpoint', 'eval-sft.md');
const sftEval = existsSync(sftEvalFile) ? `\nThe warm-start (SFT) policy before GRPO, same split and decoding:\n\n${readFileSync(sftEvalFile, 'utf8')}` : '';
const seconds = [...sft, ...grpo].reduce((a, r) => a + (Number(r['time/rollout_s'] ?? 0) + Number(r['time/search_s'] ?? 0) + Number(r['time/train_s'] ?? 0)), 0);
// Wall time from the run folder: recipe.json is written at the start, metrics/eval at the end.
const end = evalFile ?? join(run, 'metrics.jsonl');
const wallMin = (statSync(end).mtimeMs - statSync(join(run, 'recipe.json')).mtimeMs) / 60000;
const md = `# ${values.title ?? `Run ${basename(run)}`}

Machine: ${values.machine}. Wall time: ${wallMin.toFixed(0)} min (SFT, GRPO and evaluation). Recipe: \`recipes/${basename(run)}.json\`.

## Evaluation (held-out test split, greedy)

${eval_}${sftEval}
## GRPO curves

![curves](${svgName})

| step | ${curves.map(([, l]) => l).join(' | ')} | kl | grad_norm | completion length | step time (s) |
|---:|${curves.map(() => '---:').join('|')}|---:|---:|---:|---:|
${grpo.map((r) => `| ${r.step} | ${curves.map(([k]) => f(r[k])).join(' | ')} | ${f(r.kl, 4)} | ${f(r.grad_norm)} | ${f(r['completions/mean_length'], 1)} | ${f(Number(r['time/rollout_s']) + Number(r['time/search_s']) + Number(r['time/train_s']), 1)} |`).join('\n')}

GRPO time: ${(seconds / 60).toFixed(1)} min.

## Warm-start SFT

${sft.length} optimizer steps; loss ${f(sft[0]?.loss)} -> ${f(sft.at(-1)?.loss)} (nats per token); mean ${f(sft.reduce((a, r) => a + Number(r.tokens_per_second), 0) / Math.max(1, sft.length), 0)} tokens/s.
`;
writeFileSync(out, md);
console.log(`wrote ${out} and ${join(dirname(out), svgName)}`);
