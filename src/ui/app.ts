/** The lab's shell: header with device and search status, tabs, the current view and global notices. */
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { useLab, type Lab } from './lab.js';
import { BenchView } from './views/bench.js';
import { ChatView } from './views/chat.js';
import { EvaluateView } from './views/evaluate.js';
import { RolloutsView } from './views/rollouts.js';
import { SetupView } from './views/setup.js';
import { StorageView } from './views/storage.js';
import { TrainView } from './views/train.js';

const TABS = [
  { id: 'setup', label: 'Setup', view: SetupView },
  { id: 'train', label: 'Train', view: TrainView },
  { id: 'rollouts', label: 'Step inspector', view: RolloutsView },
  { id: 'evaluate', label: 'Evaluate', view: EvaluateView },
  { id: 'chat', label: 'Chat', view: ChatView },
  { id: 'storage', label: 'Storage', view: StorageView },
  { id: 'bench', label: 'Bench', view: BenchView },
] as const;
type TabId = (typeof TABS)[number]['id'];

const fromHash = (): TabId => (TABS.find((t) => `#${t.id}` === location.hash)?.id ?? 'setup');

/** The header's short name of the compute backend (Setup has the details). */
const BACKEND_BADGE = { webgpu: 'WebGPU', wasm: 'WebAssembly', cpu: 'CPU (slow)' } as const;

/** The whole lab. */
export function App({ lab }: { lab: Lab }) {
  useLab(lab);
  const [tab, setTab] = useState<TabId>(fromHash);
  useEffect(() => {
    const on = () => setTab(fromHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    // An interrupted run: show the offer where the run would continue.
    if (lab.resumable && !lab.run && location.hash === '') location.hash = 'train';
  }, [lab.resumable]);
  const View = TABS.find((t) => t.id === tab)!.view;
  const a = lab.adapter;
  const run = lab.run;
  return h('div', { class: 'app' },
    h('header', null,
      h('div', { class: 'brand' }, h('img', { src: '/favicon.svg', alt: '' }), h('span', null, 'MMSearch Lab'), h('small', null, 'GRPO for multimodal search agents, in the browser')),
      h('nav', null, TABS.map((t) => h('a', { href: `#${t.id}`, class: t.id === tab ? 'active' : '', 'data-tab': t.id }, t.label))),
      h('div', { class: 'status-line' },
        run ? h('span', { class: `badge status-${run.status}` }, `${run.status} · ${run.phase}`) : null,
        h('span', { class: `badge ${lab.backendInfo && !lab.backendInfo.error ? 'ok' : 'warn'}`, title: lab.backendInfo?.reason ?? a?.name }, lab.backendInfo?.name ? BACKEND_BADGE[lab.backendInfo.name] : lab.backendInfo ? 'no backend' : '…'),
        h('span', { class: `badge ${lab.proxy.reachable ? 'ok' : ''}`, title: lab.proxy.message }, lab.proxy.reachable ? 'proxy' : 'local search'))),
    lab.error ? h('div', { class: 'notice error global', role: 'alert' }, lab.error, ' ', h('button', { class: 'link', onClick: () => ((lab.error = null), lab.changed()) }, 'dismiss')) : null,
    lab.backendInfo?.error ? h('div', { class: 'notice warn global' }, lab.backendInfo.error) : null,
    h('main', null, h(View, { lab })));
}
