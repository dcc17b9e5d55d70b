/**
 * Bench: the side-by-side benchmark of `npm run bench` (bench/) in this page: this project's engine,
 * jax-js and TensorFlow.js on the page's WebGPU adapter, each on its own device, the same workloads
 * and host data, outputs checked against ours before timing, medians of alternating runs. The table
 * shows wall time (the CLI adds the browser's CPU time, which a page cannot measure).
 */
import { h } from 'preact';
import { useState } from 'preact/hooks';
import { ENGINES, SUITES, isOurs, markdownTable, referenceOf, speedRatio, type EngineName, type RowResult, type SuiteName } from '../../../bench/harness.js';
import { adapterInfo, createEngines } from '../../../bench/page.js';
import { BenchSession } from '../../../bench/runner.js';
import { workloads } from '../../../bench/workloads.js';
import { download, useLab, type Lab } from '../lab.js';
import { Card } from './setup.js';

/** One session per page: jax-js and TF.js initialise their WebGPU backends once. */
let session: Promise<BenchSession> | undefined;
let sessionEngines = '';

const fmt = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '' : v.toFixed(digits));

/** The Bench view. */
export function BenchView({ lab }: { lab: Lab }) {
  useLab(lab);
  const [suites, setSuites] = useState<SuiteName[]>(['matmul', 'train']);
  const [peers, setPeers] = useState<EngineName[]>(['jax-js', 'tfjs']);
  const [quick, setQuick] = useState(true);
  const [runs, setRuns] = useState(3);
  const [rows, setRows] = useState<RowResult[]>([]);
  const [status, setStatus] = useState('');
  const [running, setRunning] = useState(false);
  const [stop, setStop] = useState<{ requested: boolean } | null>(null);
  const toggle = <T,>(list: T[], x: T) => (list.includes(x) ? list.filter((y) => y !== x) : [...list, x]);

  const start = async () => {
    const flag = { requested: false };
    setStop(flag);
    setRunning(true);
    setRows([]);
    try {
      const engines: EngineName[] = ['ours', ...peers];
      if (!session || sessionEngines !== engines.join()) {
        if (session && sessionEngines) throw new Error('reload the page to change the engines (jax-js and TF.js start once per page)');
        setStatus('starting the engines…');
        sessionEngines = engines.join();
        session = createEngines(engines).then((e) => BenchSession.create(e));
      }
      const s = await session;
      const { adapter } = await adapterInfo();
      const list = workloads(suites, quick);
      const done: RowResult[] = [];
      for (const [i, w] of list.entries()) {
        if (flag.requested) break;
        setStatus(`${adapter}: ${w.name} (${i + 1} of ${list.length})…`);
        done.push(await s.runRow(w, runs));
        setRows([...done]);
      }
      setStatus(`${adapter}: ${done.length} of ${list.length} rows${flag.requested ? ' (stopped)' : ''}.`);
    } catch (e) {
      setStatus(`error: ${(e as Error).message}`);
      session = undefined;
      sessionEngines = '';
    } finally {
      setRunning(false);
      setStop(null);
    }
  };

  return h('div', { class: 'view bench' },
    h(Card, { title: 'Benchmark: this engine vs jax-js and TensorFlow.js' },
      h('p', { class: 'muted' },
        'Every engine runs the same workloads from the same host data: the WebGPU engines (ours, jax-js, tfjs) on this page\'s adapter, each on its own device, the WebAssembly ones (ours-wasm, jax-js-wasm, tfjs-wasm) on the CPU; outputs are checked against ours before timing (a mismatch is shown, not timed), and each peer is compared with ours on the same kind of backend. ',
        'Quick shapes suit software adapters (SwiftShader runs at CPU speed). Peak MiB counts the GPU buffers a WebGPU engine creates during a row (ours-wasm: its live tensors; TF.js wasm: its heap): here one page runs every row, so an engine may reuse memory pooled in earlier rows (npm run bench gives each row a fresh page). ',
        'Training in the Train view competes for the same processor.'),
      lab.run?.status === 'running' ? h('div', { class: 'notice warn' }, 'A run is training: benchmark times will be slower and noisier.') : null,
      h('div', { class: 'row' }, 'Suites:', SUITES.map((x) => h('label', null, h('input', { type: 'checkbox', checked: suites.includes(x), disabled: running, 'data-suite': x, onChange: () => setSuites(toggle(suites, x)) }), ` ${x}`))),
      h('div', { class: 'row' }, 'Peers:', ENGINES.filter((e) => e !== 'ours').map((x) => h('label', null, h('input', { type: 'checkbox', checked: peers.includes(x), disabled: running, 'data-engine': x, onChange: () => setPeers(toggle(peers, x)) }), ` ${x}`))),
      h('div', { class: 'row' },
        h('label', null, h('input', { type: 'checkbox', checked: quick, disabled: running, onChange: () => setQuick(!quick) }), ' quick shapes'),
        h('label', null, ' timed runs ', h('input', { type: 'number', min: 1, max: 20, value: runs, disabled: running, style: 'width: 4em', onChange: (e: Event) => setRuns(Math.max(1, Number((e.target as HTMLInputElement).value) || 1)) })),
        h('button', { class: 'primary', id: 'bench-start', disabled: running || !suites.length, onClick: () => void start() }, 'Run'),
        h('button', { disabled: !running, onClick: () => stop && (stop.requested = true) }, 'Stop after this row'),
        h('button', { disabled: !rows.length, onClick: () => download('benchmarks.md', markdownTable(rows) + '\n', 'text/markdown') }, 'Markdown'),
        h('button', { disabled: !rows.length, onClick: () => download('benchmarks.json', JSON.stringify(rows, null, 1), 'application/json') }, 'JSON')),
      status ? h('p', { class: 'muted', id: 'bench-status' }, status) : null),
    rows.length ? h(Card, { title: 'Results' }, h(ResultTable, { rows })) : null);
}

function ResultTable({ rows }: { rows: RowResult[] }) {
  return h('table', { class: 'data', id: 'bench-table' },
    h('thead', null, h('tr', null, ['workload', 'engine', 'ms', 'GFLOP/s', 'tokens/s', 'dispatches', 'submits', 'peak MiB', 'ours faster by', 'max rel err'].map((c) => h('th', null, c)))),
    h('tbody', null, rows.flatMap(({ workload: w, results }) =>
      // each peer against ours on the same kind of backend (WebGPU peers: ours; WebAssembly ones: ours-wasm)
      results.map((r) => h('tr', { 'data-engine': r.engine },
        h('td', null, w.name), h('td', null, r.engine),
        ...(r.status === 'ok'
          ? [fmt(r.ms, 1), fmt(r.gflops, 2), fmt(r.tokensPerS, 1), fmt(r.dispatches, 0), fmt(r.submits, 0), r.peakBytes === undefined ? '' : (r.peakBytes / 2 ** 20).toFixed(1),
            isOurs(r.engine) ? '' : `${fmt(speedRatio(referenceOf(results, r), r), 2)}x`, r.relErr === undefined ? '' : r.relErr.toExponential(1)].map((v) => h('td', null, v))
          : [h('td', { colSpan: 8, class: 'muted' }, `${r.status}: ${r.note ?? ''}`)]))))));
}
