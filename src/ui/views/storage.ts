/**
 * Storage: datasets (IndexedDB dataset store), runs with their checkpoints and metrics (runs store),
 * quota used and available, a persistence request, exports (safetensors, parquet, metrics), import
 * of a checkpoint, and deletion with confirmation.
 */
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ByteWriter } from 'hyparquet-writer';
import { writeFvqaParquet } from '../../data/parquet.js';
import { openIdbStore } from '../../storage/idb-store.js';
import type { DatasetInfo } from '../../storage/store.js';
import { download, formatBytes, useLab, type Lab } from '../lab.js';
import type { RunRecord } from '../runs-store.js';
import { metricsCsv } from './train.js';
import { Card } from './setup.js';

/** A delete button that asks for confirmation inline. */
function DeleteButton({ what, onDelete }: { what: string; onDelete: () => Promise<void> }) {
  const [asking, setAsking] = useState(false);
  if (!asking) return h('button', { class: 'danger', 'data-delete': what, onClick: () => setAsking(true) }, 'Delete');
  return h('span', { class: 'confirm' }, `Delete ${what}? `,
    h('button', { class: 'danger', 'data-confirm': what, onClick: async () => (await onDelete(), setAsking(false)) }, 'Yes, delete'),
    h('button', { onClick: () => setAsking(false) }, 'Cancel'));
}

/** The Storage view. */
export function StorageView({ lab }: { lab: Lab }) {
  useLab(lab);
  const [datasets, setDatasets] = useState<DatasetInfo[]>([]);
  const [runs, setRuns] = useState<RunRecord[]>([]);
  const [estimate, setEstimate] = useState<StorageEstimate | null>(null);
  const [persisted, setPersisted] = useState<boolean | null>(null);
  const [message, setMessage] = useState('');
  const refresh = async () => {
    const store = await openIdbStore();
    setDatasets(await store.list());
    await store.close();
    setRuns(await (await lab.runs()).listRuns());
    setEstimate(await navigator.storage.estimate());
    setPersisted(await navigator.storage.persisted());
  };
  useEffect(() => void refresh(), [lab.run?.status, lab.run?.checkpointAt]);
  const act = (fn: () => Promise<void>) => async () => {
    setMessage('');
    try {
      await fn();
    } catch (e) {
      setMessage((e as Error).message);
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
  const exportCheckpoint = (id: string) => act(async () => {
    const files = await (await lab.runs()).checkpointFiles(id);
    if (!files) throw new Error(`${id} has no checkpoint`);
    download(`${id}-model.safetensors`, files.get('model.safetensors')! as Uint8Array<ArrayBuffer>);
    download(`${id}-config.json`, files.get('config.json')! as Uint8Array<ArrayBuffer>, 'application/json');
  });
  const exportMetrics = (id: string) => act(async () => download(`${id}-metrics.csv`, metricsCsv(await (await lab.runs()).metrics(id)), 'text/csv'));
  const used = estimate?.usage ?? 0, quota = estimate?.quota ?? 0;
  return h('div', { class: 'view storage' },
    h(Card, { title: 'Browser storage' },
      h('div', { class: 'row' }, h('span', { id: 'quota' }, estimate ? `${formatBytes(used)} used of ${formatBytes(quota)} available to this site` : '…'),
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted' }, persisted ? 'persistent (the browser will not evict it)' : 'best-effort (may be evicted under pressure)'),
        h('button', { disabled: !!persisted, onClick: act(async () => void (await navigator.storage.persist())) }, 'Request persistence')),
      h('div', { class: 'bar' }, h('div', { style: { width: `${quota ? Math.max(0.5, (100 * used) / quota) : 0}%` } })),
      message ? h('div', { class: 'notice error' }, message) : null),
    h(Card, { title: 'Datasets' },
      datasets.length ? h('table', { class: 'data', id: 'datasets-table' },
        h('thead', null, h('tr', null, ['name', 'rows', 'size', 'categories', 'source', ''].map((c) => h('th', null, c)))),
        h('tbody', null, datasets.map((d) => h('tr', { 'data-dataset': d.name }, h('td', null, d.name), h('td', { class: 'num' }, d.rows), h('td', { class: 'num' }, formatBytes(d.bytes)),
          h('td', null, `${d.categories.search_free} free / ${d.categories.search_required} required`), h('td', { class: 'muted' }, d.source),
          h('td', { class: 'actions' }, h('button', { onClick: exportParquet(d.name) }, 'Parquet'), h(DeleteButton, { what: d.name, onDelete: act(async () => { const s = await openIdbStore(); await s.delete(d.name); await s.close(); }) })))))) :
        h('p', { class: 'muted' }, 'No datasets stored. Generate FVQA-mini in Setup.')),
    h(Card, { title: 'Runs and checkpoints' },
      runs.length ? h('table', { class: 'data', id: 'runs-table' },
        h('thead', null, h('tr', null, ['run', 'status', 'position', 'checkpoint', 'saved', ''].map((c) => h('th', null, c)))),
        h('tbody', null, runs.map((r) => h('tr', { 'data-run': r.id }, h('td', null, r.id), h('td', null, h('span', { class: `badge status-${r.status}` }, r.status)), h('td', null, `${r.phase} · SFT ${r.sftStep} · GRPO ${r.grpoStep}`),
          h('td', { class: 'num' }, r.checkpointAt ? formatBytes(r.checkpointBytes) : '–'), h('td', { class: 'muted' }, r.checkpointAt ? new Date(r.checkpointAt).toLocaleString() : ''),
          h('td', { class: 'actions' },
            h('button', { disabled: !r.checkpointAt, onClick: exportCheckpoint(r.id) }, 'safetensors'),
            h('button', { onClick: exportMetrics(r.id) }, 'metrics'),
            r.status !== 'done' && r.checkpointAt && lab.run?.status !== 'running' ? h('button', { onClick: () => lab.resumeStored(r) }, 'Resume') : null,
            h(DeleteButton, { what: r.id, onDelete: act(async () => { if (lab.run?.id === r.id && lab.run.status === 'running') throw new Error('stop the run before deleting it'); await (await lab.runs()).deleteRun(r.id); }) })))))) :
        h('p', { class: 'muted' }, 'No runs yet.')));
}
