/**
 * Test harness for code that must run in a real browser: starts the project's Vite dev server on a
 * free loopback port and drives Debian's (or the user's) Chromium headless through playwright-core,
 * with the flags that give software WebGPU (SwiftShader). Never downloads a browser.
 *
 * Usage in a vitest file:
 *   const b = await openBrowser();               // beforeAll
 *   const page = await b.page('/tests/pages/x.html');
 *   const result = await page.evaluate(() => (window as any).run());
 *   await b.close();                             // afterAll
 * Console errors and page errors are collected in `b.errors` so tests can assert there were none.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchChromium } from '../scripts/chromium/launch.js';

export interface TestBrowser {
  /** Base URL of the dev server, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Opens a new page at `path` (relative to the repo root) and waits for it to load. */
  page(path: string): Promise<Page>;
  /** Console errors and uncaught page errors seen so far, as text. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * The pages and workers browser tests load: each test file's Vite pre-bundles their dependencies into
 * its own cache, so test files running in parallel (the lab, the benchmark page with its peers) cannot
 * re-optimise the shared cache under each other's pages (a lazily imported module then fails to load).
 */
const TEST_ENTRIES = ['index.html', 'workers/*.ts', 'tests/pages/*.html', 'bench/page.html'];

/** Starts Vite + headless Chromium. @throws Error naming what to install when no browser exists. */
export async function openBrowser(): Promise<TestBrowser> {
  const { url, context, close } = await launchChromium({ entries: TEST_ENTRIES });
  const errors: string[] = [];
  return {
    url,
    errors,
    async page(path: string) {
      const page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console.error on ${path}: ${m.text()}`);
      });
      page.on('pageerror', (e) => errors.push(`page error on ${path}: ${e.message}`));
      // A first load transforms every module cold: it can take over 30 s on a busy 2-core machine.
      await page.goto(url + path, { timeout: 120_000 });
      return page;
    },
    close,
  };
}

/** Where UI tests write their screenshots. */
export const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');

/** The lab's page in a UI test, with the helpers every lab test uses. */
export interface LabPage {
  page: Page;
  /** Full-page screenshot to test-artifacts/lab-NAME.png. */
  shot(name: string): Promise<void>;
  /** Switches to the view with tab id `id` and waits for it. */
  tab(id: string): Promise<void>;
  /** Clicks `selector`, saves the download it starts in `downloads` (openLab's), returns the file's path. */
  downloadFrom(selector: string): Promise<string>;
  /** The value of the option of `select` whose label starts with `prefix`, waiting for it (model pickers list the
   *  stored runs once IndexedDB answers, after the shipped ones are already there). */
  optionFor(select: string, prefix: string): Promise<string>;
}

/** Opens the lab (/) at 1400x900 and waits until it shows its WebGPU adapter. */
export async function openLab(b: TestBrowser, downloads: string): Promise<LabPage> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const page = await b.page('/');
  await page.setViewportSize({ width: 1400, height: 900 });
  await page.waitForSelector('#adapter-name', { timeout: 60_000 });
  return {
    page,
    shot: async (name) => void (await page.screenshot({ path: join(ARTIFACTS, `lab-${name}.png`), fullPage: true })),
    async tab(id) {
      await page.click(`[data-tab=${id}]`);
      await page.waitForSelector(`.view.${id}`);
    },
    async downloadFrom(selector) {
      const [d] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click(selector)]);
      const path = join(downloads, d.suggestedFilename());
      await d.saveAs(path);
      return path;
    },
    async optionFor(select, prefix) {
      const found = await page.waitForFunction(([sel, p]) => [...document.querySelectorAll<HTMLOptionElement>(`${sel} option`)].find((o) => o.text.startsWith(p))?.value, [select, prefix] as const, { timeout: 30_000 });
      return (await found.jsonValue())!;
    },
  };
}
