/**
 * The lab in headless Chromium (software WebGPU): Setup with the smoke recipe (tests/smoke-recipe.ts) and a generated
 * FVQA-mini; a run (SFT -> 2 GRPO steps -> evaluation) in the trainer worker with live charts; a page
 * reload mid-run and the resume from the IndexedDB checkpoint; the rollout inspector; the three-mode
 * evaluation; chat through the in-worker engine and through the running search proxy; Storage listing
 * and deleting; no console errors. Screenshots of every view go to test-artifacts/.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startProxy, type Proxy } from '../proxy/server.js';
import { generateFvqaMini } from '../src/data/fvqa-mini.js';
import { openBrowser, openLab, type LabPage, type TestBrowser } from './browser.js';
import { loadRecipeInLab, smokeRecipe } from './smoke-recipe.js';

let b: TestBrowser;
let proxy: Proxy;
let cacheDir: string;
let page: Page;
let lab: LabPage;

beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'mmsearch-lab-proxy-'));
  // The proxy serves the smoke recipe's world (the same corpus the in-worker engine indexes).
  const world = generateFvqaMini({ seed: 1, entities: 16, heldOutEntities: 2, testSize: 8 });
  proxy = await startProxy({ port: 0, cacheDir }, { corpus: world.corpus });
  process.env.VITE_PROXY_URL = proxy.url;
  b = await openBrowser();
  proxy.allowOrigin(b.url);
});
afterAll(async () => {
  await b?.close();
  await proxy?.close();
  delete process.env.VITE_PROXY_URL;
  rmSync(cacheDir, { recursive: true, force: true });
});

const chartPoints = (title: string) => page.locator(`[data-chart="${title}"]`).getAttribute('data-points').then(Number);

test('the lab: setup, train, reload and resume, rollouts, evaluate, chat, storage', async () => {
  lab = await openLab(b, cacheDir);
  page = lab.page;
  await page.waitForSelector('#proxy-status:has-text("proxy at")');

  // Setup: the smoke recipe, a small FVQA-mini in the dataset store.
  // With a two-step captioning stage first (its progress bar and charts), name copies included.
  await loadRecipeInLab(page, cacheDir, smokeRecipe({ caption: { max_steps: 2, per_device_train_batch_size: 2, eval_steps: 2, eval_looks: 2, name_copies: 2 } }));
  // On WebGPU (software here), so that the reload below interrupts the run: on WebAssembly, which
  // "auto" may pick, the smoke run finishes before the first GRPO step is charted.
  await page.click('input[name=backend][value=webgpu]');
  await page.waitForSelector('#backend-choice:has-text("Runs on")', { timeout: 60_000 });
  await page.click('#generate-dataset');
  await page.waitForSelector('#dataset-status:has-text("stored")', { timeout: 60_000 });
  await lab.shot('setup');

  // Train until the first GRPO step is charted and checkpointed, then reload the page mid-run.
  await lab.tab('train');
  await page.click('#start');
  await page.waitForFunction(() => Number(document.querySelector('[data-chart="SFT loss"]')?.getAttribute('data-points')) >= 2, null, { timeout: 300_000 });
  await page.waitForFunction(() => Number(document.querySelector('[data-chart="Reward"]')?.getAttribute('data-points')) >= 1, null, { timeout: 300_000 });
  expect(await chartPoints('Search ratio')).toBeGreaterThanOrEqual(1);
  await lab.shot('train-running');
  await page.reload();

  // The reload offers the interrupted run; resuming continues from its checkpoint to the end.
  await page.waitForSelector('#resume-offer', { timeout: 30_000 });
  await page.click('#resume-stored');
  await page.waitForSelector('#run-status:has-text("done")', { timeout: 600_000 });
  // The worker's restore reports where it picked the run up: after SFT or a GRPO step (grpo), or after the last one (eval).
  expect(await page.textContent("#train-log")).toMatch(/resumed at (grpo|eval)/);
  // 2 GRPO steps, each charted once: a step the reload interrupted after its metrics but before its
  // checkpoint is run again, and its first metrics were dropped on resume.
  expect(await chartPoints('Reward')).toBe(2);
  const sftSteps = await chartPoints('SFT loss');
  expect(sftSteps).toBeGreaterThanOrEqual(2);
  // The captioning stage ran first: two steps charted, one read-back of unseen looks and of unseen names at its end.
  expect(await chartPoints('Caption loss')).toBe(2);
  expect(await chartPoints('Unseen looks read right (%)')).toBe(1);
  expect(await chartPoints('Unseen names copied (%)')).toBe(1);
  expect(await page.textContent('[data-phase=caption]')).toContain('Captioning');
  await lab.shot('train-done');

  // Step inspector: groups of 2 trajectories, every assistant turn labelled with its tool call.
  await lab.tab('rollouts');
  await page.waitForSelector('.traj', { timeout: 30_000 });
  expect(await page.locator('.group').first().locator('.traj').count()).toBe(2);
  const showTurns = page.locator('.traj button:has-text("turns with tool results")');
  while (await showTurns.count()) await showTurns.first().click();
  const calls = await page.locator('.turn.assistant .call').allTextContents();
  expect(calls.length).toBeGreaterThan(0);
  expect(calls.every((c) => ['image_search', 'text_search', 'answer', 'none'].includes(c))).toBe(true);
  await lab.shot('rollouts');

  // Evaluate the trained checkpoint in the three modes on 4 test rows.
  await lab.tab('evaluate');
  await page.selectOption('#eval-model', await lab.optionFor('#eval-model', 'fvqa-mini-smoke-'));
  await page.fill('.evaluate input[type=number]', '4');
  await page.dispatchEvent('.evaluate input[type=number]', 'change');
  await page.click('#run-eval');
  await page.waitForSelector('#table1 tbody tr:nth-child(3)', { timeout: 300_000 });
  expect(await page.locator('#table1 tbody tr').count()).toBe(3);
  await lab.shot('evaluate');

  // Chat with the trained checkpoint: the policy's own turns stream in; with "image search first"
  // the search runs through the in-worker engine, then through the running proxy, and its results
  // (thumbnails) come back into the conversation.
  await lab.tab('chat');
  await page.selectOption('#chat-model', await lab.optionFor('#chat-model', 'fvqa-mini-smoke-'));
  // Load is disabled while the first visit's load of the shipped policy runs.
  await page.waitForSelector('#chat-load:not([disabled])', { timeout: 180_000 });
  await page.click('#chat-load');
  // Chat loaded the shipped policy on arrival; Load waited for it, so the trained run, not the shipped policy, is
  // loaded (the wait fails if the line keeps naming the shipped policy).
  await page.waitForSelector('#chat-loaded:has-text("fvqa-mini-smoke-"):has-text("in-worker local engine")', { timeout: 60_000 });
  await page.click('.sample >> nth=0');
  const ask = async () => {
    await page.click('#chat-send');
    await page.waitForSelector('#chat-status:not(:has-text("thinking"))', { timeout: 120_000 });
    expect(await page.locator('#chat-transcript .bubble.assistant').count()).toBeGreaterThan(0);
  };
  await ask();
  // Whether the policy searched on its own depends on its training; the RAG workflow's imposed image search
  // always brings result thumbnails into the conversation.
  const thumbs = () => page.locator('#chat-transcript .bubble.tool img.thumb').count();
  const thumbsBefore = await thumbs();
  await page.check('#chat-rag');
  await ask();
  expect(await thumbs()).toBeGreaterThan(thumbsBefore);
  await lab.shot('chat');
  const misses = async () => ((await (await fetch(`${proxy.url}/api/health`)).json()) as { cache: { misses: number } }).cache.misses;
  const before = await misses();
  await page.check('#chat-proxy');
  await page.click('#chat-load');
  await page.waitForSelector(`#chat-loaded:has-text("proxy ${proxy.url}")`, { timeout: 60_000 });
  await ask();
  expect(await page.locator('#chat-transcript .bubble.tool img.thumb').count()).toBe(2);
  expect(await misses()).toBeGreaterThan(before);

  // Storage: datasets and the run are listed; a dataset is deleted after confirmation.
  await lab.tab('storage');
  await page.waitForSelector('[data-dataset="fvqa-mini-train"]');
  await page.waitForSelector('#runs-table [data-run]');
  await lab.shot('storage');
  // The stored history has one row per step: SFT 0..n-1 (n as charted) and GRPO 0, 1.
  const runId = (await page.getAttribute('#runs-table [data-run]', 'data-run'))!;
  const [jsonl] = await Promise.all([page.waitForEvent('download'), page.click(`[data-export-jsonl="${runId}"]`)]);
  const rows = readFileSync((await jsonl.path())!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { phase: string; step: number });
  expect(rows.filter((r) => r.phase === 'sft').map((r) => r.step)).toEqual([...Array(sftSteps).keys()]);
  expect(rows.filter((r) => r.phase === 'grpo').map((r) => r.step)).toEqual([0, 1]);
  await page.click('[data-delete="fvqa-mini-heldout"]');
  await page.click('[data-confirm="fvqa-mini-heldout"]');
  await page.waitForSelector('[data-dataset="fvqa-mini-heldout"]', { state: 'detached' });
  expect(await page.locator('[data-dataset]').count()).toBe(3);

  expect(b.errors).toEqual([]);
}, 1_200_000);
