/**
 * Evaluate: the three-mode evaluation (direct / RAG / on-demand) of a model on a split, in the shape
 * of MMSearch-R1's Table 1, with a bar chart; results of several models stay side by side.
 */
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ModeSummary } from '../../rl/evaluate.js';
import type { SearchMode } from '../../rl/rollout.js';
import type { ModelSpec } from '../../../workers/inference.worker.js';
import * as Comlink from 'comlink';
import { useLab, type Lab } from '../lab.js';
import type { RunRecord } from '../runs-store.js';
import { Card } from './setup.js';

const LABEL: Record<SearchMode, string> = { direct: 'Direct answer', rag: 'RAG workflow', on_demand: 'On-demand search' };

/** A model picker over fresh presets and stored checkpoints; value is a JSON ModelSpec. */
export function ModelPicker({ lab, value, onChange, id }: { lab: Lab; value: string; onChange: (v: string) => void; id?: string }) {
  const [runs, setRuns] = useState<RunRecord[]>([]);
  useEffect(() => void lab.runs().then((db) => db.listRuns()).then((r) => setRuns(r.filter((x) => x.checkpointAt))), [lab.run?.checkpointAt]);
  return h('select', { id, value, onChange: (e: Event) => onChange((e.target as HTMLSelectElement).value) },
    h('option', { value: JSON.stringify({ kind: 'fresh', recipe: lab.recipe }) }, `fresh ${lab.recipe.model.source} (untrained)`),
    runs.map((r) => h('option', { value: JSON.stringify({ kind: 'run', runId: r.id } satisfies ModelSpec) }, `${r.id} · ${r.phase} · GRPO step ${r.grpoStep}`)));
}

interface Result {
  label: string;
  split: string;
  summaries: ModeSummary[];
}

/** The Evaluate view. */
export function EvaluateView({ lab }: { lab: Lab }) {
  useLab(lab);
  const [spec, setSpec] = useState('');
  const [split, setSplit] = useState<'test' | 'heldout' | 'train'>('test');
  const [modes, setModes] = useState<SearchMode[]>(['direct', 'rag', 'on_demand']);
  const [maxRows, setMaxRows] = useState(8);
  const [status, setStatus] = useState('');
  const [results, setResults] = useState<Result[]>([]);
  const run = async () => {
    setStatus('loading the model…');
    try {
      const chosen = spec || JSON.stringify({ kind: 'fresh', recipe: lab.recipe });
      await lab.inference.load(JSON.parse(chosen) as ModelSpec, { cpu: lab.cpu });
      setStatus('evaluating…');
      const r = await lab.inference.evaluate({ split, modes, maxRows: maxRows || null }, Comlink.proxy((done: number, total: number) => setStatus(`evaluating… ${done} / ${total}`)));
      setResults((rs) => [...rs, { label: r.label, split, summaries: r.summaries }]);
      setStatus('');
    } catch (e) {
      setStatus(`failed: ${(e as Error).message}`);
    }
  };
  const cats = [...new Set(results.flatMap((r) => r.summaries.flatMap((s) => Object.keys(s.byCategory))))].sort();
  return h('div', { class: 'view evaluate' },
    h(Card, { title: 'Three-mode evaluation' },
      h('div', { class: 'row' },
        h('label', null, 'Model ', h(ModelPicker, { lab, value: spec, onChange: setSpec, id: 'eval-model' })),
        h('label', null, 'Split ', h('select', { value: split, onChange: (e: Event) => setSplit((e.target as HTMLSelectElement).value as typeof split) }, ['test', 'heldout', 'train'].map((s) => h('option', { value: s }, s)))),
        h('label', null, 'Rows ', h('input', { type: 'number', min: 0, value: maxRows, class: 'short', onChange: (e: Event) => setMaxRows(Number((e.target as HTMLInputElement).value)) })),
        (['direct', 'rag', 'on_demand'] as SearchMode[]).map((m) => h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: modes.includes(m), onChange: (e: Event) => setModes((e.target as HTMLInputElement).checked ? [...modes, m] : modes.filter((x) => x !== m)) }), ` ${LABEL[m]}`)),
        h('button', { class: 'primary', id: 'run-eval', disabled: !modes.length || status.startsWith('eval') || status.startsWith('load'), onClick: run }, 'Evaluate')),
      status ? h('p', { class: 'muted', id: 'eval-status' }, status) : null),
    results.length ? h(Card, { title: 'Table 1 (FVQA-mini)', actions: h('button', { class: 'link', onClick: () => setResults([]) }, 'clear') },
      h('table', { class: 'data table1', id: 'table1' },
        h('thead', null, h('tr', null, ['model', 'split', 'method', 'accuracy %', 'search ratio %', ...cats.flatMap((c) => [`${c} acc %`, `${c} SR %`])].map((c) => h('th', null, c)))),
        h('tbody', null, results.flatMap((r) => r.summaries.map((s) => h('tr', null, h('td', null, r.label), h('td', null, r.split), h('td', null, LABEL[s.mode]), h('td', { class: 'num' }, s.accuracy.toFixed(1)), h('td', { class: 'num' }, s.searchRatio.toFixed(1)),
          cats.flatMap((c) => [h('td', { class: 'num' }, s.byCategory[c]?.accuracy.toFixed(1) ?? ''), h('td', { class: 'num' }, s.byCategory[c]?.searchRatio.toFixed(1) ?? '')])))))),
      h('div', { class: 'bars' }, results.flatMap((r, i) => r.summaries.map((s) => h('div', { class: 'bar-row' },
        h('span', { class: 'bar-label' }, `${i + 1}. ${LABEL[s.mode]}`),
        h('div', { class: 'hbar' }, h('div', { class: 'acc', style: { width: `${s.accuracy}%` } }), h('span', null, `accuracy ${s.accuracy.toFixed(0)}%`)),
        h('div', { class: 'hbar' }, h('div', { class: 'sr', style: { width: `${s.searchRatio}%` } }), h('span', null, `search ratio ${s.searchRatio.toFixed(0)}%`))))))) : null);
}
