/**
 * `npm run bench`: the side-by-side benchmark of this project's engine against jax-js and
 * TensorFlow.js, on WebGPU (ours, jax-js, tfjs) and on the CPU through WebAssembly (ours-wasm,
 * jax-js-wasm, tfjs-wasm), every engine in the same page of headless Chromium (WebGPU ones on the same
 * adapter), the same workloads, shapes and dtypes, outputs checked against ours before timing.
 *
 *   npm run bench [-- --suite matmul,attention,train,decode,grpo] [--engines ours,jax-js,tfjs,ours-wasm,jax-js-wasm,tfjs-wasm]
 *                 [--quick] [--runs N] [--only ID,ID] [--json] [--out docs/benchmarks.md]
 *   npm run bench -- --runtime node [...]          ours alone on Dawn; with --engines, any of ours,
 *                                                  ours-wasm and jax-js-wasm (the others need a browser)
 *   npm run bench -- --runtime node --suite engine|model   the engine's own suites (bench/engine.ts, bench/model.ts)
 *
 * Each row runs in a fresh page (fresh devices and buffer pools for every engine). Besides wall
 * time, the CPU time of the browser's processes is measured around every timed run: on a machine
 * whose cores are shared (and software WebGPU, which runs on them), it is the steadier measure.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { ENGINES, SUITES, isOurs, markdownTable, type EngineImpl, type EngineName, type RowResult, type SuiteName } from '../bench/harness.js';
import { createRuntimeBackend, runWithDawnEnv } from './runtime.js';
import { parseCli } from './cli.js';

const { values } = parseCli({
  options: {
    runtime: { type: 'string', default: 'chromium' },
    suite: { type: 'string', default: SUITES.join(',') },
    engines: { type: 'string' },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string', default: '5' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    out: { type: 'string' },
    child: { type: 'boolean', default: false },
  },
}, import.meta.url);

const fail = (m: string): never => {
  console.error(`npm run bench: ${m}`);
  process.exit(2);
};
const runtime = values.runtime!;
if (!['chromium', 'node'].includes(runtime)) fail(`--runtime must be chromium or node, got "${runtime}"`);
const runs = Number(values.runs);
if (!(Number.isInteger(runs) && runs >= 1)) fail(`--runs must be a positive integer, got "${values.runs}"`);
const legacy = values.suite === 'engine' || values.suite === 'model';
const suites = legacy ? [] : (values.suite!.split(',') as SuiteName[]);
for (const s of suites) if (!SUITES.includes(s)) fail(`unknown suite "${s}"; available: ${SUITES.join(', ')} (and engine, model with --runtime node)`);
if (legacy && runtime !== 'node') fail(`--suite ${values.suite} runs on Dawn: add --runtime node`);
/** Engines Node can run: ours on Dawn, ours-wasm, and jax-js on its wasm device (jax-js has no WebGPU in Node; TF.js runs in the page only). */
const NODE_ENGINES: EngineName[] = ['ours', 'ours-wasm', 'jax-js-wasm'];
const engines = (values.engines ?? (runtime === 'node' ? 'ours' : ENGINES.join(','))).split(',') as EngineName[];
for (const e of engines) if (!ENGINES.includes(e)) fail(`unknown engine "${e}"; available: ${ENGINES.join(', ')}`);
if (!engines.some(isOurs)) fail('--engines must include ours or ours-wasm (the reference of every check)');
if (runtime === 'node' && !legacy)
  for (const e of engines) if (!NODE_ENGINES.includes(e)) fail(`--runtime node runs ${NODE_ENGINES.join(', ')}; ${e} needs a browser (drop --runtime node)`);
/** --only: workloads whose id contains one of the comma-separated texts. */
const picked = (id: string) => !values.only || values.only.split(',').some((x) => id.includes(x));

// Dawn reads the Vulkan driver location at process start: re-run this script with it set (only ours
// and the engine's own suites use Dawn).
if (runtime === 'node' && (legacy || engines.includes('ours'))) runWithDawnEnv(values.child!, fail);

const log = (m: string) => values.json || console.error(m);
const machine = () => {
  const model = cpus()[0]?.model ?? 'unknown CPU';
  return `${model}, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`;
};

/** Wall and CPU time of every row; the table and, with --out, the report and its JSON. */
async function report(rows: RowResult[], header: { adapter: string; engines: string[]; machineBefore: string; crossOriginIsolated?: boolean }): Promise<void> {
  const table = markdownTable(rows);
  if (values.json) for (const r of rows) console.log(JSON.stringify(r));
  else console.log(`\nadapter: ${header.adapter}\n\n${table}`);
  if (!values.out) return;
  const command = `npm run bench -- ${process.argv.slice(2).filter((a) => a !== '--child').join(' ')}`.trim();
  const md = [
    `Command: \`${command}\``,
    '',
    `- date: ${new Date().toISOString()}`,
    `- runtime: ${runtime === 'node' ? `Node ${process.version}${engines.includes('ours') ? ' (Dawn)' : ''}` : `headless Chromium ${chromiumVersion()}`}${header.crossOriginIsolated === undefined ? '' : `, page ${header.crossOriginIsolated ? '' : 'not '}cross-origin isolated`}`,
    `- adapter: ${header.adapter}`,
    `- machine: ${header.machineBefore} (at start); load average at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `- engines: ${header.engines.join('; ')}`,
    `- ${runs} timed runs per engine and row (alternating engines) after one check run and one warm-up; medians`,
    '',
    table,
    '',
  ].join('\n');
  writeFileSync(values.out, md);
  writeFileSync(values.out.replace(/\.md$/, '') + '.json', JSON.stringify({ header: { ...header, command, runtime }, rows }, null, 1));
  log(`wrote ${values.out} and its .json`);
}

function chromiumVersion(): string {
  try {
    return execFileSync(process.env.CHROME_PATH ?? 'chromium', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** CPU time (ms) of every process descending from this one: the browser's, in the Chromium runtime. */
function childrenCpuMs(): number {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  let ns = 0;
  for (const pid of parent.keys()) {
    let p = parent.get(pid);
    while (p && p !== process.pid) p = parent.get(p);
    if (p !== process.pid) continue;
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* exited meanwhile */
    }
  }
  return ns / 1e6;
}

async function chromium(): Promise<void> {
  const { openBrowser } = await import('../tests/browser.js');
  const b = await openBrowser();
  try {
    const machineBefore = machine();
    type Info = { adapter: string; features: string[]; crossOriginIsolated: boolean; engines: { name: string; version: string }[]; workloads: { id: string; name: string }[] };
    const start = { engines, suites, quick: values.quick! };
    const open = async () => {
      const page = await b.page('/bench/page.html');
      page.setDefaultTimeout(0);
      await page.waitForFunction(() => (window as unknown as { benchReady?: boolean }).benchReady === true);
      const info = (await page.evaluate((o) => (window as any).bench.start(o), start)) as Info;
      return { page, info };
    };
    const first = await open();
    const info = first.info;
    await first.page.close();
    log(`adapter: ${info.adapter} (${info.features.includes('shader-f16') ? 'shader-f16' : 'no shader-f16'}); page ${info.crossOriginIsolated ? 'cross-origin isolated (WebAssembly threads)' : 'not cross-origin isolated (WebAssembly engines single-threaded)'}`);
    for (const e of info.engines) log(`  ${e.name}: ${e.version}`);
    const rows: RowResult[] = [];
    for (const w of info.workloads.filter((x) => picked(x.id))) {
      log(`${w.name} ...`);
      const { page } = await open();
      // A step still running after 2 minutes is named, so that a run that hangs says where.
      const bench = async <T>(fn: string, ...args: unknown[]) => {
        const slow = setTimeout(() => log(`  still in ${fn}(${args.map((a) => JSON.stringify(a)).join(', ')}) after 2 minutes`), 120_000);
        try {
          return (await page.evaluate(([f, a]) => (window as any).bench[f](...a), [fn, args] as [string, unknown[]])) as T;
        } finally {
          clearTimeout(slow);
        }
      };
      const timed = await bench<EngineName[]>('prepareRow', w.id);
      for (let r = 0; r < runs; r++)
        for (const e of timed) {
          await bench('before', e);
          const c0 = childrenCpuMs();
          await bench('runOnce', e);
          await bench('addCpu', e, childrenCpuMs() - c0);
        }
      const row = await bench<RowResult>('finishRow');
      rows.push(row);
      for (const r of row.results) log(`  ${r.engine}: ${r.status}${r.ms !== undefined ? ` ${r.ms.toFixed(1)} ms, CPU ${r.cpuMs?.toFixed(1)} ms` : ''}${r.note ? ` (${r.note})` : ''}`);
      await page.close();
      if (b.errors.length) log(`  page errors: ${b.errors.splice(0).join(' | ').slice(0, 500)}`);
    }
    await report(rows, { adapter: info.adapter, engines: info.engines.map((e) => `${e.name}: ${e.version}`), machineBefore, crossOriginIsolated: info.crossOriginIsolated });
  } finally {
    await b.close();
  }
}

async function node(): Promise<void> {
  if (legacy) {
    const be = await createRuntimeBackend('node');
    const { engineSuite } = await import('../bench/engine.js');
    const { modelSuite } = await import('../bench/model.js');
    const fmt = (v: number | undefined, digits = 1) => (v === undefined ? '' : v.toFixed(digits));
    const mib = (b?: number) => (b === undefined ? '' : (b / 2 ** 20).toFixed(1));
    if (!values.json) console.log(`adapter: ${be.description}\n| benchmark | ms | GFLOP/s | tokens/s | dispatches | submits | peak MiB |\n|---|---:|---:|---:|---:|---:|---:|`);
    const row = (r: Awaited<ReturnType<typeof engineSuite>>[number]) =>
      console.log(values.json ? JSON.stringify(r) : `| ${r.name} | ${fmt(r.ms, 2)} | ${fmt(r.gflops)} | ${fmt(r.tokensPerS, 0)} | ${fmt(r.dispatches, 0)} | ${fmt(r.submits, 0)} | ${mib(r.peakBytes)} |`);
    if (values.suite === 'engine') await engineSuite(be, { quick: values.quick, runs, log: row });
    else await modelSuite(be, JSON.parse(readFileSync(new URL('../models/tiny-vlm/config.json', import.meta.url), 'utf8')), { quick: values.quick, log: row });
    return;
  }
  const { OursEngine } = await import('../bench/ours.js');
  const { instrumentDevice } = await import('../bench/harness.js');
  const { BenchSession } = await import('../bench/runner.js');
  const { workloads } = await import('../bench/workloads.js');
  const machineBefore = machine();
  const list: EngineImpl[] = [];
  let ours: InstanceType<typeof OursEngine> | undefined;
  if (engines.includes('ours')) {
    const { requestNodeDevice } = await import('../src/engine/webgpu/node.js');
    list.push(
      (ours = OursEngine.webgpu(async () => {
        const d = await requestNodeDevice();
        instrumentDevice(d.device, 'ours');
        return d;
      })),
    );
  }
  // As in a page (one thread per logical core, at most 8): Node 20 has no navigator.hardwareConcurrency for the backend's default.
  if (engines.includes('ours-wasm')) list.push(OursEngine.wasm({ threads: Math.min(8, availableParallelism()) }));
  if (engines.includes('jax-js-wasm')) list.push(new (await import('../bench/peers/jax.js')).JaxEngine('wasm'));
  const session = await BenchSession.create(list);
  for (const e of session.engines) log(`${e.name}: ${e.version}`);
  // CPU time of this process (every thread) around each run; not with Dawn, which polls for completion
  // on the main thread, so that its CPU time is about the wall time.
  const cpu = ours ? undefined : () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const rows: RowResult[] = [];
  for (const w of workloads(suites, values.quick!).filter((x) => picked(x.id))) {
    log(`${w.name} ...`);
    rows.push(await session.runRow(w, runs, cpu));
    for (const r of rows[rows.length - 1].results) log(`  ${r.engine}: ${r.status}${r.ms !== undefined ? ` ${r.ms.toFixed(1)} ms${r.cpuMs !== undefined ? `, CPU ${r.cpuMs.toFixed(1)} ms` : ''}` : ''}${r.note ? ` (${r.note})` : ''}`);
  }
  await report(rows, { adapter: ours ? ours.be.description : 'none (WebAssembly on the CPU)', engines: session.engines.map((e) => `${e.name}: ${e.version}`), machineBefore });
}

await (runtime === 'node' ? node() : chromium());
process.exit(0);
