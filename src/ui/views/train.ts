/**
 * Train: start / pause / resume / stop, step-through (pause after each GRPO step, "One step"), knobs
 * applied from the next step (search penalty, temperature, learning rate) and marked on the charts,
 * progress with ETA per phase, live charts of the run's metrics (TRL/veRL names, each explained) with
 * smoothing and log scale, a second stored run side by side, and metrics export as CSV or JSON.
 */
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { metricsToCsv } from '../../export/metrics.js';
import type { Recipe } from '../../rl/recipe.js';
import type { Knobs, Phase } from '../../rl/checkpoint.js';
import { MetricChart, type ChartMark } from '../chart.js';
import { download, formatDuration, useLab, type Lab } from '../lab.js';
import { metricRecords, type MetricRow, type RunRecord } from '../../lab/runs-store.js';
import { Card } from './setup.js';

const GRPO_CHARTS: { title: string; keys: string[]; labels?: string[]; scale?: number; help?: string }[] = [
  { title: 'Reward', keys: ['reward', 'rewards/accuracy/mean', 'rewards/format/mean'], labels: ['reward', 'accuracy', 'format'],
    help: 'Reward components: reward = 0.9 · accuracy · P + 0.1 · format, with P = 1 − search penalty when the trajectory searched, else 1 (MMSearch-R1). accuracy: the answer matches exactly; format: every turn reasons, then ends with one action tag.' },
  { title: 'Search ratio', keys: ['search_ratio', 'search_ratio/search_free', 'search_ratio/search_required'], labels: ['overall', 'search-free', 'search-required'],
    help: 'Search ratio: the share of sampled trajectories that searched at least once, overall and per question category. Search-free questions are about creatures the model knows, search-required ones about creatures it cannot know: learning when to search shows as the two lines splitting.' },
  { title: 'Searches per trajectory', keys: ['tools/image_search_per_traj', 'tools/text_search_per_traj'], labels: ['image', 'text'] },
  { title: 'Clip ratio', keys: ['clip_ratio/region_mean'], labels: ['clipped tokens'],
    help: 'Clipping (PPO): the share of trained tokens whose probability ratio π/π_old left [1 − ε, 1 + ε_high] in the direction its advantage pushes; the update stops pushing those further. With one update per batch the ratio is 1 and nothing is clipped.' },
  { title: 'KL and entropy', keys: ['kl', 'entropy'], help: 'kl: mean k3 estimate of KL(policy ‖ reference) over trained tokens (logged when beta ≠ 0); entropy: mean per-token entropy of the policy (how unsure it samples).' },
  { title: 'Completion length', keys: ['completions/mean_length'], labels: ['mean tokens'] },
  { title: 'Grad norm', keys: ['grad_norm'] },
  { title: 'Tokens per second', keys: ['tokens_per_second'] },
  { title: 'Step time (s)', keys: ['time/rollout_s', 'time/search_s', 'time/train_s'], labels: ['rollout', 'search', 'train'] },
  { title: 'Memory peak (MiB)', keys: ['memory/peak_bytes'], scale: 1 / 2 ** 20 },
];
const SFT_CHARTS: typeof GRPO_CHARTS = [
  { title: 'SFT loss', keys: ['loss'] },
  { title: 'SFT grad norm', keys: ['grad_norm'] },
  { title: 'SFT tokens per second', keys: ['tokens_per_second'] },
  { title: 'SFT memory peak (MiB)', keys: ['memory/peak_bytes'], scale: 1 / 2 ** 20 },
];
const CAPTION_CHARTS: typeof GRPO_CHARTS = [
  { title: 'Caption loss', keys: ['loss'] },
  { title: 'Unseen looks read right (%)', keys: ['caption/pattern', 'caption/colour', 'caption/shape', 'caption/marks'], labels: ['pattern', 'colour', 'shape', 'marks'], help: 'Greedy captions of creatures never trained on, read back attribute by attribute: whether the policy sees a look rather than remembering one.' },
];
/** Shown when the run's caption stage trains name copies (caption.name_copies). */
const COPY_CHART: (typeof GRPO_CHARTS)[number] = { title: 'Unseen names copied (%)', keys: ['copy/reasoning', 'copy/action'], labels: ['into the reasoning', 'into the query or answer'], help: 'Greedy replies to an image-search result titled with a name never trained on: does the policy write that exact name back, as a heldout search chain must.' };
const PHASES: { phase: Phase; label: string }[] = [{ phase: 'download', label: 'Download' }, { phase: 'data', label: 'Data' }, { phase: 'caption', label: 'Captioning' }, { phase: 'sft', label: 'Warm-start SFT' }, { phase: 'grpo', label: 'GRPO' }, { phase: 'eval', label: 'Evaluation' }];

function Progress({ lab }: { lab: Lab }) {
  const run = lab.run;
  // Downloads happen only for hub models and datasets, data preparation takes long only for drilled
  // worlds: their bars appear once the run reports them.
  // Captioning, only in recipes that have it.
  const shown = PHASES.filter(({ phase }) => phase === 'caption' ? (run?.recipe ?? lab.recipe).caption : (phase !== 'download' && phase !== 'data') || lab.progress[phase]);
  return h('div', { class: 'phases' }, shown.map(({ phase, label }) => {
    const p = lab.progress[phase];
    const finished = run && (PHASES.findIndex((x) => x.phase === run.phase) > PHASES.findIndex((x) => x.phase === phase) || run.phase === 'done');
    const frac = p ? p.done / Math.max(1, p.total) : finished ? 1 : 0;
    const active = run?.phase === phase && run.status === 'running';
    return h('div', { class: `phase ${active ? 'active' : ''}`, 'data-phase': phase },
      h('div', { class: 'phase-head' }, h('strong', null, label), h('span', { class: 'muted' }, p ? `${p.done} / ${p.total}` : finished ? 'done' : '–'), h('span', { class: 'muted' }, active && p ? `ETA ${formatDuration(p.etaSeconds)}` : '')),
      h('div', { class: 'bar' }, h('div', { style: { width: `${(100 * frac).toFixed(1)}%` } })));
  }));
}

const KNOBS = [
  { knob: 'search_penalty', label: 'search penalty', step: 0.05, help: '1 − P: a correct answer after a search earns 1 − search penalty of its accuracy reward. 0 removes the cost of searching (the paper\'s ablation: the policy searches always).' },
  { knob: 'temperature', label: 'temperature', step: 0.1, help: 'Sampling temperature of the rollouts (and of the log-probs the loss uses): higher explores more.' },
  { knob: 'learning_rate', label: 'learning rate', step: 0.0001, help: 'Peak learning rate of the GRPO schedule (the schedule keeps its shape).' },
] as const satisfies readonly { knob: keyof Knobs; label: string; step: number; help: string }[];

/** The recipe's knob values (what a run uses until a knob changes). */
function recipeKnobs(r: Recipe): Knobs {
  return { search_penalty: r.grpo.reward.search_penalty, temperature: r.grpo.temperature, learning_rate: r.grpo.learning_rate };
}

/**
 * Chart marks where a knob took a new value: a step whose `knobs/<name>` metric differs from the step
 * logged before it (from the recipe's value at the first step that logs knobs).
 */
export function knobMarks(rows: readonly MetricRow[], recipe: Recipe): ChartMark[] {
  const marks: ChartMark[] = [];
  let prev = recipeKnobs(recipe);
  for (const row of [...rows].sort((a, b) => a.step - b.step)) {
    if (!(`knobs/${KNOBS[0].knob}` in row.metrics)) continue;
    const now = { ...prev };
    for (const { knob, label } of KNOBS) {
      const v = row.metrics[`knobs/${knob}`];
      if (v !== undefined && v !== prev[knob]) marks.push({ step: row.step, label: `${label} ${v}` });
      if (v !== undefined) now[knob] = v;
    }
    prev = now;
  }
  return marks;
}

/** Step-through and the knobs of the current run. */
function Controls({ lab }: { lab: Lab }) {
  const run = lab.run;
  const status = run?.status ?? 'idle';
  const latest = lab.metrics.filter((m) => m.phase === 'grpo').at(-1);
  const current = { ...recipeKnobs(run?.recipe ?? lab.recipe), ...Object.fromEntries(KNOBS.filter(({ knob }) => latest && `knobs/${knob}` in latest.metrics).map(({ knob }) => [knob, latest!.metrics[`knobs/${knob}`]])) } as Knobs;
  const [draft, setDraft] = useState<Partial<Knobs>>({});
  const [note, setNote] = useState('');
  const apply = async (knob: keyof Knobs) => {
    const v = draft[knob];
    if (v === undefined) return;
    const change = await lab.setKnob(knob, v);
    if (change) setNote(`${knob} = ${change.value} from GRPO step ${change.step}`);
  };
  return h(Card, { title: 'Step-through and knobs', id: 'controls' },
    h('div', { class: 'row' },
      h('label', { class: 'check', title: 'Pause after every GRPO step, then take the next one with "One step": look at each update in the Step inspector before the next.' },
        h('input', { type: 'checkbox', id: 'step-through', checked: lab.stepThrough, onChange: (e: Event) => lab.setStepThrough((e.target as HTMLInputElement).checked) }), ' step-through (pause after each GRPO step)'),
      h('button', { id: 'one-step', class: 'primary', disabled: status !== 'paused' || run?.phase === 'done', onClick: lab.oneStep }, 'One step'),
      h('span', { class: 'muted' }, run ? `GRPO step ${run.grpoStep} done` : '')),
    h('table', { class: 'knobs' }, h('tbody', null, KNOBS.map(({ knob, label, step, help }) => h('tr', null,
      h('td', { title: help }, label),
      h('td', { class: 'num' }, h('b', null, String(current[knob]))),
      h('td', null, h('input', { type: 'number', id: `knob-${knob}`, step, min: 0, class: 'knob', placeholder: String(current[knob]), value: draft[knob] ?? '',
        onInput: (e: Event) => setDraft({ ...draft, [knob]: Number((e.target as HTMLInputElement).value) }) })),
      h('td', null, h('button', { id: `apply-${knob}`, disabled: !run || draft[knob] === undefined, onClick: () => apply(knob) }, 'apply from next step')),
      h('td', { class: 'help' }, help))))),
    h('p', { class: 'muted' }, 'A knob changes the run from its next GRPO step (the step in progress keeps its values); the charts mark the step where it took effect.', note ? h('span', { id: 'knob-note' }, ` Last change: ${note}.`) : null));
}

/** The Train view. */
export function TrainView({ lab }: { lab: Lab }) {
  useLab(lab);
  const [smoothing, setSmoothing] = useState(0);
  const [log, setLog] = useState(false);
  const [runs, setRuns] = useState<RunRecord[]>([]);
  const [compareId, setCompareId] = useState('');
  const [compare, setCompare] = useState<MetricRow[]>([]);
  const run = lab.run;
  const status = run?.status ?? 'idle';
  const busy = status === 'running';
  useEffect(() => void lab.runs().then((db) => db.listRuns()).then(setRuns), [run?.id, run?.status]);
  // The compared run's metrics, re-read while it is the one training.
  useEffect(() => void (compareId ? lab.runs().then((db) => db.metrics(compareId)).then(setCompare) : setCompare([])), [compareId, compareId === run?.id ? lab.metrics.length : 0]);
  const grpo = lab.metrics.filter((m) => m.phase === 'grpo');
  const sft = lab.metrics.filter((m) => m.phase === 'sft');
  const caption = lab.metrics.filter((m) => m.phase === 'caption');
  const other = runs.find((r) => r.id === compareId);
  // GRPO charts span the run's planned steps (max_steps; -1 means epochs, then they fit the data).
  const grpoLast = run && run.recipe.grpo.max_steps > 0 ? run.recipe.grpo.max_steps - 1 : undefined;
  const marksA = run ? knobMarks(grpo, run.recipe) : [];
  const marksB = other ? knobMarks(compare.filter((m) => m.phase === 'grpo'), other.recipe) : [];
  const chart = (c: (typeof GRPO_CHARTS)[number], rows: MetricRow[], xMax?: number, marks: ChartMark[] = [], prefix = '', yRange?: [number, number]) =>
    h(MetricChart, { key: prefix + c.title, title: prefix + c.title, points: rows, keys: c.keys, labels: c.labels, scale: c.scale, smoothing, log, help: prefix ? undefined : c.help, marks, yRange, xMax });
  /** One y range for a chart of both runs, so that side-by-side lines compare at a glance. */
  const shared = (c: (typeof GRPO_CHARTS)[number], rows: MetricRow[]): [number, number] | undefined => {
    const vs = rows.flatMap((r) => c.keys.map((k) => r.metrics[k] * (c.scale ?? 1))).filter(Number.isFinite);
    if (log || !vs.length) return undefined;
    const [lo, hi] = [Math.min(...vs), Math.max(...vs)];
    const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
    return [lo - pad, hi + pad];
  };
  return h('div', { class: 'view train' },
    lab.resumable && !run ? h('div', { class: 'notice info', id: 'resume-offer' }, `Run ${lab.resumable.id} was interrupted at ${lab.resumable.phase} (SFT step ${lab.resumable.sftStep}, GRPO step ${lab.resumable.grpoStep}); its checkpoint is in IndexedDB. `,
      h('button', { class: 'primary', id: 'resume-stored', onClick: () => lab.resumeStored(lab.resumable!) }, 'Resume it'), ' ', h('button', { onClick: () => ((lab.resumable = null), lab.changed()) }, 'Dismiss')) : null,
    h(Card, { title: run ? `Run ${run.id}` : `New run: ${lab.recipe.name}`, actions: h('span', { class: `badge status-${status}`, id: 'run-status' }, status) },
      h('div', { class: 'row' },
        h('button', { class: 'primary', id: 'start', disabled: busy, onClick: () => lab.start() }, 'Start new run'),
        h('button', { id: 'pause', disabled: !busy, onClick: lab.pause }, 'Pause'),
        h('button', { id: 'resume', disabled: status !== 'paused', onClick: lab.resume }, 'Resume'),
        h('button', { id: 'stop', disabled: !(busy || status === 'paused'), onClick: lab.stop }, 'Stop'),
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted' }, lab.backendInfo?.description ?? '…', ' · search: ', lab.recipe.search.backend === 'proxy' ? 'proxy' : 'in-worker local engine')),
      run?.error ? h('div', { class: 'notice error', id: 'run-error' }, run.error,
        run.deviceLost && run.checkpointAt ? h('div', { class: 'row' },
          h('button', { class: 'primary', id: 'resume-lost', onClick: () => lab.resumeStored(run) }, 'Resume from the last checkpoint'),
          h('span', { class: 'muted' }, `saved ${new Date(run.checkpointAt).toLocaleTimeString()}; training continues there on a new GPU device`)) : null) : null,
      h(Progress, { lab })),
    h(Controls, { lab }),
    h('div', { class: 'toolbar' },
      h('label', null, 'Smoothing ', h('input', { type: 'range', min: 0, max: 0.95, step: 0.05, value: smoothing, onInput: (e: Event) => setSmoothing(Number((e.target as HTMLInputElement).value)) }), ` ${smoothing.toFixed(2)}`),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'log-scale', checked: log, onChange: (e: Event) => setLog((e.target as HTMLInputElement).checked) }), ' log scale'),
      h('label', { title: 'Show a stored run\'s GRPO charts next to this run\'s, e.g. the main run and the no-penalty ablation' }, 'side by side with ',
        h('select', { id: 'compare-run', value: compareId, onChange: (e: Event) => setCompareId((e.target as HTMLSelectElement).value) },
          h('option', { value: '' }, '(no second run)'), runs.filter((r) => r.id !== run?.id).map((r) => h('option', { value: r.id }, `${r.id} · GRPO step ${r.grpoStep}`)))),
      h('span', { class: 'spacer' }),
      h('button', { id: 'export-csv', disabled: !lab.metrics.length, onClick: () => download(`${run?.id ?? 'run'}-metrics.csv`, metricsToCsv(metricRecords(lab.metrics)), 'text/csv') }, 'Export CSV'),
      h('button', { disabled: !lab.metrics.length, onClick: () => download(`${run?.id ?? 'run'}-metrics.json`, JSON.stringify(lab.metrics, null, 1), 'application/json') }, 'Export JSON')),
    h('h3', { class: 'section' }, 'GRPO'),
    other
      ? h('div', { class: 'charts side-by-side', id: 'grpo-charts' },
        h('h3', { class: 'run-title' }, `A: ${run?.id ?? 'this run'}`), h('h3', { class: 'run-title' }, `B: ${other.id}`),
        GRPO_CHARTS.flatMap((c) => {
          const rowsB = compare.filter((m) => m.phase === 'grpo');
          const range = shared(c, [...grpo, ...rowsB]);
          const lastB = other.recipe.grpo.max_steps > 0 ? other.recipe.grpo.max_steps - 1 : undefined;
          return [chart(c, grpo, grpoLast, marksA, 'A · ', range), chart(c, rowsB, lastB, marksB, 'B · ', range)];
        }))
      : h('div', { class: 'charts', id: 'grpo-charts' }, GRPO_CHARTS.map((c) => chart(c, grpo, grpoLast, marksA))),
    h('h3', { class: 'section' }, 'Warm-start SFT'),
    // A run from a shipped warm start has no SFT of its own.
    !sft.length && run?.recipe.sft && run.phase !== 'sft'
      ? h('p', { class: 'muted', id: 'sft-none' }, 'No warm-start SFT in this run: it started from a shipped warm start whose SFT was done when it was made.')
      : h('div', { class: 'charts', id: 'sft-charts' }, SFT_CHARTS.map((c) => chart(c, sft))),
    caption.length ? [h('h3', { class: 'section' }, 'Captioning'), h('div', { class: 'charts', id: 'caption-charts' }, [...CAPTION_CHARTS, ...(run?.recipe.caption?.name_copies ? [COPY_CHART] : [])].map((c) => chart(c, caption)))] : null,
    h(Card, { title: 'Log' }, h('pre', { class: 'log', id: 'train-log' }, lab.logs.length ? lab.logs.join('\n') : 'No messages yet.')));
}
