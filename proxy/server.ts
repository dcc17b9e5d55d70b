/**
 * The thin search proxy (issue 4): JSON over HTTP on 127.0.0.1, CORS for the lab's origins only.
 *   POST /api/search/image  multipart (file field `image`, field `k`) or JSON {image_base64 | image_url, k}
 *                           -> {results: [{title, url, thumbnail}], backend, cached}
 *   POST /api/search/text   JSON {query, k} -> {results: [{title, url, summary}], backend, cached}
 *   GET  /api/health        -> {ok, image, text, summariser, cache}
 * Errors are JSON `{error, field?, backend?}`: 4xx name the request field, 502 names the failing
 * backend, 504 an upstream timeout, 429 the per-client rate limit.
 */
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { SearchCorpus } from '../src/search/corpus.js';
import { readCorpusDir } from '../src/search/corpus-fs.js';
import { LayoutHashEmbedder, type ImageEmbedder } from '../src/search/embed.js';
import { sniffImage } from '../src/search/image.js';
import { LocalSearchIndex } from '../src/search/local-index.js';
import { RESULTS_PER_SEARCH } from '../src/protocol/tools.js';
import { cacheKey, MAX_K, MAX_QUERY_LENGTH, type ImageQuery } from '../src/search/types.js';
import { LocalBackend } from './backends/local.js';
import type { SearchBackend } from './backends/types.js';
import { SearxngBackend, SerpApiBackend, WikipediaBackend } from './backends/web.js';
import { ResultCache } from './cache.js';
import { resolveConfig, type ProxyConfig, type ProxyConfigInput } from './config.js';
import { badRequest, ProxyError } from './errors.js';
import { SafeFetcher } from './fetcher.js';
import { PageSummariser } from './summariser.js';

/** Things a caller may hand in instead of reading them from the configuration. */
export interface ProxyDeps {
  /** Corpus for the local backend (the synthetic world in memory); overrides `corpusDir`. */
  corpus?: SearchCorpus;
  /** Image embedder for the local backend; overrides `clipModel`. */
  embedder?: ImageEmbedder;
}

/** A built proxy: the Fastify app plus the parts tests and /api/health look at. */
export interface Proxy {
  app: FastifyInstance;
  config: ProxyConfig;
  cache: ResultCache;
  fetcher: SafeFetcher;
  /** Base URL once listening, e.g. http://127.0.0.1:8787 */
  url: string;
  /** Adds an allowed CORS origin (e.g. the dev server's, known only once it listens). */
  allowOrigin(origin: string): void;
  close(): Promise<void>;
}

const kSchema = z.coerce.number({ error: 'must be an integer' }).int('must be an integer').min(1).max(MAX_K).default(RESULTS_PER_SEARCH);
const textBody = z.object({
  query: z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty').max(MAX_QUERY_LENGTH),
  k: kSchema,
});
const imageJsonBody = z.object({
  image_base64: z.string().optional(),
  image_url: z.string().max(2048).optional(),
  k: kSchema,
});

/** zod result -> data, or a 400 naming the first bad field. */
function parseOr400<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('body', 'must be a JSON object');
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw badRequest(String(issue.path[0] ?? 'body'), issue.message);
}

function checkImageUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw badRequest('image_url', 'not a URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw badRequest('image_url', 'only http and https URLs');
  return u.toString();
}

async function buildEmbedder(config: ProxyConfig, deps: ProxyDeps): Promise<ImageEmbedder> {
  if (deps.embedder) return deps.embedder;
  if (!config.clipModel) return new LayoutHashEmbedder();
  const { ClipEmbedder } = await import('./clip.js');
  return ClipEmbedder.load(config.clipModel);
}

async function buildLocal(config: ProxyConfig, deps: ProxyDeps, fetcher: SafeFetcher): Promise<LocalBackend> {
  const corpus = deps.corpus ?? (config.corpusDir ? await readCorpusDir(config.corpusDir) : { pages: [], images: [] });
  const source = deps.corpus ? 'in-memory corpus' : config.corpusDir || 'empty corpus (set LOCAL_CORPUS_DIR)';
  const index = await LocalSearchIndex.build(corpus, { embedder: await buildEmbedder(config, deps), summarySentences: config.summarySentences });
  return new LocalBackend(index, fetcher, source);
}

/** Builds the proxy (backends, cache, routes) without listening. @throws Error on invalid config or corpus. */
export async function createProxy(input: ProxyConfigInput = {}, deps: ProxyDeps = {}): Promise<Proxy> {
  const config = resolveConfig(input);
  const fetcher = new SafeFetcher({ timeoutMs: config.fetchTimeoutMs, maxBytes: config.fetchMaxBytes, allowHosts: config.fetchAllowHosts });
  const summariser = new PageSummariser(
    { readerUrl: config.readerUrl, chatUrl: config.summaryUrl, chatKey: config.summaryKey, chatModel: config.summaryModel, sentences: config.summarySentences, timeoutMs: config.upstreamTimeoutMs },
    fetcher,
  );
  const backends = new Map<string, SearchBackend>();
  const backend = async (name: string): Promise<SearchBackend> => {
    if (!backends.has(name)) {
      const timeoutMs = config.upstreamTimeoutMs;
      backends.set(
        name,
        name === 'local' ? await buildLocal(config, deps, fetcher)
          : name === 'serpapi' ? new SerpApiBackend({ baseUrl: config.serpapiUrl, apiKey: config.serpapiKey, timeoutMs }, summariser)
          : name === 'searxng' ? new SearxngBackend({ baseUrl: config.searxngUrl, timeoutMs }, summariser)
          : new WikipediaBackend({ baseUrl: config.wikipediaUrl, timeoutMs }, summariser),
      );
    }
    return backends.get(name)!;
  };
  const imageBackend = await backend(config.imageBackend);
  const textBackend = await backend(config.textBackend);
  const cache = new ResultCache(config.cacheDir, config.cacheEntries);
  const origins = new Set(config.origins);

  const app = Fastify({ logger: false, bodyLimit: Math.ceil(config.maxImageBytes * 1.4) + 4096 });
  await app.register(cors, { origin: (origin, cb) => cb(null, origin !== undefined && origins.has(origin)), methods: ['GET', 'POST'] });
  // Browsers send Origin on cross-origin requests; one from a page we do not serve is refused
  // outright, so a foreign site cannot spend the user's search quota with no-cors requests.
  app.addHook('onRequest', async (req) => {
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has(origin)) throw new ProxyError(403, `origin ${origin} is not allowed`, 'origin');
  });
  await app.register(rateLimit, { max: config.rateLimit, timeWindow: 60_000 });
  await app.register(multipart, { limits: { fileSize: config.maxImageBytes, files: 1, fields: 4, parts: 5, fieldSize: 4096 } });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err instanceof ProxyError) return reply.code(err.statusCode).send(err.toJSON());
    const status = err.statusCode ?? 0;
    if (err.code === 'FST_REQ_FILE_TOO_LARGE') return reply.code(413).send({ error: `image: larger than ${config.maxImageBytes} bytes`, field: 'image' });
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ error: 'body: too large', field: 'body' });
    if (status === 429) return reply.code(429).send({ error: `rate limit: ${err.message}` });
    if (status >= 400 && status < 500) return reply.code(status).send({ error: `body: ${err.message}`, field: 'body' });
    // Errors without a status here come from parsing a malformed multipart stream (busboy).
    if (!status && /multipart|boundary|form|part/i.test(err.message)) return reply.code(400).send({ error: `body: malformed multipart (${err.message})`, field: 'body' });
    console.error('search proxy: internal error', err);
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));

  const validImageBytes = (bytes: Uint8Array): Uint8Array => {
    if (bytes.length > config.maxImageBytes) throw badRequest('image', `larger than ${config.maxImageBytes} bytes`, 413);
    const header = sniffImage(bytes);
    if (!header) throw badRequest('image', 'not a PNG or JPEG (judged by its header, not the declared type)', 415);
    if (header.width === 0 || header.height === 0 || header.width * header.height > config.maxImagePixels) {
      throw badRequest('image', `size ${header.width}x${header.height} out of range (at most ${config.maxImagePixels} pixels)`);
    }
    return bytes;
  };

  const readImageRequest = async (req: FastifyRequest): Promise<{ query: ImageQuery; k: number }> => {
    if (req.isMultipart()) {
      let bytes: Uint8Array | undefined;
      const fields: Record<string, string> = {};
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'image' || bytes) {
            part.file.resume();
            throw badRequest(part.fieldname, 'unexpected file; send one file in the field "image"');
          }
          bytes = new Uint8Array(await part.toBuffer());
        } else fields[part.fieldname] = String(part.value);
      }
      const { k, image_url } = parseOr400(imageJsonBody, fields);
      if (bytes && image_url) throw badRequest('image', 'send either a file or image_url, not both');
      if (bytes) return { query: { bytes: validImageBytes(bytes) }, k };
      if (image_url) return { query: { url: checkImageUrl(image_url) }, k };
      throw badRequest('image', 'missing: send a file in the field "image" or image_url');
    }
    const { image_base64, image_url, k } = parseOr400(imageJsonBody, req.body);
    if ((image_base64 === undefined) === (image_url === undefined)) throw badRequest('image', 'send exactly one of image_base64 and image_url');
    if (image_url !== undefined) return { query: { url: checkImageUrl(image_url) }, k };
    const b64 = image_base64!.replace(/^data:image\/[a-z]+;base64,/, '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) throw badRequest('image_base64', 'not valid base64');
    return { query: { bytes: validImageBytes(new Uint8Array(Buffer.from(b64, 'base64'))) }, k };
  };

  const cached = async <T extends object>(key: string, run: () => Promise<T[]>) => {
    const hit = await cache.get<{ results: T[] }>(key);
    if (hit) return { results: hit.results, cached: true };
    const results = await run();
    await cache.set(key, { results });
    return { results, cached: false };
  };

  app.post('/api/search/image', async (req) => {
    const { query, k } = await readImageRequest(req);
    const search = imageBackend.imageSearch;
    if (!search) throw badRequest('image', `backend ${imageBackend.name} has no image search`, 501);
    const { results, cached: hit } = await cached(await cacheKey(imageBackend.name, 'image', k, query), () => search.call(imageBackend, query, k));
    return { results, backend: imageBackend.name, cached: hit };
  });

  app.post('/api/search/text', async (req) => {
    const { query, k } = parseOr400(textBody, req.body);
    const search = textBackend.textSearch!;
    const { results, cached: hit } = await cached(await cacheKey(textBackend.name, 'text', k, query), () => search.call(textBackend, query, k));
    return { results, backend: textBackend.name, cached: hit };
  });

  app.get('/api/health', async () => {
    const [image, text] = await Promise.all([imageBackend.health(), textBackend.health()]);
    return { ok: image.reachable && text.reachable, image, text, summariser: summariser.name, cache: cache.stats() };
  });

  const proxy: Proxy = {
    app, config, cache, fetcher, url: '',
    allowOrigin: (origin) => void origins.add(origin),
    close: () => app.close(),
  };
  return proxy;
}

/** Builds the proxy and listens on `config.host:config.port`; `proxy.url` is then set. */
export async function startProxy(input: ProxyConfigInput = {}, deps: ProxyDeps = {}): Promise<Proxy> {
  const proxy = await createProxy(input, deps);
  await proxy.app.listen({ host: proxy.config.host, port: proxy.config.port });
  const addr = proxy.app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('search proxy: no TCP address after listen');
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  proxy.url = `http://${host}:${addr.port}`;
  return proxy;
}
