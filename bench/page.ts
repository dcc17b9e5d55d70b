/**
 * The benchmark in a page: creates the engines, the WebGPU ones on this page's navigator.gpu (each on
 * its own, metered GPUDevice) and the WebAssembly ones on the CPU (multithreaded where the page is
 * cross-origin isolated), and exposes the runner step by step as `window.bench` for scripts/bench.ts.
 */
import { requestDevice } from '../src/engine/webgpu/device.js';
import { ENGINES, isOurs, meterAllDevices, type EngineImpl, type EngineName, type SuiteName, type Workload } from './harness.js';
import { OursEngine } from './ours.js';
import { BenchSession } from './runner.js';
import { workloads } from './workloads.js';

export interface PageInfo {
  adapter: string;
  features: string[];
  /** Whether the page may share memory with workers (SharedArrayBuffer): the WebAssembly engines' threads need it. */
  crossOriginIsolated: boolean;
  engines: { name: EngineName; version: string }[];
  workloads: Workload[];
}

/**
 * The chosen engines in ENGINES order (ours first, then ours-wasm, then the peers), the peers loaded
 * on demand. `ours` is added when neither of our engines is chosen: the first engine is the
 * reference of every check.
 */
export async function createEngines(names: EngineName[]): Promise<EngineImpl[]> {
  meterAllDevices();
  const chosen = names.some(isOurs) ? names : ['ours', ...names];
  const order: EngineName[] = ['ours', 'ours-wasm', ...ENGINES.filter((e) => !isOurs(e))];
  const out: EngineImpl[] = [];
  for (const n of order.filter((e) => chosen.includes(e))) {
    if (n === 'ours') out.push(OursEngine.webgpu(() => requestDevice(navigator.gpu)));
    else if (n === 'ours-wasm') out.push(OursEngine.wasm());
    else if (n === 'jax-js' || n === 'jax-js-wasm') out.push(new (await import('./peers/jax.js')).JaxEngine(n === 'jax-js' ? 'webgpu' : 'wasm'));
    else out.push(new (await import('./peers/tfjs.js')).TfjsEngine(n === 'tfjs' ? 'webgpu' : 'wasm'));
  }
  return out;
}

/** The adapter's description and features, as the engines see it. */
export async function adapterInfo(): Promise<{ adapter: string; features: string[] }> {
  const a = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!a) throw new Error('no WebGPU adapter in this page');
  return { adapter: [a.info.vendor, a.info.architecture, a.info.description].filter(Boolean).join(' / '), features: [...a.features].sort() };
}

export function exposeBench(): void {
  let session: BenchSession | undefined;
  let list: Workload[] = [];
  const s = () => {
    if (!session) throw new Error('call bench.start first');
    return session;
  };
  const bench = {
    async start(o: { engines: EngineName[]; suites: SuiteName[]; quick: boolean }): Promise<PageInfo> {
      session = await BenchSession.create(await createEngines(o.engines));
      list = workloads(o.suites, o.quick);
      return { ...(await adapterInfo()), crossOriginIsolated, engines: session.engines.map((e) => ({ name: e.name, version: e.version })), workloads: list };
    },
    prepareRow: (id: string) => s().prepareRow(list.find((w) => w.id === id)!),
    before: (e: EngineName) => s().before(e),
    runOnce: (e: EngineName) => s().runOnce(e),
    addCpu: (e: EngineName, ms: number) => s().addCpu(e, ms),
    finishRow: () => s().finishRow(),
  };
  Object.assign(window, { bench, benchReady: true });
}
