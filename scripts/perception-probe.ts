/**
 * `npx tsx scripts/perception-probe.ts [--model models/tiny-vlm] [--learning-rate 3e-4] [--steps 1500]
 *   [--batch-size 8] [--warmup-ratio 0.05] [--eval-every 250] [--eval-looks 200] [--seed 1] [--runtime wasm]
 *   [--json FILE] [--save DIR]`
 *
 * Can a fresh policy (the --model folder's config.json and tokenizer, random weights from --seed) learn to read
 * creatures it has never seen? SFT on captions of fresh random looks ("<reason>A striped red star, 3
 * marks.</reason>", each look seen once), then greedy captions of --eval-looks unseen looks read back attribute
 * by attribute (src/rl/captioning.ts, the steps of a recipe's `caption` stage). Prints one Markdown row per evaluation and the chance row; --json
 * also writes the rows. About 3 minutes for 1500 steps on 2 cores (--runtime wasm; node = WebGPU on Dawn).
 * --save writes the trained policy as a model folder (config.json, model.safetensors, the tokenizer files): a
 * recipe with `model.source` DIR and `model.init: pretrained` starts its warm start from a policy that already
 * reads looks (a captioning stage before instruction tuning, as LLaVA's feature-alignment stage).
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOOK_ATTRIBUTES, LOOK_VALUES } from '../src/data/questions.js';
import { parseConfig, type VLMConfig } from '../src/models/config.js';
import type { Idefics3ForConditionalGeneration } from '../src/models/idefics3.js';
import { createModel, saveModel } from '../src/models/checkpoint.js';
import { loadTokenizer } from '../src/models/tokenizer.js';
import { TurnEncoder } from '../src/rl/conversation.js';
import { perceptionProbe, type PerceptionProbeRow } from '../src/rl/captioning.js';
import { parseCli } from './cli.js';
import { createRuntimeBackend, runWithDawnEnv } from './runtime.js';

const { values } = parseCli({
  options: {
    model: { type: 'string', default: 'models/tiny-vlm' },
    'learning-rate': { type: 'string', default: '3e-4' },
    steps: { type: 'string', default: '1500' },
    'batch-size': { type: 'string', default: '8' },
    'warmup-ratio': { type: 'string', default: '0.05' },
    'eval-every': { type: 'string', default: '250' },
    'eval-looks': { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    runtime: { type: 'string', default: 'wasm' },
    json: { type: 'string' },
    save: { type: 'string' },
    child: { type: 'boolean', default: false },
  },
}, import.meta.url);

const fail = (message: string): never => {
  console.error(`perception-probe: ${message}`);
  process.exit(2);
};
const number = (name: keyof typeof values): number => {
  const v = Number(values[name]);
  if (!Number.isFinite(v)) fail(`--${name} must be a number, got ${values[name]}`);
  return v;
};
if (!['wasm', 'node', 'cpu'].includes(values.runtime!)) fail(`--runtime must be wasm, node or cpu, got ${values.runtime}`);
if (values.runtime === 'node') runWithDawnEnv(values.child!, fail);

const dir = values.model!;
const read = (f: string) => {
  try {
    return JSON.parse(readFileSync(join(dir, f), 'utf8'));
  } catch (e) {
    return fail(`cannot read ${join(dir, f)}: ${(e as Error).message}`);
  }
};
const config = parseConfig(read('config.json'), join(dir, 'config.json'));
if (config.architecture !== 'Idefics3ForConditionalGeneration') fail(`${join(dir, 'config.json')} is a text-only model (${config.architecture}): the probe needs a vision tower`);
const vision = (config as VLMConfig).vision;
const backend = await createRuntimeBackend(values.runtime!);
const model = createModel(config, backend, number('seed')) as Idefics3ForConditionalGeneration;
const tok = loadTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
const enc = new TurnEncoder(tok, model.imageSeqLen, true);

console.log(`${dir}, learning rate ${values['learning-rate']}, batch ${values['batch-size']}, seed ${values.seed}, ${values.runtime}\n`);
console.log('| step | caption loss | parsed % | pattern % | colour % | shape % | marks % |\n|---:|---:|---:|---:|---:|---:|---:|');
const t0 = Date.now();
const rows: PerceptionProbeRow[] = await perceptionProbe(model, tok, enc, {
  learningRate: number('learning-rate'),
  warmupRatio: number('warmup-ratio'),
  steps: number('steps'),
  batchSize: number('batch-size'),
  evalEvery: number('eval-every'),
  evalLooks: number('eval-looks'),
  seed: number('seed'),
  imageSize: vision.image_size,
}, (r) => console.log(`| ${r.step} | ${r.loss.toFixed(3)} | ${r.parsed} | ${r.pattern} | ${r.colour} | ${r.shape} | ${r.marks} |`));
const chance = (k: number) => (100 / k).toFixed(1);
console.log(`| chance | | | ${LOOK_ATTRIBUTES.map((a) => chance(LOOK_VALUES[a])).join(' | ')} |\n\n${((Date.now() - t0) / 1000).toFixed(0)} s`);
if (values.json) writeFileSync(values.json, JSON.stringify({ model: dir, options: values, rows }, null, 2));
if (values.save) {
  mkdirSync(values.save, { recursive: true });
  for (const [name, bytes] of await saveModel(model)) writeFileSync(join(values.save, name), bytes);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(dir, f), join(values.save, f));
  console.log(`saved the policy to ${values.save} (model.init: pretrained)`);
}
