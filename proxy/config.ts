/**
 * Proxy configuration: defaults < JSON config file (`PROXY_CONFIG`) < environment variables.
 * Keys (SERPAPI_KEY, SUMMARY_KEY) stay on the server; /api/health reports only whether a
 * backend is configured and reachable.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const list = z.union([z.array(z.string()), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))]);
const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

/** Every setting, with its environment variable in the comment. */
export const ProxyConfigSchema = z.object({
  host: z.string().default('127.0.0.1'), // PROXY_HOST
  port: int(8787, 0, 65535), // PROXY_PORT (0 = any free port)
  origins: list.default(['http://127.0.0.1:5173', 'http://localhost:5173']), // PROXY_ORIGINS, comma-separated
  imageBackend: z.enum(['local', 'serpapi']).default('local'), // SEARCH_IMAGE_BACKEND
  textBackend: z.enum(['local', 'serpapi', 'searxng', 'wikipedia']).default('local'), // SEARCH_TEXT_BACKEND
  corpusDir: z.string().default(''), // LOCAL_CORPUS_DIR (pages.jsonl, images.jsonl, images/)
  clipModel: z.string().default(''), // LOCAL_CLIP_MODEL: folder of a CLIP model for @huggingface/transformers
  serpapiUrl: z.string().url().default('https://serpapi.com'), // SERPAPI_URL
  serpapiKey: z.string().default(''), // SERPAPI_KEY
  searxngUrl: z.string().default(''), // SEARXNG_URL
  wikipediaUrl: z.string().url().default('https://en.wikipedia.org'), // WIKIPEDIA_URL
  readerUrl: z.string().default(''), // READER_URL, e.g. https://r.jina.ai/
  summaryUrl: z.string().default(''), // SUMMARY_URL: OpenAI-compatible base, e.g. http://127.0.0.1:8000/v1
  summaryKey: z.string().default(''), // SUMMARY_KEY
  summaryModel: z.string().default('gpt-4o-mini'), // SUMMARY_MODEL
  summarySentences: int(5, 1, 20), // SUMMARY_SENTENCES
  cacheDir: z.string().default('.cache/search-proxy'), // CACHE_DIR ('' = memory only)
  cacheEntries: int(2000, 1, 1_000_000), // CACHE_ENTRIES
  rateLimit: int(600, 1, 1_000_000), // RATE_LIMIT: requests per client per minute
  upstreamTimeoutMs: int(15000, 1, 120_000), // UPSTREAM_TIMEOUT_MS
  fetchTimeoutMs: int(8000, 1, 120_000), // FETCH_TIMEOUT_MS: page fetch for summaries
  fetchMaxBytes: int(2 * 1024 * 1024, 1024, 64 * 1024 * 1024), // FETCH_MAX_BYTES
  fetchAllowHosts: list.default([]), // FETCH_ALLOW_HOSTS: host:port exempt from SSRF checks (tests only)
  maxImageBytes: int(8 * 1024 * 1024, 1024, 64 * 1024 * 1024), // MAX_IMAGE_BYTES
  maxImagePixels: int(40_000_000, 1, 400_000_000), // MAX_IMAGE_PIXELS
});

export type ProxyConfig = z.infer<typeof ProxyConfigSchema>;
export type ProxyConfigInput = z.input<typeof ProxyConfigSchema>;

const ENV: Record<string, keyof ProxyConfig> = {
  PROXY_HOST: 'host', PROXY_PORT: 'port', PROXY_ORIGINS: 'origins',
  SEARCH_IMAGE_BACKEND: 'imageBackend', SEARCH_TEXT_BACKEND: 'textBackend',
  LOCAL_CORPUS_DIR: 'corpusDir', LOCAL_CLIP_MODEL: 'clipModel',
  SERPAPI_URL: 'serpapiUrl', SERPAPI_KEY: 'serpapiKey', SEARXNG_URL: 'searxngUrl', WIKIPEDIA_URL: 'wikipediaUrl',
  READER_URL: 'readerUrl', SUMMARY_URL: 'summaryUrl', SUMMARY_KEY: 'summaryKey', SUMMARY_MODEL: 'summaryModel',
  SUMMARY_SENTENCES: 'summarySentences', CACHE_DIR: 'cacheDir', CACHE_ENTRIES: 'cacheEntries', RATE_LIMIT: 'rateLimit',
  UPSTREAM_TIMEOUT_MS: 'upstreamTimeoutMs', FETCH_TIMEOUT_MS: 'fetchTimeoutMs', FETCH_MAX_BYTES: 'fetchMaxBytes',
  FETCH_ALLOW_HOSTS: 'fetchAllowHosts', MAX_IMAGE_BYTES: 'maxImageBytes', MAX_IMAGE_PIXELS: 'maxImagePixels',
};

/**
 * Validates settings and fills defaults; checks that each chosen web backend has what it needs.
 * @throws Error listing every invalid setting.
 */
export function resolveConfig(input: ProxyConfigInput = {}): ProxyConfig {
  const parsed = ProxyConfigSchema.safeParse(input);
  if (!parsed.success) throw new Error('proxy config: ' + parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const c = parsed.data;
  const usesSerp = c.imageBackend === 'serpapi' || c.textBackend === 'serpapi';
  if (usesSerp && !c.serpapiKey) throw new Error('proxy config: serpapi backend chosen but SERPAPI_KEY is empty');
  if (c.textBackend === 'searxng' && !c.searxngUrl) throw new Error('proxy config: searxng backend chosen but SEARXNG_URL is empty');
  return c;
}

/** Reads the config file named by PROXY_CONFIG (if any), then the environment variables above. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  const file = env.PROXY_CONFIG ? (JSON.parse(readFileSync(env.PROXY_CONFIG, 'utf8')) as ProxyConfigInput) : {};
  const fromEnv: Record<string, string> = {};
  for (const [name, key] of Object.entries(ENV)) if (env[name] !== undefined) fromEnv[key] = env[name]!;
  return resolveConfig({ ...file, ...fromEnv } as ProxyConfigInput);
}
