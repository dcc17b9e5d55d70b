/**
 * The GRPO step inspector, step-through and knobs in headless Chromium (the WebAssembly backend, as
 * the lab picks on a CPU machine), on the smoke recipe: with step-through on, a run stops after exactly
 * one GRPO step, and "One step" takes exactly one more; a search-penalty change applies from the next
 * step and is marked on the charts at that step; the inspector's per-token log-prob change of a step
 * equals a recomputation on the float64 CPU reference backend from the checkpoints before and after
 * that step (read from the lab's IndexedDB). Screenshots go to test-artifacts/.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import * as E from '../src/engine/index.js';
import { loadCheckpointModel } from '../src/rl/checkpoint.js';
import { loadTokenizer } from '../src/models/tokenizer.js';
import { parseRecipe } from '../src/rl/recipe.js';
import { scoreTokens } from '../src/rl/steps.js';
import type { RolloutView } from '../src/lab/runs-store.js';
import { openBrowser, openLab, type LabPage, type TestBrowser } from './browser.js';
import { loadRecipeInLab, smokeRecipe } from './smoke-recipe.js';

let b: TestBrowser;
let tmp: string;
let page: Page;
let lab: LabPage;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mmsearch-lab-inspector-'));
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const points = (title: string) => page.locator(`[data-chart="${title}"]`).getAttribute('data-points').then(Number);

/** Reads a record of the lab's runs database (IndexedDB `mmsearch-runs`) in the page. */
function idbGet<T>(store: string, key: IDBValidKey): Promise<T> {
  return page.evaluate(async ([store, key]) => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('mmsearch-runs');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const value = await new Promise<unknown>((res, rej) => {
      const q = db.transaction(store).objectStore(store).get(key);
      q.onsuccess = () => res(q.result);
      q.onerror = () => rej(q.error);
    });
    db.close();
    // Bytes travel as base64 (Playwright serialises plain JSON).
    const enc = (v: unknown): unknown => {
      if (v instanceof Uint8Array) {
        let s = '';
        for (let i = 0; i < v.length; i += 0x8000) s += String.fromCharCode(...v.subarray(i, i + 0x8000));
        return { base64: btoa(s) };
      }
      return Array.isArray(v) ? v.map(enc) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, enc(x)])) : v;
    };
    return enc(value);
  }, [store, key] as [string, IDBValidKey]) as Promise<T>;
}

type B64 = { base64: string };
const bytes = (b: B64) => new Uint8Array(Buffer.from(b.base64, 'base64'));
const dataUrlBytes = (url: string) => new Uint8Array(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));

/** The run's current checkpoint files. */
async function checkpoint(runId: string): Promise<Map<string, Uint8Array>> {
  const rec = await idbGet<{ files: [string, B64][] }>('checkpoints', runId);
  return new Map(rec.files.map(([name, b]) => [name, bytes(b)]));
}

/** Waits until the run is paused with `steps` GRPO steps charted, then checks that no further step starts. */
async function pausedAfter(steps: number): Promise<void> {
  await page.waitForFunction((n) => Number(document.querySelector('[data-chart="Reward"]')?.getAttribute('data-points')) >= n && document.querySelector('#run-status')?.textContent === 'paused', steps, { timeout: 600_000 });
  await page.waitForTimeout(3000);
  expect(await points('Reward')).toBe(steps);
  expect(await page.textContent('#run-status')).toBe('paused');
}

test('step-through takes one GRPO step at a time; a knob change is marked at its step; the inspector\'s per-token change equals a float64 recomputation', async () => {
  lab = await openLab(b, tmp);
  page = lab.page;
  await page.click('input[name=backend][value=wasm]');
  await page.waitForSelector('#backend-choice:has-text("Runs on")', { timeout: 60_000 });
  const recipe = smokeRecipe({ name: 'fvqa-mini-smoke-inspect' }) as ReturnType<typeof smokeRecipe> & { grpo: Record<string, unknown> };
  recipe.grpo = { ...recipe.grpo, max_steps: 4 };
  await loadRecipeInLab(page, tmp, recipe);

  // Step-through: the run stops after its first GRPO step.
  await lab.tab('train');
  await page.check('#step-through');
  await page.click('#start');
  await pausedAfter(1);
  const runId = (await page.textContent('.train .card-head h2'))!.replace(/^Run /, '');
  const before = await checkpoint(runId);

  // The search penalty goes to 0 and the learning rate up tenfold from the next step (GRPO step 1);
  // "One step" takes exactly that step.
  await page.fill('#knob-search_penalty', '0');
  await page.click('#apply-search_penalty');
  await page.waitForSelector('#knob-note:has-text("search_penalty = 0 from GRPO step 1")');
  await page.fill('#knob-learning_rate', '0.005');
  await page.click('#apply-learning_rate');
  await page.waitForSelector('#knob-note:has-text("learning_rate = 0.005 from GRPO step 1")');
  await page.click('#one-step');
  await pausedAfter(2);
  for (const chart of ['Reward', 'Search ratio']) expect(await page.getAttribute(`[data-chart="${chart}"]`, 'data-marks')).toBe('1,1');
  await page.waitForSelector('.mark-chip:has-text("step 1: search penalty 0")');
  await page.waitForSelector('.mark-chip:has-text("step 1: learning rate 0.005")');
  await lab.shot('train-step-through');
  const after = await checkpoint(runId);

  // The inspector shows step 1 with every trained token's change, scored at the step's search penalty.
  await lab.tab('rollouts');
  await page.waitForSelector('#rollout-step option[value="1"]', { state: 'attached' });
  await page.selectOption('#rollout-step', '1');
  await page.waitForSelector('.tok[data-d]');
  const views = await idbGet<RolloutView[]>('rollouts', [runId, 1]);
  expect(views.length).toBe(4);
  expect(views.every((v) => v.searchPenalty === 0)).toBe(true);
  const shown = views.reduce((n, v) => n + v.tokens.filter((k) => k.d !== undefined).length, 0);
  expect(await page.locator('.tok[data-d]').count()).toBe(shown);
  expect(await page.locator('.traj .tok.ins').count()).toBe(views.reduce((n, v) => n + v.tokens.filter((k) => !k.m).length, 0));
  await lab.shot('inspector');

  // Recompute on the float64 reference: the same tokens scored with the checkpoints before and after step 1.
  const cpu = new E.CpuBackend();
  const r = parseRecipe(recipe);
  const tokJson = (f: string) => JSON.parse(readFileSync(join(import.meta.dirname, '..', 'models/tiny-vlm', f), 'utf8'));
  const tok = loadTokenizer(tokJson('tokenizer.json'), tokJson('tokenizer_config.json'));
  const seqs = views.map((v) => ({
    tokens: v.ids, completion_mask: v.ids.map(() => 1),
    images: [dataUrlBytes(v.image), ...v.turns.flatMap((t) => (t.role === 'tool' ? t.parts.filter((p) => p.type === 'image').map((p) => dataUrlBytes(p.url)) : []))],
  }));
  const score = async (files: Map<string, Uint8Array>) => {
    const model = await loadCheckpointModel(r, files, cpu);
    try {
      return await scoreTokens(model, seqs, { microBatch: 1, padId: tok.specialIds.imEnd, imageSize: 64, temperature: r.grpo.temperature });
    } finally {
      model.dispose();
    }
  };
  const [lp0, lp1] = [await score(before), await score(after)];
  let largest = 0, worst = 0;
  views.forEach((v, n) => v.tokens.forEach((k) => {
    if (k.d === undefined) return;
    const want = lp1[n][k.i] - lp0[n][k.i];
    worst = Math.max(worst, Math.abs(k.d - want), Math.abs(k.lp! - lp0[n][k.i]));
    largest = Math.max(largest, Math.abs(want));
  }));
  console.log(`step 1: largest |Δ log p| ${largest.toExponential(3)}, largest difference from the float64 recomputation ${worst.toExponential(3)}`);
  // The update moved the log-probs well beyond the f32-vs-f64 difference the comparison allows.
  expect(worst).toBeLessThan(2e-5);
  expect(largest).toBeGreaterThan(50 * 2e-5);
  expect(b.errors).toEqual([]);
}, 1_200_000);
