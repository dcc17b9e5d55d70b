/**
 * Evaluate: the three-mode evaluation (direct / RAG / on-demand) of a model on a split, in the shape
 * of MMSearch-R1's Table 1, with a bar chart. A second model can be evaluated on the same rows to
 * compare two checkpoints side by side: one table each and both in the chart.
 */
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ModeSummary } from '../../rl/evaluate.js';
import type { SearchMode } from '../../rl/rollout.js';
import type { ModelSpec } from '../../lab/worker-api.js';
import * as Comlink from 'comlink';
import { useLab, type Lab } from '../lab.js';
import type { RunRecord } from '../../lab/runs-store.js';
import { shippedCheckpoints, SHIPPED_GRPO, SHIPPED_SOURCE } from '../../lab/lab-env.js';
import { Card } from './setup.js';

const LABEL: Record<SearchMode, string> = { direct: 'Direct answer', rag: 'RAG workflow', on_demand: 'On-demand search' };

/** The shipped GRPO-trained policy as a JSON ModelSpec when this build ships it, else '' (an untrained model). */
export function defaultModel(): string {
  return shippedCheckpoints().includes(SHIPPED_GRPO) ? JSON.stringify({ kind: 'shipped', folder: SHIPPED_GRPO } satisfies ModelSpec) : '';
}

/** A model picker over a fresh model, stored checkpoints and shipped ones; value is a JSON ModelSpec ('' with `none`: no model). */
export function ModelPicker({ lab, value, onChange, id, none }: { lab: Lab; value: string; onChange: (v: string) => void; id?: string; none?: string }) {
  const [runs, setRuns] = useState<RunRecord[]>([]);
  useEffect(() => void lab.runs().then((db) => db.listRuns()).then((r) => setRuns(r.filter((x) => x.checkpointAt))), [lab.run?.checkpointAt]);
  return h('select', { id, value, onChange: (e: Event) => onChange((e.target as HTMLSelectElement).value) },
    none ? h('option', { value: '' }, none) : null,
    h('option', { value: JSON.stringify({ kind: 'fresh', recipe: lab.recipe }) }, `fresh ${lab.recipe.model.source} (untrained)`),
    runs.map((r) => h('option', { value: JSON.stringify({ kind: 'run', runId: r.id } satisfies ModelSpec) }, r.importedFrom ? `${r.id} · imported` : `${r.id} · ${r.phase} · GRPO step ${r.grpoStep}`)),
    shippedCheckpoints().map((folder) => h('option', { value: JSON.stringify({ kind: 'shipped', folder } satisfies ModelSpec) }, `shipped: ${folder.slice(SHIPPED_SOURCE.length)}${folder === SHIPPED_GRPO ? ' (trained, no training needed)' : ''}`)));
}

interface Result {
  label: string;
  split: string;
  summaries: ModeSummary[];
}

/** One model's Table 1: a row per mode with accuracy and search ratio, overall and per category. */
function Table1({ r, cats }: { r: Result; cats: string[] }) {
  return h('table', { class: 'data table1' },
    h('thead', null, h('tr', null, ['method', 'accuracy %', 'search ratio %', ...cats.flatMap((c) => [`${c} acc %`, `${c} SR %`])].map((c) => h('th', null, c)))),
    h('tbody', null, r.summaries.map((s) => h('tr', null, h('td', null, LABEL[s.mode]), h('td', { class: 'num' }, s.accuracy.toFixed(1)), h('td', { class: 'num' }, s.searchRatio.toFixed(1)),
      cats.flatMap((c) => [h('td', { class: 'num' }, s.byCategory[c]?.accuracy.toFixed(1) ?? ''), h('td', { class: 'num' }, s.byCategory[c]?.searchRatio.toFixed(1) ?? '')])))));
}

/** Accuracy and search ratio bars grouped by mode, one pair per model (colour = model). */
function Bars({ results }: { results: Result[] }) {
  const modes = [...new Set(results.flatMap((r) => r.summaries.map((s) => s.mode)))];
  return h('div', { class: 'bars', id: 'eval-bars' },
    h('div', { class: 'bar-legend' }, results.map((r, i) => h('span', { class: `swatch m${i % 4}` }, `${i + 1}. ${r.label} (${r.split})`))),
    modes.map((mode) => h('div', { class: 'bar-group', 'data-mode': mode },
      h('div', { class: 'bar-mode' }, LABEL[mode]),
      results.map((r, i) => {
        const s = r.summaries.find((x) => x.mode === mode);
        return s ? h('div', { class: `bar-row m${i % 4}`, 'data-model': i + 1 },
          h('span', { class: 'bar-label', title: r.label }, `${i + 1}. ${r.label}`),
          h('div', { class: 'hbar' }, h('div', { class: 'acc', style: { width: `${s.accuracy}%` } }), h('span', null, `accuracy ${s.accuracy.toFixed(0)}%`)),
          h('div', { class: 'hbar' }, h('div', { class: 'sr', style: { width: `${s.searchRatio}%` } }), h('span', null, `search ratio ${s.searchRatio.toFixed(0)}%`))) : null;
      }))));
}

/** The Evaluate view. */
export function EvaluateView({ lab }: { lab: Lab }) {
  useLab(lab);
  const [spec, setSpec] = useState(defaultModel);
  const [other, setOther] = useState('');
  const [split, setSplit] = useState<'test' | 'heldout' | 'train'>('test');
  const [modes, setModes] = useState<SearchMode[]>(['direct', 'rag', 'on_demand']);
  const [maxRows, setMaxRows] = useState(8);
  const [status, setStatus] = useState('');
  const [results, setResults] = useState<Result[]>([]);
  const run = async () => {
    const fresh = JSON.stringify({ kind: 'fresh', recipe: lab.recipe });
    const specs = [spec || fresh, ...(other ? [other] : [])];
    const out: Result[] = [];
    try {
      for (const [i, chosen] of specs.entries()) {
        const which = specs.length > 1 ? ` ${i + 1} of ${specs.length}` : '';
        setStatus(`loading the model${which}…`);
        const { key } = await lab.inference.load(JSON.parse(chosen) as ModelSpec, { backend: lab.backend });
        setStatus(`evaluating${which}…`);
        const r = await lab.inference.evaluate({ model: key, split, modes, maxRows: maxRows || null }, Comlink.proxy((done: number, total: number) => setStatus(`evaluating${which}… ${done} / ${total}`)));
        out.push({ label: r.label, split, summaries: r.summaries });
      }
      // A comparison replaces what was shown; single evaluations accumulate.
      setResults((rs) => (specs.length > 1 ? out : [...rs, ...out]));
      setStatus('');
    } catch (e) {
      setStatus(`failed: ${(e as Error).message}`);
    }
  };
  const cats = [...new Set(results.flatMap((r) => r.summaries.flatMap((s) => Object.keys(s.byCategory))))].sort();
  const busy = status.startsWith('eval') || status.startsWith('load');
  return h('div', { class: 'view evaluate' },
    h(Card, { title: 'Three-mode evaluation' },
      h('div', { class: 'row' },
        h('label', null, 'Model ', h(ModelPicker, { lab, value: spec, onChange: setSpec, id: 'eval-model' })),
        h('label', { title: 'Evaluate a second model on the same rows and show both side by side' }, 'compare with ', h(ModelPicker, { lab, value: other, onChange: setOther, id: 'eval-model-b', none: '(no second model)' }))),
      h('div', { class: 'row' },
        h('label', null, 'Split ', h('select', { value: split, onChange: (e: Event) => setSplit((e.target as HTMLSelectElement).value as typeof split) }, ['test', 'heldout', 'train'].map((s) => h('option', { value: s }, s)))),
        h('label', null, 'Rows ', h('input', { type: 'number', id: 'eval-rows', min: 0, value: maxRows, class: 'short', onChange: (e: Event) => setMaxRows(Number((e.target as HTMLInputElement).value)) })),
        (['direct', 'rag', 'on_demand'] as SearchMode[]).map((m) => h('label', { class: 'check' }, h('input', { type: 'checkbox', 'data-mode': m, checked: modes.includes(m), onChange: (e: Event) => setModes((e.target as HTMLInputElement).checked ? [...modes, m] : modes.filter((x) => x !== m)) }), ` ${LABEL[m]}`)),
        h('button', { class: 'primary', id: 'run-eval', disabled: !modes.length || busy, onClick: run }, other ? 'Evaluate both' : 'Evaluate')),
      status ? h('p', { class: 'muted', id: 'eval-status' }, status) : null),
    results.length ? h(Card, { title: 'Table 1 (FVQA-mini)', actions: h('button', { class: 'link', onClick: () => setResults([]) }, 'clear') },
      h('div', { class: 'cols tables', id: 'table1' }, results.map((r, i) => h('div', { class: 'table1-model', 'data-model': i + 1 },
        h('h3', { class: `model-title m${i % 4}` }, `${i + 1}. ${r.label}`, h('span', { class: 'muted' }, ` · ${r.split}`)),
        h(Table1, { r, cats })))),
      h(Bars, { results })) : null);
}
