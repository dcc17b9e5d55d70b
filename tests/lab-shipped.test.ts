/**
 * The lab's first visit with the shipped checkpoints (checkpoints/fvqa-mini/{warm-start,grpo}, issue
 * 16) in headless Chromium: Chat opens with the GRPO-trained policy loaded and, greedy, gives the
 * answers and search calls its manifest records for fixed test rows (scripts/ship-checkpoint.ts
 * evaluated them in Node): a familiar creature answered without search, an unfamiliar one after image
 * search then text search, and sampled 16 times each mostly the same way; Evaluate offers the same policy; the "Watch GRPO learn when to search"
 * preset is chosen and its run starts at GRPO step 0 from the shipped warm start. Skipped when this
 * checkout ships no checkpoints. Screenshots go to test-artifacts/.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { generateFvqaMini } from '../src/data/fvqa-mini.js';
import { fvqaMiniConfig, loadStoredRecipe } from '../src/rl/recipe.js';
import { openBrowser, openLab, type TestBrowser } from './browser.js';

const root = join(import.meta.dirname, '..');
const GRPO = join(root, 'checkpoints/fvqa-mini/grpo');
const WARM = join(root, 'checkpoints/fvqa-mini/warm-start');

interface CheckRow {
  data_id: string;
  question: string;
  answer: string | null;
  image_searches: number;
  text_searches: number;
}
const manifest = existsSync(join(GRPO, 'manifest.json')) ? (JSON.parse(readFileSync(join(GRPO, 'manifest.json'), 'utf8')) as { checks?: { rows: CheckRow[] } }) : null;
const shipped = !!manifest?.checks && existsSync(join(WARM, 'manifest.json'));

let b: TestBrowser;
let tmp: string;
beforeAll(async () => {
  if (!shipped) return;
  tmp = mkdtempSync(join(tmpdir(), 'mmsearch-lab-shipped-'));
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Clicks "Sample its decision" and reads the summary: searches, answer counts, each answer with its right/wrong mark. */
async function sampledDecision(page: import('playwright-core').Page) {
  await page.click('#chat-sample');
  await page.waitForSelector('#chat-decisions', { timeout: 300_000 });
  const text = (await page.textContent('#chat-decisions'))!;
  const answers = await page.$$eval('#chat-decisions p.muted span', (spans) => spans.map((s) => ({ text: s.textContent!.replace(/^, /, ''), mark: s.className })));
  const parsed = answers.map((a) => ({ answer: a.text.replace(/ ×\d+( [✓✗])?$/, ''), count: Number(/×(\d+)/.exec(a.text)![1]), mark: a.mark }));
  return { text, searched: Number(/searched (\d+)/.exec(text)![1]), counts: parsed.map((a) => a.count), answers: parsed };
}

test.skipIf(!shipped)('first visit: Chat and Evaluate on the shipped policy, the Watch preset from the shipped warm start', async () => {
  const lab = await openLab(b, tmp);
  const page = lab.page;
  const recipe = loadStoredRecipe(readFileSync(join(GRPO, 'recipe.json'), 'utf8'), 'recipe.json');
  const world = generateFvqaMini(fvqaMiniConfig(recipe));
  const rows = manifest!.checks!.rows;
  const familiar = rows.find((r) => r.image_searches === 0 && r.text_searches === 0);
  const unfamiliar = rows.find((r) => r.image_searches === 1 && r.text_searches === 1);
  expect(familiar && unfamiliar, 'the manifest checks a row answered from memory and one after image then text search').toBeTruthy();

  // Chat: the trained policy is loaded on arrival; each check row's image and question give the recorded calls and answer.
  await lab.tab('chat');
  await page.waitForSelector('#chat-loaded:has-text("shipped fvqa-mini/grpo")', { timeout: 120_000 });
  /** Asks a check row's question about its image and expects the calls and answer the manifest records. */
  const ask = async (check: CheckRow) => {
    const row = world.splits.test.find((r) => r.data_id === check.data_id)!;
    const image = join(tmp, `${check.data_id}.png`);
    writeFileSync(image, row.images[0].bytes);
    await page.setInputFiles('.chat input[type=file]', image);
    await page.fill('#chat-question', check.question);
    await page.click('#chat-send');
    await page.waitForSelector('#chat-status:not(:has-text("thinking"))', { timeout: 180_000 });
    const calls = await page.locator('#chat-transcript .bubble.assistant .call').allTextContents();
    const want = [...Array(check.image_searches).fill('image_search'), ...Array(check.text_searches).fill('text_search'), 'answer'];
    expect(calls.map((c) => c.replace(/:.*/, ''))).toEqual(want);
    expect(await page.textContent('#chat-status')).toBe(`answer: ${check.answer}`);
  };
  for (const check of [familiar!, unfamiliar!]) {
    await ask(check);
    await lab.shot(`chat-shipped-${check.image_searches ? 'search' : 'memory'}`);

    // Sampled at the GRPO temperature, the decision leans the greedy way: the shipped run's sampled search
    // ratios end near 0.1 (search_free) and 1.0 (search_required), so 16 samples fall well inside these bounds.
    const d = await sampledDecision(page);
    expect(d.counts.reduce((a, c) => a + c, 0)).toBe(16);
    if (check.image_searches) expect(d.searched).toBeGreaterThanOrEqual(12);
    else expect(d.searched).toBeLessThanOrEqual(8);
    expect(d.text).toContain(`at temperature ${recipe.grpo.temperature}`);
  }

  // A dataset sample carries its answer: each sampled answer is marked right exactly when it is that answer.
  await page.click('.samples .sample >> nth=0');
  // The last conversation and sampled decision were about another question: a new pick clears them.
  expect(await page.locator('#chat-decisions, #chat-transcript .bubble').count()).toBe(0);
  const want = (await page.textContent('.chat p.muted:has-text("dataset answer") b'))!;
  const d = await sampledDecision(page);
  for (const a of d.answers) expect(a.mark).toBe(a.answer === want ? 'right' : 'wrong');
  await lab.shot('chat-shipped-sampled');

  // Evaluate offers the trained policy first.
  await lab.tab('evaluate');
  expect(await page.locator('#eval-model option:checked').textContent()).toContain('shipped: fvqa-mini/grpo');

  // The Watch preset is the lab's recipe; its run starts from the warm start at GRPO step 0.
  await lab.tab('setup');
  await page.waitForSelector('#init-from:has-text("checkpoints/fvqa-mini/warm-start")');
  await lab.tab('train');
  await page.check('#step-through');
  await page.click('#start');
  // Paused after the first step, or an error (e.g. a warm start of another recipe) at once.
  await page.waitForSelector('#run-status:has-text("paused"), .notice.error', { timeout: 600_000 });
  expect(await page.locator('.notice.error').allTextContents()).toEqual([]);
  expect(await page.textContent('#train-log')).toMatch(/resumed at grpo, (caption step \d+, )?SFT step \d+, GRPO step 0/);
  expect(await page.locator('[data-chart="Search ratio"]').getAttribute('data-points')).toBe('1');
  await lab.shot('watch-first-step');
  expect(b.errors).toEqual([]);
}, 1_200_000);

test.skipIf(!shipped)('the inference worker Chat and Evaluate share: each call uses the model it names, a load waits for the calls before it, sampled decisions refuse bad requests', async () => {
  const recipe = loadStoredRecipe(readFileSync(join(GRPO, 'recipe.json'), 'utf8'), 'recipe.json');
  const world = generateFvqaMini(fvqaMiniConfig(recipe));
  // A row the two shipped policies answer differently (their manifests): the GRPO policy searches, the warm start answers from memory.
  const warm = JSON.parse(readFileSync(join(WARM, 'manifest.json'), 'utf8')) as { checks: { rows: CheckRow[] } };
  const check = manifest!.checks!.rows.find((r) => r.image_searches === 1 && warm.checks.rows.find((w) => w.data_id === r.data_id)?.image_searches === 0)!;
  expect(check, 'a check row the shipped policies decide differently').toBeTruthy();
  const row = world.splits.test.find((r) => r.data_id === check.data_id)!;
  const page = await b.page('/tests/pages/inference.html');
  await page.waitForFunction(() => 'interleaved' in window);
  const r = (await page.evaluate((a) => (window as unknown as { interleaved: (x: unknown) => Promise<unknown> }).interleaved({ image: new Uint8Array(a.image), question: a.question }),
    { image: [...row.images[0].bytes], question: check.question })) as { chat: { answer: string | null; turns: string[] }; label: string; grpoLabel: string; warmStartKey: string };
  // The warm start was loaded last before the chat, yet the chat and the evaluation ran on the GRPO policy they named.
  expect(r.chat.answer).toBe(check.answer);
  expect(r.chat.turns).toHaveLength(check.image_searches + check.text_searches + 1);
  expect(r.label).toBe(r.grpoLabel);
  // sampleDecisions refuses a sample count outside 1-64 or a negative temperature, naming the value, before it looks
  // for the model (the refused requests name none that could load); a valid request for no loaded model is refused
  // naming the key; a valid request after them is answered.
  const unknown = 'no such model';
  const refusals = await page.evaluate((a) => (window as unknown as { sampleRefusals: (x: unknown) => Promise<(string | null)[]> }).sampleRefusals({ ...a, image: new Uint8Array(a.image) }), {
    model: r.warmStartKey, image: [...row.images[0].bytes], question: check.question,
    reqs: [{ model: unknown, samples: 0 }, { model: unknown, samples: 65 }, { model: unknown, samples: 2.5 }, { model: unknown, samples: 2, temperature: -0.5 }, { model: unknown, samples: 1 }, { samples: 1 }],
  });
  expect(refusals).toEqual([
    'samples must be a whole number from 1 to 64, got 0', 'samples must be a whole number from 1 to 64, got 65',
    'samples must be a whole number from 1 to 64, got 2.5', 'temperature must be >= 0, got -0.5',
    'unknown model "no such model": pass the key that load() returned', null,
  ]);
  expect(b.errors).toEqual([]);
  await page.close();
}, 600_000);
