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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { CHROMIUM_WEBGPU_FLAGS, findChrome } from '../scripts/gpu-env.js';

export interface TestBrowser {
  /** Base URL of the dev server, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Opens a new page at `path` (relative to the repo root) and waits for it to load. */
  page(path: string): Promise<Page>;
  /** Console errors and uncaught page errors seen so far, as text. */
  errors: string[];
  close(): Promise<void>;
}

/** Starts Vite + headless Chromium. @throws Error naming what to install when no browser exists. */
export async function openBrowser(): Promise<TestBrowser> {
  const executablePath = findChrome();
  const server: ViteDevServer = await createServer({
    configFile: join(import.meta.dirname, '..', 'vite.config.ts'),
    server: { port: 0, host: '127.0.0.1', strictPort: false, hmr: false },
    logLevel: 'error',
  });
  await server.listen();
  const addr = server.httpServer?.address();
  if (!addr || typeof addr === 'string') throw new Error('vite dev server did not report a port');
  const url = `http://127.0.0.1:${addr.port}`;
  const userDataDir = mkdtempSync(join(tmpdir(), 'mmsearch-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_WEBGPU_FLAGS,
  });
  // Chromium asks every origin for /favicon.ico; answer it so that 404s in `errors` are real ones.
  await context.route('**/favicon.ico', (route) => route.fulfill({ status: 204, body: '' }));
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
      await page.goto(url + path);
      return page;
    },
    async close() {
      await context.close();
      await server.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
