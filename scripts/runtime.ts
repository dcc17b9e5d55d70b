/**
 * The WebGPU runtime of the command-line tools: Dawn (the `webgpu` package) reads the Vulkan driver
 * location at process start, so a tool re-runs itself once with the environment of gpu-env.ts, then
 * creates its backend: WebGPU on Dawn (`node`) or the float64 CPU reference (`cpu`).
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { Backend } from '../src/engine/index.js';
import type { Recipe } from '../src/rl/recipe.js';
import type { TrainerEnv } from '../src/rl/trainer.js';
import { dawnEnv } from './chromium/gpu-env.js';

/**
 * In the parent process (no `--child` flag), re-runs this script with `--child` and the Dawn
 * environment and exits with its status; in the child, returns. `fail` reports a missing driver.
 */
export function runWithDawnEnv(isChild: boolean, fail: (message: string) => never): void {
  if (isChild) return;
  let env: NodeJS.ProcessEnv;
  try {
    env = dawnEnv();
  } catch (e) {
    return fail((e as Error).message);
  }
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1), '--child'], { stdio: 'inherit', env });
  process.exit(r.status ?? 1);
}

/**
 * The backend for `--runtime node|wasm|cpu`. wasm: the WebAssembly backend on every core ($WASM_THREADS to change),
 * with relaxed SIMD's fused multiply-add (src/engine/wasm/node.ts turns it on in Node 20); $WASM_RELAXED_SIMD=0 keeps
 * plain SIMD (the kernels of runs made before 2026-12-07, bit for bit).
 */
export async function createRuntimeBackend(runtime: string): Promise<Backend> {
  const E = await import('../src/engine/index.js');
  if (runtime === 'cpu') return new E.CpuBackend();
  if (runtime === 'wasm') {
    const { availableParallelism } = await import('node:os');
    const { enableRelaxedSimd } = await import('../src/engine/wasm/node.js');
    const relaxedSimd = process.env.WASM_RELAXED_SIMD !== '0' && enableRelaxedSimd();
    return E.WasmBackend.create({ threads: Number(process.env.WASM_THREADS ?? availableParallelism()), relaxedSimd });
  }
  const { requestNodeDevice } = await import('../src/engine/webgpu/node.js');
  const { device, adapterName } = await requestNodeDevice();
  return new E.WebGPUBackend(device, adapterName);
}

/**
 * What a recipe needs from outside the run folder, for `npm run train` and `npm run eval`: the proxy's
 * search client (search.backend proxy) and hub access: `.cache/hub` under `root` (or $HUB_CACHE_DIR) as
 * the download cache in Node, $HF_ENDPOINT for a mirror, $HF_TOKEN for gated repos. The Chromium runtime
 * takes `hubRemote` (its worker caches in IndexedDB).
 */
export async function recipeServices(r: Recipe, root: string): Promise<{ search: TrainerEnv['proxyTools']; hub: NonNullable<TrainerEnv['hub']>; hubRemote: { endpoint?: string; headers?: Record<string, string> } }> {
  const { proxySearchTools } = await import('../src/rl/environment.js');
  const { FsHubCache } = await import('../src/storage/fs-hub-cache.js');
  const headers = process.env.HF_TOKEN ? { Authorization: `Bearer ${process.env.HF_TOKEN}` } : undefined;
  const hubRemote = { endpoint: process.env.HF_ENDPOINT, headers };
  return {
    search: proxySearchTools(r),
    hub: { cache: new FsHubCache(resolve(process.env.HUB_CACHE_DIR ?? join(root, '.cache', 'hub'))), ...hubRemote },
    hubRemote,
  };
}
