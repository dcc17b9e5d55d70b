/**
 * `npm run bench -- --suite engine [--json] [--quick] [--runs N]`: runs benchmark suites on Dawn in
 * Node (WebGPU; SwiftShader on machines without a GPU) and prints a table, or JSON lines with --json.
 * Later suites (model, peers in Chromium) join here.
 */
import { parseArgs } from 'node:util';
import { createRuntimeBackend, runWithDawnEnv } from './runtime.js';

const { values } = parseArgs({
  options: {
    suite: { type: 'string', default: 'engine' },
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string', default: '5' },
    child: { type: 'boolean', default: false },
  },
});

const SUITES = ['engine', 'model'];
if (!SUITES.includes(values.suite!)) {
  console.error(`npm run bench: unknown suite "${values.suite}"; available: ${SUITES.join(', ')}`);
  process.exit(2);
}

// Dawn reads the Vulkan driver location at process start: re-run this script with it set.
runWithDawnEnv(values.child!, (m) => {
  console.error(`npm run bench: ${m}`);
  process.exit(1);
});

const { engineSuite } = await import('../bench/engine.js');
const { modelSuite } = await import('../bench/model.js');
type Row = Awaited<ReturnType<typeof engineSuite>>[number];

const be = await createRuntimeBackend('node');
const adapterName = be.description;
const fmt = (v: number | undefined, digits = 1) => (v === undefined ? '' : v.toFixed(digits));
const mib = (b?: number) => (b === undefined ? '' : (b / 2 ** 20).toFixed(1));
if (!values.json) {
  console.log(`adapter: ${adapterName}`);
  console.log('| benchmark | ms | GFLOP/s | tokens/s | dispatches | submits | peak MiB |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
}
const log = (r: Row) =>
  console.log(values.json ? JSON.stringify(r) : `| ${r.name} | ${fmt(r.ms, 2)} | ${fmt(r.gflops)} | ${fmt(r.tokensPerS, 0)} | ${fmt(r.dispatches, 0)} | ${fmt(r.submits, 0)} | ${mib(r.peakBytes)} |`);
if (values.suite === 'engine') await engineSuite(be, { quick: values.quick, runs: Number(values.runs), log });
else {
  const { readFileSync } = await import('node:fs');
  const tiny = JSON.parse(readFileSync(new URL('../models/tiny-vlm/config.json', import.meta.url), 'utf8'));
  await modelSuite(be, tiny, { quick: values.quick, log });
}
process.exit(0);
