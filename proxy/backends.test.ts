import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type Proxy } from './server.js';
import { fakeServer, sendJson, type FakeServer } from './testing.js';
import type { ProxyConfigInput } from './config.js';

const KEY = 'secret-test-key';
let pages: FakeServer; // result pages the summariser fetches
let internal: FakeServer; // must never be reached
let serp: FakeServer;
let searx: FakeServer;
let wiki: FakeServer;
let chat: FakeServer;
let broken: FakeServer; // 500, non-JSON, slow
const started: Proxy[] = [];

const ORM_PAGE =
  '<html><body><h1>Orm</h1><p>Orm is an island town. The lighthouse of Orm was built in 1911. ' +
  'The town has a harbour. Fishing is the main trade. The mayor is Ada Lind. Ferries leave twice a day. The museum shows old maps.</p></body></html>';

async function proxyWith(cfg: ProxyConfigInput): Promise<Proxy> {
  const p = await startProxy({ port: 0, cacheDir: '', fetchAllowHosts: [pages.hostPort], upstreamTimeoutMs: 500, ...cfg }, { corpus: { pages: [], images: [] } });
  started.push(p);
  return p;
}

const text = (p: Proxy, query: string, k = 5) =>
  fetch(p.url + '/api/search/text', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, k }) });

beforeAll(async () => {
  internal = await fakeServer((_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>internal</p>'));
  pages = await fakeServer((req, res) => {
    if (req.url === '/orm') return void res.writeHead(200, { 'content-type': 'text/html' }).end(ORM_PAGE);
    if (req.url === '/to-internal') return void res.writeHead(302, { location: internal.url + '/' }).end();
    if (req.url?.startsWith('/reader/')) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('Reader text. The lighthouse of Orm is red.');
    res.writeHead(404).end();
  });
  serp = await fakeServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    if (u.pathname === '/account.json') return sendJson(res, 200, { account_email: 'x' });
    if (u.searchParams.get('engine') === 'google') {
      return sendJson(res, 200, {
        organic_results: [
          { position: 1, title: 'Orm - island', link: `${pages.url}/orm`, snippet: 'Orm island snippet.' },
          { position: 2, title: 'Orm duplicate', link: `${pages.url}/orm`, snippet: 'dup' },
          { position: 3, title: 'Internal', link: `${pages.url}/to-internal`, snippet: 'Snippet used when the page is refused.' },
          { position: 4, title: 'No link' },
        ],
      });
    }
    if (u.searchParams.get('engine') === 'google_lens') {
      return sendJson(res, 200, {
        visual_matches: [
          { position: 1, title: 'Red lighthouse', link: 'https://a.test/1', thumbnail: 'https://t.test/1.jpg', source: 'a' },
          { position: 2, title: 'Lighthouse 2', link: 'https://a.test/2', thumbnail: 'https://t.test/2.jpg' },
          { position: 3, title: 'Lighthouse 3', link: 'https://a.test/3', thumbnail: 'https://t.test/3.jpg' },
        ],
      });
    }
    sendJson(res, 400, { error: 'bad engine' });
  });
  searx = await fakeServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    if (u.pathname === '/config') return sendJson(res, 200, {});
    sendJson(res, 200, { query: u.searchParams.get('q'), results: [{ title: 'Orm', url: `${pages.url}/orm`, content: 'Orm snippet.', engine: 'x' }] });
  });
  wiki = await fakeServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const p = u.searchParams;
    if (p.get('meta') === 'siteinfo') return sendJson(res, 200, { query: { general: {} } });
    if (p.get('list') === 'search') {
      return sendJson(res, 200, { query: { search: [
        { ns: 0, title: 'Orm Lighthouse', pageid: 11, snippet: 'The <span class="searchmatch">lighthouse</span>' },
        { ns: 0, title: 'Orm', pageid: 12, snippet: 'island' },
      ] } });
    }
    if (p.get('prop') === 'extracts') {
      return sendJson(res, 200, { query: { pages: [
        { pageid: 12, title: 'Orm', extract: 'Orm is an island. It has a harbour.' },
        { pageid: 11, title: 'Orm Lighthouse', extract: 'The Orm Lighthouse is red. It was built in 1911.' },
      ] } });
    }
    sendJson(res, 400, {});
  });
  chat = await fakeServer((_req, res) => sendJson(res, 200, { choices: [{ message: { role: 'assistant', content: ' LLM summary of the page. ' } }] }));
  broken = await fakeServer((req, res) => {
    if (req.url?.startsWith('/w/api.php')) return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not json</html>');
    if (req.url?.startsWith('/search.json')) return; // SerpApi that never answers
    sendJson(res, 500, { error: 'boom' });
  });
});

afterAll(async () => {
  for (const p of started) await p.close();
  for (const s of [pages, internal, serp, searx, wiki, chat, broken]) await s.close();
});

describe('serpapi (Google Search + Google Lens)', () => {
  it('maps organic_results to summaries of the fetched pages; dedupes links; a refused page falls back to its snippet', async () => {
    const p = await proxyWith({ textBackend: 'serpapi', imageBackend: 'serpapi', serpapiUrl: serp.url, serpapiKey: KEY });
    const r = await text(p, 'When was the lighthouse of Orm built?', 5);
    expect(r.status).toBe(200);
    const j = await r.json();
    expect(j.backend).toBe('serpapi');
    expect(j.results).toEqual([
      {
        title: 'Orm - island',
        url: `${pages.url}/orm`,
        // Page text: "Orm." + 7 sentences. Only 3 share a term with the question (orm, lighthouse,
        // built; the rest are stop words), so the summary is those 3, in page order.
        summary: 'Orm. Orm is an island town. The lighthouse of Orm was built in 1911.',
      },
      { title: 'Internal', url: `${pages.url}/to-internal`, summary: 'Snippet used when the page is refused.' },
    ]);
    const q = new URL(serp.requests.find((x) => x.url.includes('engine=google&'))!.url, 'http://x').searchParams;
    expect([q.get('q'), q.get('api_key'), q.get('num')]).toEqual(['When was the lighthouse of Orm built?', KEY, '5']);
    expect(internal.requests).toHaveLength(0);
  });

  it('Google Lens: passes the image URL, maps visual_matches; uploaded bytes are refused with 422', async () => {
    const p = await proxyWith({ imageBackend: 'serpapi', serpapiUrl: serp.url, serpapiKey: KEY });
    const r = await fetch(p.url + '/api/search/image', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image_url: 'https://img.test/q.jpg', k: 2 }) });
    const j = await r.json();
    expect(j.results).toEqual([
      { title: 'Red lighthouse', url: 'https://a.test/1', thumbnail: 'https://t.test/1.jpg' },
      { title: 'Lighthouse 2', url: 'https://a.test/2', thumbnail: 'https://t.test/2.jpg' },
    ]);
    const lens = new URL(serp.requests.find((x) => x.url.includes('google_lens'))!.url, 'http://x').searchParams;
    expect([lens.get('url'), lens.get('api_key')]).toEqual(['https://img.test/q.jpg', KEY]);
    const bytes = await fetch(p.url + '/api/search/image', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image_base64: 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==' }) });
    expect(bytes.status).toBe(422);
    expect((await bytes.json()).field).toBe('image');
  });

  it('health pings /account.json; the key never appears in the health answer', async () => {
    const p = await proxyWith({ textBackend: 'serpapi', serpapiUrl: serp.url, serpapiKey: KEY });
    const raw = await (await fetch(p.url + '/api/health')).text();
    expect(JSON.parse(raw).text).toMatchObject({ name: 'serpapi', reachable: true });
    expect(raw).not.toContain(KEY);
  });
});

describe('searxng and wikipedia', () => {
  it('searxng: format=json results -> summaries; a reader service is used when configured', async () => {
    const p = await proxyWith({ textBackend: 'searxng', searxngUrl: searx.url });
    const j = await (await text(p, 'Who is the mayor of Orm?', 3)).json();
    expect(j.results[0]).toMatchObject({ title: 'Orm', url: `${pages.url}/orm` });
    expect(j.results[0].summary).toContain('The mayor is Ada Lind.');
    const q = new URL(searx.requests.at(-1)!.url, 'http://x').searchParams;
    expect([q.get('q'), q.get('format')]).toEqual(['Who is the mayor of Orm?', 'json']);

    const viaReader = await proxyWith({ textBackend: 'searxng', searxngUrl: searx.url, readerUrl: `${pages.url}/reader/` });
    const r = await (await text(viaReader, 'lighthouse colour', 3)).json();
    expect(r.results[0].summary).toBe('Reader text. The lighthouse of Orm is red.');
    expect(pages.requests.some((x) => x.url === `/reader/${pages.url}/orm`)).toBe(true);
  });

  it('wikipedia: list=search then prop=extracts; article URLs from titles', async () => {
    const p = await proxyWith({ textBackend: 'wikipedia', wikipediaUrl: wiki.url });
    const j = await (await text(p, 'Orm lighthouse built', 2)).json();
    expect(j.results).toEqual([
      { title: 'Orm Lighthouse', url: `${wiki.url}/wiki/Orm_Lighthouse`, summary: 'The Orm Lighthouse is red. It was built in 1911.' },
      { title: 'Orm', url: `${wiki.url}/wiki/Orm`, summary: 'Orm is an island. It has a harbour.' },
    ]);
    const ex = new URL(wiki.requests.find((x) => x.url.includes('prop=extracts'))!.url, 'http://x').searchParams;
    expect(ex.get('pageids')).toBe('11|12');
    expect(ex.get('explaintext')).toBe('1');
  });
});

describe('chat summariser', () => {
  it('posts the page and question to /chat/completions with the key; uses the answer', async () => {
    const p = await proxyWith({ textBackend: 'searxng', searxngUrl: searx.url, summaryUrl: chat.url + '/v1', summaryKey: 'chat-key', summaryModel: 'tiny' });
    const j = await (await text(p, 'Who is the mayor of Orm?', 1)).json();
    expect(j.results[0].summary).toBe('LLM summary of the page.');
    const req = chat.requests.at(-1)!;
    expect(req.url).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe('Bearer chat-key');
    const body = JSON.parse(req.body);
    expect(body.model).toBe('tiny');
    expect(body.messages[1].content).toContain('Question: Who is the mayor of Orm?');
    expect(body.messages[1].content).toContain('The mayor is Ada Lind.');
  });
});

describe('upstream failures', () => {
  it('502 naming the backend for HTTP errors and non-JSON; 504 on timeout; unreachable in health', async () => {
    const sx = await proxyWith({ textBackend: 'searxng', searxngUrl: broken.url });
    const r1 = await text(sx, 'a');
    expect(r1.status).toBe(502);
    expect(await r1.json()).toEqual({ error: 'searxng: HTTP 500', backend: 'searxng' });
    const h = await (await fetch(sx.url + '/api/health')).json();
    expect(h.ok).toBe(false);
    expect(h.text).toMatchObject({ name: 'searxng', reachable: false });

    const wk = await proxyWith({ textBackend: 'wikipedia', wikipediaUrl: broken.url });
    const r2 = await text(wk, 'a');
    expect(r2.status).toBe(502);
    expect(await r2.json()).toEqual({ error: 'wikipedia: response is not JSON', backend: 'wikipedia' });

    const sp = await proxyWith({ textBackend: 'serpapi', serpapiUrl: broken.url, serpapiKey: KEY, upstreamTimeoutMs: 200 });
    const t0 = Date.now();
    const r3 = await text(sp, 'a');
    expect(r3.status).toBe(504);
    expect(await r3.json()).toEqual({ error: 'serpapi: no answer within 200 ms', backend: 'serpapi' });
    expect(Date.now() - t0).toBeLessThan(2000);

    const closedPort = await fakeServer(() => {});
    const deadUrl = closedPort.url;
    await closedPort.close();
    const dead = await proxyWith({ textBackend: 'searxng', searxngUrl: deadUrl });
    const r4 = await text(dead, 'a');
    expect(r4.status).toBe(502);
    expect((await r4.json()).backend).toBe('searxng');
  });

  it('config errors are reported at start, not at the first search', async () => {
    await expect(startProxy({ textBackend: 'serpapi' })).rejects.toThrow(/SERPAPI_KEY/);
    await expect(startProxy({ textBackend: 'searxng' })).rejects.toThrow(/SEARXNG_URL/);
    await expect(startProxy({ port: 70000 })).rejects.toThrow(/port/);
  });
});
