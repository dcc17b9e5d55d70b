/**
 * `npm run proxy`: the search proxy alone (configuration from PROXY_CONFIG and env vars, see
 * proxy/config.ts). Prints its URL; Ctrl+C stops it.
 */
import { configFromEnv } from '../proxy/config.js';
import { startProxy } from '../proxy/server.js';
import { defaultCorpus } from './proxy-corpus.js';

const config = configFromEnv();
const proxy = await startProxy(config, { corpus: defaultCorpus(config) });
const health = (await proxy.app.inject({ method: 'GET', url: '/api/health' })).json() as { image: { detail: string }; text: { detail: string } };
console.log(`search proxy on ${proxy.url} (image: ${proxy.config.imageBackend}, text: ${proxy.config.textBackend})`);
console.log(`  image backend: ${health.image.detail}\n  text backend: ${health.text.detail}`);
console.log(`  origins allowed: ${proxy.config.origins.join(', ')}`);
process.on('SIGINT', () => void proxy.close().then(() => process.exit(0)));
