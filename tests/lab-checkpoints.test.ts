/**
 * The lab's checkpoints in headless Chromium (software WebGPU): a smoke run stopped after its
 * 15th SFT step is exported from Storage as a Hugging Face model ZIP, imported back as a stored
 * checkpoint, and both give the same greedy chat output and the same Table 1 when compared side by
 * side in Evaluate. A LoRA run chats with its adapter attached, gives the same output as its merged
 * export, and exports as a PEFT adapter. Screenshots go to test-artifacts/.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { readZip } from '../src/export/zip.js';
import { openSafetensorsBuffer } from '../src/io/safetensors.js';
import { openBrowser, openLab, type LabPage, type TestBrowser } from './browser.js';
import { loadRecipeInLab, smokeRecipe } from './smoke-recipe.js';

let b: TestBrowser;
let page: Page;
let lab: LabPage;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mmsearch-lab-ckpt-'));
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Label prefix of run `id` in the model pickers (`<id> · ...`); the untrained model's is `fresh `. */
const runLabel = (id: string) => `${id} ·`;

/** Starts a run of the current recipe, stops it after `steps` SFT steps or more (stop writes a checkpoint); returns its id. */
async function trainSft(steps: number): Promise<string> {
  await lab.tab('train');
  await page.click('#start');
  await page.waitForFunction((n) => Number(document.querySelector('[data-chart="SFT loss"]')?.getAttribute('data-points')) >= n, steps, { timeout: 180_000 });
  await page.click('#stop');
  await page.waitForSelector('#run-status:has-text("stopped")', { timeout: 120_000 });
  return (await page.textContent('.train .card-head h2'))!.replace(/^Run /, '');
}

/**
 * Loads the model whose picker label starts with `label` in Chat and asks the first sample's question
 * at `temperature` (0: greedy; else sampled with the chat's fixed seed); returns transcript and status.
 */
async function chatWith(label: string, temperature: number, expectLoaded?: RegExp): Promise<{ transcript: string; status: string }> {
  await lab.tab('chat');
  // Chat loads the shipped policy on the first visit: let that finish, so the change awaited below is ours.
  await page.waitForFunction(() => !!document.querySelector('#chat-loaded')?.textContent, null, { timeout: 120_000 });
  await page.selectOption('#chat-model', await lab.optionFor('#chat-model', label));
  const before = await page.evaluate(() => document.querySelector('#chat-loaded')?.textContent ?? null);
  await page.click('#chat-load');
  await page.waitForFunction((old) => {
    const t = document.querySelector('#chat-loaded')?.textContent;
    return !!t && t !== old;
  }, before, { timeout: 120_000 });
  if (expectLoaded) expect(await page.textContent('#chat-loaded')).toMatch(expectLoaded);
  await page.click('.sample >> nth=0');
  await page.locator('.chat input[type=range]').evaluate((el: HTMLInputElement, t) => {
    el.value = String(t);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, temperature);
  await page.waitForSelector(`.chat label:has-text("temperature ${temperature.toFixed(1)}")`);
  await page.click('#chat-send');
  await page.waitForSelector('#chat-status:not(:has-text("thinking"))', { timeout: 120_000 });
  return { transcript: (await page.textContent('#chat-transcript'))!, status: (await page.textContent('#chat-status'))! };
}

test('export a checkpoint, import it back, identical greedy chat and Table 1; a LoRA run chats with its adapter and exports PEFT files', async () => {
  lab = await openLab(b, tmp);
  page = lab.page;
  await loadRecipeInLab(page, tmp, smokeRecipe());
  const full = await trainSft(15);

  // Export the run as a Hugging Face model folder (one ZIP), then import that ZIP back.
  await lab.tab('storage');
  const zipPath = await lab.downloadFrom(`[data-export-model="${full}"]`);
  const files = readZip(readFileSync(zipPath));
  expect([...files.keys()].sort()).toEqual(['README.md', 'chat_template.json', 'config.json', 'mmsearch_lab_recipe.json', 'model.safetensors', 'preprocessor_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json']);
  expect((await openSafetensorsBuffer(files.get('model.safetensors')!)).names()).toContain('model.text_model.embed_tokens.weight');
  await page.setInputFiles('#import-model', zipPath);
  await page.waitForSelector('#model-import-status:has-text("imported as")', { timeout: 120_000 });
  const imported = /imported as (\S+):/.exec((await page.textContent('#model-import-status'))!)![1];
  await page.waitForSelector(`[data-run="${imported}"]:has-text("imported from")`);
  await lab.shot('storage-import');

  // The same image and question with the run's checkpoint and with the imported copy: greedy, and
  // sampled with the chat's fixed seed (sensitive to any change in the weights).
  for (const t of [0, 1]) {
    const a = await chatWith(runLabel(full), t);
    const c = await chatWith(runLabel(imported), t, /\(imported\)/);
    expect(a.transcript.length).toBeGreaterThan(0);
    await lab.shot(`chat-imported-t${t}`);
    expect(c).toEqual(a);
  }

  // Side by side in Evaluate: both tables and both in the bar chart, with equal numbers.
  await lab.tab('evaluate');
  await page.selectOption('#eval-model', await lab.optionFor('#eval-model', runLabel(full)));
  await page.selectOption('#eval-model-b', await lab.optionFor('#eval-model-b', runLabel(imported)));
  await page.fill('#eval-rows', '2');
  await page.dispatchEvent('#eval-rows', 'change');
  await page.uncheck('.evaluate input[data-mode=rag]');
  await page.uncheck('.evaluate input[data-mode=on_demand]');
  await page.click('#run-eval');
  await page.waitForSelector('#table1 [data-model="2"] tbody tr', { timeout: 180_000 });
  const tables = await page.locator('#table1 .table1-model').evaluateAll((els) => els.map((e) => [...e.querySelectorAll('tbody td')].map((td) => td.textContent)));
  expect(tables.length).toBe(2);
  expect(tables[1]).toEqual(tables[0]);
  expect(await page.locator('#eval-bars .bar-row[data-model="1"]').count()).toBe(1);
  expect(await page.locator('#eval-bars .bar-row[data-model="2"]').count()).toBe(1);
  await lab.shot('evaluate-compare');

  // A LoRA run: the smoke recipe with an adapter on the text model's attention.
  await lab.tab('setup');
  const recipe = JSON.parse(readFileSync(await lab.downloadFrom('button:has-text("Save JSON")'), 'utf8'));
  recipe.name = 'fvqa-mini-smoke-lora';
  recipe.model.lora = { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: '.*text_model.*\\.(q_proj|v_proj)' };
  const recipePath = join(tmp, 'lora-recipe.json');
  writeFileSync(recipePath, JSON.stringify(recipe));
  await page.setInputFiles('.setup input[type=file][accept=".json,application/json"]', recipePath);
  await page.waitForSelector('.card-head h2:has-text("fvqa-mini-smoke-lora")');
  const lora = await trainSft(3);

  // PEFT adapter export: adapter files with trained (non-zero) B matrices, and the base model under base/.
  await lab.tab('storage');
  const peft = readZip(readFileSync(await lab.downloadFrom(`[data-export-adapter="${lora}"]`)));
  expect(JSON.parse(new TextDecoder().decode(peft.get('adapter_config.json')))).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8 });
  const adapter = await openSafetensorsBuffer(peft.get('adapter_model.safetensors')!);
  const bNames = adapter.names().filter((n) => n.endsWith('lora_B.weight'));
  expect(bNames.length).toBe(2);
  expect(bNames.every((n) => n.startsWith('base_model.model.model.text_model.'))).toBe(true);
  expect((await adapter.readF32(bNames[0])).some((v) => v !== 0)).toBe(true);
  expect(peft.has('base/config.json') && peft.has('base/model.safetensors')).toBe(true);

  // Chat uses the adapter: it answers as the merged model exported from the same checkpoint does, and
  // not as the untrained model of this recipe (the same seeded base weights, no adapter).
  const mergedZip = await lab.downloadFrom(`[data-export-model="${lora}"]`);
  await page.setInputFiles('#import-model', mergedZip);
  await page.waitForSelector(`#model-import-status:has-text("imported as ${lora}-model-imported")`, { timeout: 120_000 });
  const merged = /imported as (\S+):/.exec((await page.textContent('#model-import-status'))!)![1];
  const withAdapter = await chatWith(runLabel(lora), 1, /LoRA adapter on 2 modules/);
  await lab.shot('chat-lora');
  expect(await chatWith(runLabel(merged), 1)).toEqual(withAdapter);
  expect(await chatWith('fresh ', 1)).not.toEqual(withAdapter);

  expect(b.errors).toEqual([]);
}, 600_000);
