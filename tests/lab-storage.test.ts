/**
 * The lab's Storage and recovery in headless Chromium (software WebGPU): FVQA parquet and JSONL-folder
 * imports into the dataset store; a run whose GPU device is lost mid-SFT offers to resume from its last
 * checkpoint, resumes on a new device and charts every step once (the metrics of steps after the
 * checkpoint are dropped and re-run); its metrics export as JSONL and CSV. Screenshots go to test-artifacts/.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { generateFvqaMini } from '../src/data/fvqa-mini.js';
import { writeParquetFile } from '../src/data/node-io.js';
import { questionFromUserTurn } from '../src/protocol/prompts.js';
import { openBrowser, openLab, type LabPage, type TestBrowser } from './browser.js';
import { loadRecipeInLab, smokeRecipe } from './smoke-recipe.js';

let b: TestBrowser;
let page: Page;
let lab: LabPage;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mmsearch-lab-storage-'));
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const sftPoints = () => page.locator('[data-chart="SFT loss"]').getAttribute('data-points').then(Number);

test('dataset imports; a lost GPU device mid-run is offered for resuming, and the resumed run charts each step once', async () => {
  lab = await openLab(b, tmp);
  page = lab.page;

  // Datasets: an FVQA parquet file and a JSONL folder with images, as `npm run dataset -- import` takes them.
  const world = generateFvqaMini({ seed: 3, entities: 8, heldOutEntities: 1, testSize: 6 });
  const parquet = join(tmp, 'mini-test.parquet');
  await writeParquetFile(parquet, world.splits.test);
  const folder = join(tmp, 'jsonl-set');
  mkdirSync(join(folder, 'img'), { recursive: true });
  const rows = world.splits.heldout.slice(0, 5);
  rows.forEach((r, i) => writeFileSync(join(folder, 'img', `${i}.png`), r.images[0].bytes));
  writeFileSync(join(folder, 'questions.jsonl'), rows.map((r, i) => JSON.stringify({
    question: questionFromUserTurn(r.prompt.find((m) => m.role === 'user')!.content), images: [`img/${i}.png`], reward_model: r.reward_model, data_source: 'jsonl-test', category: r.category,
  })).join('\n') + '\n');
  await lab.tab('storage');
  await page.setInputFiles('#import-parquet', parquet);
  await page.waitForSelector('#dataset-import-status:has-text("stored mini-test: 6 rows")', { timeout: 60_000 });
  await page.setInputFiles('#import-jsonl', folder);
  await page.waitForSelector('#dataset-import-status:has-text("stored questions: 5 rows")', { timeout: 60_000 });
  expect(await page.textContent('[data-dataset="mini-test"]')).toContain('6');
  expect(await page.textContent('[data-dataset="questions"]')).toContain('jsonl-set/questions.jsonl');
  await lab.shot('storage-datasets');

  // A smoke run with a checkpoint every 4 SFT steps, so that steps after the checkpoint are
  // charted before the device goes.
  await lab.tab('setup');
  // On a software adapter "auto" may measure WebAssembly faster: this test needs a GPU device to lose.
  await page.click('input[name=backend][value=webgpu]');
  await page.waitForSelector('#backend-choice:has-text("Runs on")', { timeout: 60_000 });
  await loadRecipeInLab(page, tmp, smokeRecipe({ name: 'fvqa-mini-smoke-ckpt4', checkpoint_steps: 4 }));
  await lab.tab('train');
  await page.click('#start');
  await page.waitForFunction(() => Number(document.querySelector('[data-chart="SFT loss"]')?.getAttribute('data-points')) >= 6, null, { timeout: 180_000 });
  // The device the run trains on, whenever the worker asked for it: every dispatch creates a bind group
  // on its device. The newest trainer worker is the one training (the page may have replaced one).
  const trainer = page.workers().filter((w) => w.url().includes('trainer.worker')).at(-1)!;
  await trainer.evaluate(() => {
    const g = globalThis as unknown as { lostTestDevices: GPUDevice[] };
    g.lostTestDevices = [];
    const create = GPUDevice.prototype.createBindGroup;
    GPUDevice.prototype.createBindGroup = function (this: GPUDevice, ...args: Parameters<GPUDevice['createBindGroup']>) {
      if (!g.lostTestDevices.includes(this)) g.lostTestDevices.push(this);
      return create.apply(this, args);
    };
  });
  await trainer.evaluate(() => new Promise<void>((done) => {
    const g = globalThis as unknown as { lostTestDevices: GPUDevice[] };
    const poll = setInterval(() => {
      if (!g.lostTestDevices.length) return;
      clearInterval(poll);
      g.lostTestDevices.forEach((d) => d.destroy());
      done();
    }, 20);
  }));
  await page.waitForSelector('#resume-lost', { timeout: 180_000 });
  expect(await page.textContent('#run-error')).toMatch(/GPU device was lost.*Resume the run from its last checkpoint/);
  expect(await page.textContent('#run-status')).toBe('failed');
  const before = await sftPoints();
  await lab.shot('train-device-lost');

  // Resume: a new device, the steps after the checkpoint re-run and charted once.
  await page.click('#resume-lost');
  await page.waitForSelector('#train-log:has-text("resumed at sft")', { timeout: 120_000 });
  const resumedAt = Number(/resumed at sft, SFT step (\d+)/.exec((await page.textContent('#train-log'))!)![1]);
  expect(resumedAt).toBeLessThan(before);
  await page.waitForFunction((n) => Number(document.querySelector('[data-chart="SFT loss"]')?.getAttribute('data-points')) >= n, before + 2, { timeout: 180_000 });
  await page.click('#stop');
  await page.waitForSelector('#run-status:has-text("stopped")', { timeout: 120_000 });
  expect(await trainer.evaluate(() => (globalThis as unknown as { lostTestDevices: GPUDevice[] }).lostTestDevices.length)).toBe(2);
  const charted = await sftPoints();
  await lab.shot('train-resumed');

  // The stored history: one row per SFT step 0..n-1, as JSONL (the CLI's metrics.jsonl) and CSV.
  const runId = (await page.textContent('.train .card-head h2'))!.replace(/^Run /, '');
  await lab.tab('storage');
  const records = readFileSync(await lab.downloadFrom(`[data-export-jsonl="${runId}"]`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { phase: string; step: number; loss: number });
  expect(records.map((r) => r.step)).toEqual([...Array(charted).keys()]);
  expect(records.every((r) => r.phase === 'sft' && Number.isFinite(r.loss))).toBe(true);
  const csv = readFileSync(await lab.downloadFrom(`[data-export-metrics="${runId}"]`), 'utf8').trim().split('\n');
  expect(csv[0].startsWith('phase,step,')).toBe(true);
  expect(csv.length).toBe(charted + 1);

  expect(b.errors).toEqual([]);
}, 400_000);
