/**
 * The benchmark in a page: creates the engines on this page's navigator.gpu (each on its own,
 * metered GPUDevice) and exposes the runner step by step as `window.bench` for scripts/bench.ts.
 */
import { requestDevice } from '../src/engine/webgpu/device.js';
import { ENGINES, meterAllDevices, type EngineImpl, type EngineName, type SuiteName, type Workload } from './harness.js';
import { OursEngine } from './ours.js';
import { BenchSession } from './runner.js';
import { workloads } from './workloads.js';

export interface PageInfo {
  adapter: string;
  features: string[];
  engines: { name: EngineName; version: string }[];
  workloads: Workload[];
}

/** Our engine and the chosen peers (loaded on demand), ours first. */
export async function createEngines(names: EngineName[]): Promise<EngineImpl[]> {
  meterAllDevices();
  const out: EngineImpl[] = [new OursEngine(() => requestDevice(navigator.gpu))];
  for (const n of ENGINES.filter((e) => e !== 'ours' && names.includes(e))) {
    if (n === 'jax-js') out.push(new (await import('./peers/jax.js')).JaxEngine());
    else out.push(new (await import('./peers/tfjs.js')).TfjsEngine());
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
      return { ...(await adapterInfo()), engines: session.engines.map((e) => ({ name: e.name, version: e.version })), workloads: list };
    },
    prepareRow: (id: string) => s().prepareRow(list.find((w) => w.id === id)!),
    before: (e: EngineName) => s().before(e),
    runOnce: (e: EngineName) => s().runOnce(e),
    addCpu: (e: EngineName, ms: number) => s().addCpu(e, ms),
    finishRow: () => s().finishRow(),
  };
  Object.assign(window, { bench, benchReady: true });
}
