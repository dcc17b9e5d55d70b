/**
 * `npm start`: starts the search proxy (proxy/, config from env vars) and serves the lab with Vite on
 * 127.0.0.1; the page learns the proxy's URL as `import.meta.env.VITE_PROXY_URL`.
 */
import { createServer } from 'vite';
import { configFromEnv } from '../proxy/config.js';
import { startProxy } from '../proxy/server.js';
import { defaultCorpus } from './proxy-corpus.js';

const config = configFromEnv();
const proxy = await startProxy(config, { corpus: defaultCorpus(config) });
process.env.VITE_PROXY_URL = proxy.url;
const server = await createServer({ configFile: new URL('../vite.config.ts', import.meta.url).pathname });
await server.listen();
// Vite may move to another port when 5173 is taken: allow whatever origin it got.
for (const url of server.resolvedUrls?.local ?? []) proxy.allowOrigin(new URL(url).origin);
server.printUrls();
console.log(`  Search proxy: ${proxy.url}`);
console.log('Open the URL above in Chrome (WebGPU, or WebAssembly on the CPU where there is no GPU). Ctrl+C stops the lab.');
