/**
 * Headless Chromium with software WebGPU over the project's Vite dev server: what the browser tests
 * (tests/browser.ts) and the command line's Chromium runtime (runtime.ts) share. Uses Debian's (or the
 * user's) Chromium through playwright-core with the flags of gpu-env.ts; never downloads a browser.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { createServer } from 'vite';
import { CHROMIUM_WEBGPU_FLAGS, findChrome } from './gpu-env.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface LaunchedChromium {
  /** Base URL of the dev server (the repository root), e.g. http://127.0.0.1:40123 */
  url: string;
  /** A fresh profile (IndexedDB survives page reloads, not close()). */
  context: BrowserContext;
  /** Closes the browser, the dev server and the profile. */
  close(): Promise<void>;
}

/**
 * Starts Vite on a free loopback port and Chromium with a fresh profile.
 * @param opts.handleSignals let Playwright close the browser on SIGINT/SIGTERM (default true; false when the caller does)
 * @param opts.entries the pages and workers the caller loads (repository paths): Vite then pre-bundles
 *   only their dependencies, into a private cache removed on close, so that dev servers started at the
 *   same time (tests, other runs) cannot rewrite the shared node_modules/.vite under this one's pages
 * @throws Error naming what to install when no browser exists
 */
export async function launchChromium(opts: { handleSignals?: boolean; entries?: string[] } = {}): Promise<LaunchedChromium> {
  const executablePath = findChrome();
  const cacheDir = opts.entries ? mkdtempSync(join(tmpdir(), 'mmsearch-vite-')) : undefined;
  const server = await createServer({
    root: ROOT,
    configFile: join(ROOT, 'vite.config.ts'),
    server: { port: 0, host: '127.0.0.1', strictPort: false, hmr: false },
    logLevel: 'error',
    ...(opts.entries && { cacheDir, optimizeDeps: { entries: opts.entries } }),
  });
  await server.listen();
  const addr = server.httpServer?.address();
  // Vite's dependency optimiser may still be writing into the cache as the server closes (ENOTEMPTY):
  // retry, and leave a temporary folder behind rather than fail the caller over it.
  const removeCache = () => {
    try {
      if (cacheDir) rmSync(cacheDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (e) {
      console.warn(`could not remove the temporary Vite cache ${cacheDir}: ${(e as Error).message}`);
    }
  };
  if (!addr || typeof addr === 'string') {
    await server.close();
    removeCache();
    throw new Error('vite dev server did not report a port');
  }
  const userDataDir = mkdtempSync(join(tmpdir(), 'mmsearch-chromium-'));
  const handleSignals = opts.handleSignals ?? true;
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_WEBGPU_FLAGS,
      handleSIGINT: handleSignals,
      handleSIGTERM: handleSignals,
    });
  } catch (e) {
    await server.close();
    removeCache();
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
  // Chromium asks every origin for /favicon.ico; answer it so that a 404 in the console is a real one.
  await context.route('**/favicon.ico', (route) => route.fulfill({ status: 204, body: '' }));
  return {
    url: `http://127.0.0.1:${addr.port}`,
    context,
    async close() {
      await context.close();
      await server.close();
      removeCache();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
