/**
 * Storage: datasets (IndexedDB dataset store) with parquet / JSONL import and parquet export; runs with
 * their checkpoints and metrics (runs store): a Hugging Face model folder or PEFT adapter as one ZIP,
 * metrics as CSV or JSONL (the CLI's metrics.jsonl), import of a model folder as a stored checkpoint;
 * quota used and available, a persistence request, and deletion with confirmation.
 */
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ByteWriter } from 'hyparquet-writer';
import { writeFvqaParquet } from '../../data/parquet.js';
import { metricsToCsv } from '../../export/metrics.js';
import { openIdbStore } from '../../storage/idb-store.js';
import type { DatasetInfo } from '../../storage/store.js';
import { importDatasetFiles } from '../dataset-import.js';
import { download, formatBytes, useLab, type Lab } from '../lab.js';
import { metricRecords, type RunRecord } from '../../lab/runs-store.js';
import { Card } from './setup.js';

/** A delete button that asks for confirmation inline. */
function DeleteButton({ what, onDelete }: { what: string; onDelete: () => Promise<void> }) {
  const [asking, setAsking] = useState(false);
  if (!asking) return h('button', { class: 'danger', 'data-delete': what, onClick: () => setAsking(true) }, 'Delete');
  return h('span', { class: 'confirm' }, `Delete ${what}? `,
    h('button', { class: 'danger', 'data-confirm': what, onClick: async () => (await onDelete(), setAsking(false)) }, 'Yes, delete'),
    h('button', { onClick: () => setAsking(false) }, 'Cancel'));
}

/** A button-styled file picker; `onFiles` gets the picked files and the input is cleared for the next pick. */
function FilePicker(p: { id: string; label: string; accept?: string; multiple?: boolean; folder?: boolean; disabled?: boolean; title?: string; onFiles: (files: File[]) => void }) {
  return h('label', { class: `button ${p.disabled ? 'disabled' : ''}`, title: p.title }, p.label,
    h('input', { id: p.id, type: 'file', hidden: true, disabled: p.disabled, accept: p.accept, multiple: p.multiple, webkitdirectory: p.folder,
      onChange: (e: Event) => {
        const input = e.target as HTMLInputElement;
        const files = [...(input.files ?? [])];
        input.value = '';
        if (files.length) p.onFiles(files);
      } }));
}

/** The Storage view. */
export function StorageView({ lab }: { lab: Lab }) {
  useLab(lab);
  const [datasets, setDatasets] = useState<DatasetInfo[]>([]);
  const [runs, setRuns] = useState<RunRecord[]>([]);
  const [estimate, setEstimate] = useState<StorageEstimate | null>(null);
  const [persisted, setPersisted] = useState<boolean | null>(null);
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState('');
  const [datasetName, setDatasetName] = useState('');
  const [datasetNote, setDatasetNote] = useState('');
  const [modelNote, setModelNote] = useState('');
  const refresh = async () => {
    const store = await openIdbStore();
    setDatasets(await store.list());
    await store.close();
    setRuns(await (await lab.runs()).listRuns());
    setEstimate(await navigator.storage.estimate());
    setPersisted(await navigator.storage.persisted());
  };
  useEffect(() => void refresh(), [lab.run?.status, lab.run?.checkpointAt]);
  /** Runs an action with `doing` shown; its error goes to the banner. */
  const act = (fn: () => Promise<void>, doing = '') => async () => {
    setMessage('');
    setBusy(doing);
    try {
      await fn();
    } catch (e) {
      setMessage((e as Error).message);
    } finally {
      setBusy('');
    }
    await refresh();
  };
  const exportParquet = (name: string) => act(async () => {
    const store = await openIdbStore();
    try {
      const w = new ByteWriter();
      async function* rows() {
        for await (const batch of store.rows(name)) yield* batch;
      }
      await writeFvqaParquet(rows(), w);
      download(`${name}.parquet`, w.getBytes() as Uint8Array<ArrayBuffer>);
    } finally {
      await store.close();
    }
  });
  const exportModel = (id: string, adapter: boolean) => act(async () => {
    const zip = await lab.inference.exportModel(id, { adapter, backend: lab.backend });
    download(`${id}-${adapter ? 'adapter' : 'model'}.zip`, zip as Uint8Array<ArrayBuffer>, 'application/zip');
  }, `exporting ${id}…`);
  const exportMetrics = (id: string, format: 'csv' | 'jsonl') => act(async () => {
    const records = metricRecords(await (await lab.runs()).metrics(id));
    if (format === 'csv') download(`${id}-metrics.csv`, metricsToCsv(records), 'text/csv');
    else download(`${id}-metrics.jsonl`, records.map((r) => JSON.stringify(r) + '\n').join(''), 'application/jsonl');
  });
  const importModel = (files: File[]) => act(async () => {
    setModelNote('');
    const run = await lab.inference.importModel(files, { recipe: lab.recipe, backend: lab.backend });
    setModelNote(`imported as ${run.id}: pick it in Chat, Evaluate, or Setup (to train from it)`);
  }, 'importing the model…')();
  const importDataset = (files: File[]) => act(async () => {
    setDatasetNote('');
    const store = await openIdbStore();
    try {
      const info = await importDatasetFiles(store, files, { name: datasetName.trim() || undefined, onProgress: (p) => setBusy(`importing… ${p.done} rows`) });
      setDatasetNote(`stored ${info.name}: ${info.rows} rows (${info.categories.search_free} search-free, ${info.categories.search_required} search-required)`);
    } finally {
      await store.close();
    }
  }, 'importing the dataset…')();
  const used = estimate?.usage ?? 0, quota = estimate?.quota ?? 0;
  return h('div', { class: 'view storage' },
    h(Card, { title: 'Browser storage' },
      h('div', { class: 'row' }, h('span', { id: 'quota' }, estimate ? `${formatBytes(used)} used of ${formatBytes(quota)} available to this site` : '…'),
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted' }, persisted ? 'persistent (the browser will not evict it)' : 'best-effort (may be evicted under pressure)'),
        h('button', { disabled: !!persisted, onClick: act(async () => void (await navigator.storage.persist())) }, 'Request persistence')),
      h('div', { class: 'bar' }, h('div', { style: { width: `${quota ? Math.max(0.5, (100 * used) / quota) : 0}%` } })),
      busy ? h('div', { class: 'notice info', id: 'storage-busy' }, busy) : null,
      message ? h('div', { class: 'notice error', id: 'storage-error', role: 'alert' }, message) : null),
    h(Card, { title: 'Datasets' },
      datasets.length ? h('table', { class: 'data', id: 'datasets-table' },
        h('thead', null, h('tr', null, ['name', 'rows', 'size', 'categories', 'source', ''].map((c) => h('th', null, c)))),
        h('tbody', null, datasets.map((d) => h('tr', { 'data-dataset': d.name }, h('td', null, d.name), h('td', { class: 'num' }, d.rows), h('td', { class: 'num' }, formatBytes(d.bytes)),
          h('td', null, `${d.categories.search_free} free / ${d.categories.search_required} required`), h('td', { class: 'muted' }, d.source),
          h('td', { class: 'actions' }, h('button', { onClick: exportParquet(d.name) }, 'Parquet'), h(DeleteButton, { what: d.name, onDelete: act(async () => { const s = await openIdbStore(); await s.delete(d.name); await s.close(); }) })))))) :
        h('p', { class: 'muted' }, 'No datasets stored. Generate FVQA-mini in Setup, or import one.'),
      h('div', { class: 'row' },
        h('span', null, 'Import '),
        h('input', { id: 'import-dataset-name', placeholder: 'name (default: the file name)', value: datasetName, onInput: (e: Event) => setDatasetName((e.target as HTMLInputElement).value) }),
        h(FilePicker, { id: 'import-parquet', label: 'FVQA parquet file', accept: '.parquet,.pq', disabled: !!busy, onFiles: importDataset, title: 'The veRL parquet schema MMSearch-R1 trains on (lmms-lab/FVQA), as `npm run dataset -- export` writes it' }),
        h(FilePicker, { id: 'import-jsonl', label: 'JSONL folder', folder: true, disabled: !!busy, onFiles: importDataset, title: 'A folder with one .jsonl file (question, images, reward_model, ...) and the images its lines name by relative path' }),
        datasetNote ? h('span', { class: 'muted', id: 'dataset-import-status' }, datasetNote) : null)),
    h(Card, { title: 'Runs and checkpoints' },
      runs.length ? h('table', { class: 'data', id: 'runs-table' },
        h('thead', null, h('tr', null, ['run', 'status', 'position', 'checkpoint', 'saved', ''].map((c) => h('th', null, c)))),
        h('tbody', null, runs.map((r) => h('tr', { 'data-run': r.id }, h('td', null, r.id), h('td', null, h('span', { class: `badge status-${r.status}` }, r.status)), h('td', null, r.importedFrom ? `imported from ${r.importedFrom}` : `${r.phase} · SFT ${r.sftStep} · GRPO ${r.grpoStep}`),
          h('td', { class: 'num' }, r.checkpointAt ? formatBytes(r.checkpointBytes) : '–'), h('td', { class: 'muted' }, r.checkpointAt ? new Date(r.checkpointAt).toLocaleString() : ''),
          h('td', { class: 'actions' },
            h('button', { disabled: !r.checkpointAt || !!busy, 'data-export-model': r.id, title: 'config.json, model.safetensors (LoRA merged) and tokenizer files as one ZIP: unzip, then from_pretrained', onClick: exportModel(r.id, false) }, 'HF model'),
            r.recipe.model.lora ? h('button', { disabled: !r.checkpointAt || !!busy, 'data-export-adapter': r.id, title: 'PEFT adapter_config.json + adapter_model.safetensors, with the base model in base/, as one ZIP', onClick: exportModel(r.id, true) }, 'PEFT adapter') : null,
            r.importedFrom ? null : h('button', { 'data-export-metrics': r.id, onClick: exportMetrics(r.id, 'csv') }, 'metrics CSV'),
            r.importedFrom ? null : h('button', { 'data-export-jsonl': r.id, onClick: exportMetrics(r.id, 'jsonl') }, 'JSONL'),
            r.status !== 'done' && r.checkpointAt && lab.run?.status !== 'running' ? h('button', { onClick: () => lab.resumeStored(r) }, 'Resume') : null,
            h(DeleteButton, { what: r.id, onDelete: act(async () => { if (lab.run?.id === r.id && lab.run.status === 'running') throw new Error('stop the run before deleting it'); await (await lab.runs()).deleteRun(r.id); }) })))))) :
        h('p', { class: 'muted' }, 'No runs yet.'),
      h('div', { class: 'row' },
        h(FilePicker, { id: 'import-model', label: 'Import a model', accept: '.zip,.json,.safetensors', multiple: true, disabled: !!busy, onFiles: importModel, title: 'A model ZIP exported here, or a folder\'s config.json + model.safetensors (+ tokenizer.json, tokenizer_config.json)' }),
        h('span', { class: 'muted', id: 'model-import-status' }, modelNote || 'a model ZIP exported here, or config.json + model.safetensors (+ tokenizer files) of a Hugging Face model folder'))));
}
