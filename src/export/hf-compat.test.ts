/**
 * The exports loaded by their home tools (issue 18 item 3): scripts/check_hf_compat.py run with the
 * test Python environment (transformers, peft) on
 *  - the hub fixtures of every architecture (Llama tied BF16, Llama sharded F32, Qwen2 F16 with q/k/v
 *    biases, Idefics3), re-exported as model folders: from_pretrained logits within 1e-4 of the lab's,
 *    same greedy tokens;
 *  - tiny-vlm (its config and tokenizer, seeded weights): the same, plus AutoTokenizer's chat template
 *    text and ids, and AutoProcessor's input_ids (exact) and pixel_values (within 1e-6);
 *  - a tiny-vlm LoRA adapter through peft.PeftModel and through peft.AutoPeftModel from the adapter
 *    folder alone, and a Llama LoRA adapter through AutoPeftModelForCausalLM.
 * The lab's side is computed here on the float64 CPU backend; transformers runs float32.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { writeFixtureHub } from '../../scripts/make-fixtures.js';
import { runPython } from '../../scripts/python-env.js';
import * as E from '../engine/index.js';
import { openSafetensorsBuffer, serializeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { applyLora, createModel, loadPretrained, type PolicyModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { loadCheckpointModel } from '../rl/checkpoint.js';
import { parseRecipe, type Recipe } from '../rl/recipe.js';
import { exportModelFiles, exportModelFolder, goldenOutput, goldenRow } from './model.js';
import { writeFiles } from './node.js';
import { dec, read, root, tempDirs, tok, tokFiles } from './testing.js';

const tmp = tempDirs('mmsearch-hf-');

/** A recipe around a local model source, with or without LoRA (the fvqa-mini recipe's other fields). */
function recipeWith(source: string, lora: Recipe['model']['lora']): Recipe {
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  return parseRecipe({ ...base, model: { ...base.model, source, lora }, data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, held_out_entities: 2, test_size: 8 } } });
}

/** A trainer-style checkpoint (config.json + F64 model.safetensors) of `m` built from `config`; LoRA B made non-zero so the adapter matters. */
async function checkpointOf(m: PolicyModel, config: Record<string, unknown>): Promise<Map<string, Uint8Array>> {
  const weights = new Map<string, TensorToWrite>();
  const rng = new E.Rng(9);
  for (const [name, p] of m.namedParameters()) {
    const d = Float64Array.from((await p.data()) as ArrayLike<number>);
    if (/lora_B/.test(name)) for (let i = 0; i < d.length; i++) d[i] = rng.normal() * 0.1;
    weights.set(name, { dtype: 'F64', shape: p.shape, data: d as unknown as Float32Array });
  }
  return new Map([
    ['config.json', new TextEncoder().encode(JSON.stringify(config))],
    ['model.safetensors', serializeSafetensors(weights, { format: 'pt' })],
  ]);
}

interface Job { model: string; adapter?: string; golden: string }
type Check = { ok: boolean; max_abs_logit_diff?: number; greedy_ok?: boolean; max_abs_pixel_diff?: number; ids_ok?: boolean; chat_template_ok?: boolean; class?: string };
interface Report { ok: boolean; architecture: string; loaded_class: string; checks: Record<string, Check> }

const jobs: Job[] = [];
let reports: Report[] | null = null;
/** Runs every job in one Python process (one torch import), once. */
function results(): Report[] {
  if (reports) return reports;
  const file = join(tmp(), 'jobs.json');
  writeFileSync(file, JSON.stringify(jobs));
  const r = runPython(['scripts/check_hf_compat.py', '--jobs', file]);
  if (!r.stdout.trim().startsWith('[')) throw new Error(`check_hf_compat.py failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  reports = JSON.parse(r.stdout) as Report[];
  return reports;
}

describe('exports load in transformers / PEFT with the lab\'s outputs', () => {
  const be = new E.CpuBackend();
  const work = tmp();

  test('exports: fixtures of every architecture, tiny-vlm, LoRA adapters (tiny-vlm, Llama)', async () => {
    // Fixtures (no tokenizer): fixed ids, the Idefics3 one around its image tokens.
    const hub = join(work, 'hub');
    for (const repo of writeFixtureHub(hub, 3)) {
      const dir = join(hub, repo.repo, 'resolve/main');
      const config = dec(read(join(dir, 'config.json')));
      const weights = repo.files.has('model.safetensors')
        ? await openSafetensorsBuffer(read(join(dir, 'model.safetensors')))
        : await (await import('../io/safetensors.js')).openShardedSafetensors(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'), async (f) => openSafetensorsBuffer(read(join(dir, f))));
      const out = join(work, repo.repo.replace('/', '_'));
      await writeFiles(out, await exportModelFolder(config, weights, null, be));
      const m = await loadPretrained(config, weights, be);
      writeFileSync(`${out}.golden.json`, JSON.stringify(await goldenOutput(null, m, null, goldenRow(null), 8)));
      m.dispose();
      jobs.push({ model: out, golden: `${out}.golden.json` });
    }
    expect(jobs.length).toBe(4);

    // tiny-vlm: its config and tokenizer, seeded weights, exported as a run's checkpoint.
    const tinyConfig = dec(read(join(root, 'models/tiny-vlm/config.json')));
    const tinyRecipe = recipeWith('models/tiny-vlm', null);
    const tiny = createModel(parseConfig(tinyConfig), be, 11);
    const ckpt = await checkpointOf(tiny, tinyConfig);
    tiny.dispose();
    await writeFiles(join(work, 'tiny-vlm'), await exportModelFiles(tinyRecipe, ckpt, tokFiles, be));
    const tm = await loadCheckpointModel(tinyRecipe, ckpt, be);
    writeFileSync(join(work, 'tiny-vlm.golden.json'), JSON.stringify(await goldenOutput(tinyRecipe, tm, tok, goldenRow(tinyRecipe), 8)));
    tm.dispose();
    jobs.push({ model: join(work, 'tiny-vlm'), golden: join(work, 'tiny-vlm.golden.json') });

    // LoRA adapters: tiny-vlm (Idefics3: AutoPeftModel via auto_mapping) and a Llama fixture (AutoPeftModelForCausalLM).
    const lora = { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: '.*(q_proj|v_proj|down_proj)' };
    const cases: [string, Record<string, unknown>, typeof tok | null][] = [
      ['tiny-vlm', tinyConfig, tok],
      ['llama', dec(read(join(hub, 'fixtures/tiny-llama-sharded/resolve/main/config.json'))), null],
    ];
    for (const [name, config, t] of cases) {
      const recipe = recipeWith(`models/${name}`, lora);
      const m = createModel(parseConfig(config), be, 12);
      applyLora(m, lora, 12);
      const c = await checkpointOf(m, config);
      m.dispose();
      const out = join(work, `${name}-adapter`);
      const files = await exportModelFiles(recipe, c, t ? tokFiles : null, be, { adapter: true, baseModelPath: join(out, 'base') });
      await writeFiles(out, files);
      const adapted = await loadCheckpointModel(recipe, c, be);
      writeFileSync(`${out}.golden.json`, JSON.stringify(await goldenOutput(recipe, adapted, t, goldenRow(recipe), 8)));
      adapted.dispose();
      expect(dec(files.get('adapter_config.json')!).base_model_name_or_path).toBe(join(out, 'base'));
      jobs.push({ model: join(out, 'base'), adapter: out, golden: `${out}.golden.json` });
    }
  }, 300_000);

  test('fixtures: from_pretrained logits within 1e-4, same greedy tokens', () => {
    const r = results().slice(0, 4);
    expect(r.map((x) => x.architecture)).toEqual(['LlamaForCausalLM', 'LlamaForCausalLM', 'Qwen2ForCausalLM', 'Idefics3ForConditionalGeneration']);
    for (const x of r) {
      const c = x.checks.from_pretrained;
      expect(c.max_abs_logit_diff, x.architecture).toBeLessThan(1e-4);
      expect(c.greedy_ok, x.architecture).toBe(true);
      expect(x.ok).toBe(true);
    }
  }, 600_000);

  test('tiny-vlm: logits, AutoTokenizer chat template and ids, AutoProcessor ids and pixel_values within 1e-6', () => {
    const x = results()[4];
    expect(x.loaded_class).toBe('Idefics3ForConditionalGeneration');
    expect(x.checks.from_pretrained.max_abs_logit_diff).toBeLessThan(1e-4);
    expect(x.checks.tokenizer).toMatchObject({ chat_template_ok: true, ids_ok: true });
    expect(x.checks.processor).toMatchObject({ class: 'Idefics3Processor', ids_ok: true });
    expect(x.checks.processor.max_abs_pixel_diff).toBeLessThanOrEqual(1e-6);
    expect(x.ok).toBe(true);
  });

  test('LoRA adapters: PeftModel and the auto class from the adapter folder alone give the adapted logits', () => {
    const [vlm, llama] = results().slice(5);
    for (const x of [vlm, llama]) {
      for (const k of ['peft_model', 'peft_auto']) {
        expect(x.checks[k].max_abs_logit_diff, `${x.architecture} ${k}`).toBeLessThan(1e-4);
        expect(x.checks[k].greedy_ok, `${x.architecture} ${k}`).toBe(true);
      }
    }
    expect(vlm.checks.peft_auto.class).toBe('AutoPeftModel');
    expect(llama.checks.peft_auto.class).toBe('AutoPeftModelForCausalLM');
    expect(vlm.checks.processor.ids_ok).toBe(true);
    // The measured agreement, for docs/interop.md.
    console.info(JSON.stringify(results().map((x) => ({ arch: x.architecture, ...Object.fromEntries(Object.entries(x.checks).map(([k, c]) => [k, c.max_abs_logit_diff ?? c.max_abs_pixel_diff ?? c.ok])) }))));
  });
});
