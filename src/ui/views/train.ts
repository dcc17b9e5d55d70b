/**
 * Train: start / pause / resume / stop, progress with ETA per phase, live charts of the run's metrics
 * (TRL/veRL names) with smoothing and log scale, and metrics export as CSV or JSON.
 */
import { h } from 'preact';
import { useState } from 'preact/hooks';
import { metricsToCsv } from '../../export/metrics.js';
import type { Phase } from '../../rl/trainer.js';
import { MetricChart } from '../chart.js';
import { download, formatDuration, useLab, type Lab } from '../lab.js';
import { metricRecords, type MetricRow } from '../runs-store.js';
import { Card } from './setup.js';

const GRPO_CHARTS: { title: string; keys: string[]; labels?: string[]; scale?: number }[] = [
  { title: 'Reward', keys: ['reward', 'rewards/accuracy/mean', 'rewards/format/mean'], labels: ['reward', 'accuracy', 'format'] },
  { title: 'Search ratio', keys: ['search_ratio', 'search_ratio/search_free', 'search_ratio/search_required'], labels: ['overall', 'search-free', 'search-required'] },
  { title: 'Searches per trajectory', keys: ['tools/image_search_per_traj', 'tools/text_search_per_traj'], labels: ['image', 'text'] },
  { title: 'KL and entropy', keys: ['kl', 'entropy'] },
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
const PHASES: { phase: Phase; label: string }[] = [{ phase: 'download', label: 'Download' }, { phase: 'sft', label: 'Warm-start SFT' }, { phase: 'grpo', label: 'GRPO' }, { phase: 'eval', label: 'Evaluation' }];

function Progress({ lab }: { lab: Lab }) {
  const run = lab.run;
  // Download only happens for hub models/datasets, so its bar appears once the run reports download progress.
  const shown = PHASES.filter(({ phase }) => phase !== 'download' || lab.progress.download);
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

/** The Train view. */
export function TrainView({ lab }: { lab: Lab }) {
  useLab(lab);
  const [smoothing, setSmoothing] = useState(0);
  const [log, setLog] = useState(false);
  const run = lab.run;
  const status = run?.status ?? 'idle';
  const busy = status === 'running';
  const grpo = lab.metrics.filter((m) => m.phase === 'grpo');
  const sft = lab.metrics.filter((m) => m.phase === 'sft');
  const chart = (c: (typeof GRPO_CHARTS)[number], rows: MetricRow[]) => h(MetricChart, { key: c.title, title: c.title, points: rows, keys: c.keys, labels: c.labels, scale: c.scale, smoothing, log });
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
    h('div', { class: 'toolbar' },
      h('label', null, 'Smoothing ', h('input', { type: 'range', min: 0, max: 0.95, step: 0.05, value: smoothing, onInput: (e: Event) => setSmoothing(Number((e.target as HTMLInputElement).value)) }), ` ${smoothing.toFixed(2)}`),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'log-scale', checked: log, onChange: (e: Event) => setLog((e.target as HTMLInputElement).checked) }), ' log scale'),
      h('span', { class: 'spacer' }),
      h('button', { id: 'export-csv', disabled: !lab.metrics.length, onClick: () => download(`${run?.id ?? 'run'}-metrics.csv`, metricsToCsv(metricRecords(lab.metrics)), 'text/csv') }, 'Export CSV'),
      h('button', { disabled: !lab.metrics.length, onClick: () => download(`${run?.id ?? 'run'}-metrics.json`, JSON.stringify(lab.metrics, null, 1), 'application/json') }, 'Export JSON')),
    h('h3', { class: 'section' }, 'GRPO'),
    h('div', { class: 'charts', id: 'grpo-charts' }, GRPO_CHARTS.map((c) => chart(c, grpo))),
    h('h3', { class: 'section' }, 'Warm-start SFT'),
    h('div', { class: 'charts', id: 'sft-charts' }, SFT_CHARTS.map((c) => chart(c, sft))),
    h(Card, { title: 'Log' }, h('pre', { class: 'log', id: 'train-log' }, lab.logs.length ? lab.logs.join('\n') : 'No messages yet.')));
}
