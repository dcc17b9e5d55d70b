import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToBase64 } from '../src/search/image.js';
import { makeTestCorpus, png, TEST_IMAGES } from '../src/search/testing.js';
import { startProxy, type Proxy } from './server.js';
import { fakeServer, type FakeServer } from './testing.js';

const ORIGIN = 'http://lab.test:5173';
let dir: string;
let proxy: Proxy;
let images: FakeServer;

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(proxy.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'proxy-cache-'));
  images = await fakeServer((req, res) => {
    if (req.url === '/e1.png') {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(png(TEST_IMAGES.e1));
    } else res.writeHead(404).end();
  });
  proxy = await startProxy({ port: 0, origins: [ORIGIN], cacheDir: dir, fetchAllowHosts: [images.hostPort], maxImageBytes: 64 * 1024 }, { corpus: makeTestCorpus() });
});

afterAll(async () => {
  await proxy.close();
  await images.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('local backend endpoints', () => {
  it('text search returns {title, url, summary}, then serves the repeat from the cache', async () => {
    const r1 = await post('/api/search/text', { query: 'Who built the Verdant Tower?', k: 2 });
    expect(r1.status).toBe(200);
    const j1 = await r1.json();
    expect(j1.backend).toBe('local');
    expect(j1.cached).toBe(false);
    expect(j1.results[0]).toEqual({
      title: 'Verdant Tower',
      url: 'https://world.test/wiki/e2',
      summary: 'The Verdant Tower is covered in green ivy. It was built by the architect Selma Ravn in 1872. The tower houses a library of old maps. Its height is 31 metres. A garden surrounds the tower.',
    });
    expect(j1.results.length).toBeLessThanOrEqual(2);
    // Same query up to case and spacing: a cache hit.
    const j2 = await (await post('/api/search/text', { query: '  who BUILT the verdant   tower? ', k: 2 })).json();
    expect(j2).toEqual({ ...j1, cached: true });
    const health = await (await fetch(proxy.url + '/api/health')).json();
    expect(health.cache).toMatchObject({ hits: 1, misses: 1, disk: true });
  });

  it('the disk cache survives a restart', async () => {
    const again = await startProxy({ port: 0, cacheDir: dir }, { corpus: { pages: [], images: [] } });
    try {
      const j = await (await fetch(again.url + '/api/search/text', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'who built the verdant tower?', k: 2 }) })).json();
      expect(j.cached).toBe(true);
      expect(j.results[0].title).toBe('Verdant Tower');
    } finally {
      await again.close();
    }
  });

  it('image search accepts base64 JSON, multipart and an image URL', async () => {
    const b64 = await (await post('/api/search/image', { image_base64: bytesToBase64(png(TEST_IMAGES.e4)), k: 2 })).json();
    expect(b64.results.map((r: { url: string }) => r.url)[0]).toBe('https://world.test/img/e4');
    expect(b64.results).toHaveLength(2);
    expect(Object.keys(b64.results[0]).sort()).toEqual(['thumbnail', 'title', 'url']);

    const form = new FormData();
    form.append('k', '1');
    form.append('image', new Blob([png(TEST_IMAGES.e3) as Uint8Array<ArrayBuffer>], { type: 'image/png' }), 'q.png');
    const mp = await fetch(proxy.url + '/api/search/image', { method: 'POST', body: form });
    expect(mp.status).toBe(200);
    expect((await mp.json()).results.map((r: { title: string }) => r.title)).toEqual(['Amber Bridge photograph']);

    const byUrl = await (await post('/api/search/image', { image_url: `${images.url}/e1.png`, k: 1 })).json();
    expect(byUrl.results[0].title).toBe('Crimson Lighthouse photograph');
  });
});

describe('request validation: 4xx JSON naming the field', () => {
  const cases: [string, string, unknown, number, string][] = [
    ['missing query', '/api/search/text', { k: 3 }, 400, 'query'],
    ['empty query', '/api/search/text', { query: '   ' }, 400, 'query'],
    ['query too long', '/api/search/text', { query: 'x'.repeat(513) }, 400, 'query'],
    ['k = 0', '/api/search/text', { query: 'a', k: 0 }, 400, 'k'],
    ['k = 11', '/api/search/text', { query: 'a', k: 11 }, 400, 'k'],
    ['k = 2.5', '/api/search/text', { query: 'a', k: 2.5 }, 400, 'k'],
    ['body is an array', '/api/search/text', [1, 2], 400, 'body'],
    ['body is not JSON', '/api/search/text', '{"query": ', 400, 'body'],
    ['no image', '/api/search/image', { k: 1 }, 400, 'image'],
    ['both url and bytes', '/api/search/image', { image_url: 'https://a.test/x.png', image_base64: 'AAAA' }, 400, 'image'],
    ['bad base64', '/api/search/image', { image_base64: '!!!' }, 400, 'image_base64'],
    ['text claimed as image', '/api/search/image', { image_base64: bytesToBase64(new TextEncoder().encode('<html>not an image</html>')) }, 415, 'image'],
    ['file URL', '/api/search/image', { image_url: 'file:///etc/passwd' }, 400, 'image_url'],
    ['loopback image URL (SSRF)', '/api/search/image', { image_url: 'http://127.0.0.1:9/x.png' }, 400, 'image_url'],
    ['metadata image URL (SSRF)', '/api/search/image', { image_url: 'http://169.254.169.254/latest/meta-data' }, 400, 'image_url'],
  ];
  it.each(cases)('%s', async (_name, path, body, status, field) => {
    const r = await post(path, body);
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    const j = await r.json();
    expect(j.field).toBe(field);
    expect(j.error).toMatch(new RegExp(`^${field}`));
  });

  it('a 1x1-pixel header claiming 100000 x 100000 is refused by its decoded size', async () => {
    const p = png(TEST_IMAGES.e1);
    const view = new DataView(p.buffer, p.byteOffset);
    view.setUint32(16, 100000);
    view.setUint32(20, 100000);
    const r = await post('/api/search/image', { image_base64: bytesToBase64(p) });
    expect(r.status).toBe(400);
    expect((await r.json()).field).toBe('image');
  });

  it('oversize bodies: 413 for a JSON body and for a multipart file', async () => {
    const big = await post('/api/search/image', { image_base64: 'A'.repeat(200_000) });
    expect(big.status).toBe(413);
    expect((await big.json()).field).toBe('body');
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(100_000)], { type: 'image/png' }), 'big.png');
    const mp = await fetch(proxy.url + '/api/search/image', { method: 'POST', body: form });
    expect(mp.status).toBe(413);
    expect((await mp.json()).field).toBe('image');
  });

  it('malformed multipart: 400 naming the body; a file in the wrong field: 400 naming that field', async () => {
    const broken = await fetch(proxy.url + '/api/search/image', {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
      body: '--XYZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG truncated',
    });
    expect(broken.status).toBe(400);
    expect((await broken.json()).field).toBe('body');
    const form = new FormData();
    form.append('picture', new Blob([png(TEST_IMAGES.e1) as Uint8Array<ArrayBuffer>]), 'a.png');
    const wrong = await fetch(proxy.url + '/api/search/image', { method: 'POST', body: form });
    expect(wrong.status).toBe(400);
    expect((await wrong.json()).field).toBe('picture');
  });

  it('unknown routes give a JSON 404', async () => {
    const r = await fetch(proxy.url + '/api/search/video', { method: 'POST' });
    expect(r.status).toBe(404);
    expect((await r.json()).error).toMatch(/no route POST \/api\/search\/video/);
  });
});

describe('CORS', () => {
  it('preflight from the lab origin is allowed; from another origin refused with no CORS headers', async () => {
    const ok = await fetch(proxy.url + '/api/search/text', {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    const evil = await fetch(proxy.url + '/api/search/text', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.test', 'access-control-request-method': 'POST' },
    });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const simple = await post('/api/search/text', { query: 'a' }, { origin: 'https://evil.test' });
    expect(simple.status).toBe(403);
    expect((await simple.json()).field).toBe('origin');
  });
});

describe('load', () => {
  it('a burst of 120 concurrent mixed requests: all answered correctly, server still healthy', async () => {
    const img = bytesToBase64(png(TEST_IMAGES.e2));
    const reqs = Array.from({ length: 120 }, (_, i) =>
      i % 3 === 0 ? post('/api/search/image', { image_base64: img, k: 1 })
        : i % 3 === 1 ? post('/api/search/text', { query: `tower ${i % 7}`, k: 3 })
        : post('/api/search/text', { k: 99 }),
    );
    const res = await Promise.all(reqs);
    const statuses = res.map((r) => r.status);
    expect(statuses.filter((s, i) => s !== (i % 3 === 2 ? 400 : 200))).toEqual([]);
    const bodies = await Promise.all(res.map((r) => r.json()));
    expect(bodies.filter((b, i) => i % 3 === 0).every((b) => b.results[0].title === 'Verdant Tower photograph')).toBe(true);
    expect((await fetch(proxy.url + '/api/health')).status).toBe(200);
  });

  it('per-client rate limit answers 429 JSON past the limit', async () => {
    const limited = await startProxy({ port: 0, cacheDir: '', rateLimit: 3 }, { corpus: makeTestCorpus() });
    try {
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await fetch(limited.url + '/api/health')).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      const r = await fetch(limited.url + '/api/health');
      expect((await r.json()).error).toMatch(/^rate limit/);
    } finally {
      await limited.close();
    }
  });
});

describe('health', () => {
  it('reports the configured backends and the local corpus size, never keys', async () => {
    const h = await (await fetch(proxy.url + '/api/health')).json();
    expect(h.ok).toBe(true);
    expect(h.image).toMatchObject({ name: 'local', reachable: true });
    expect(h.image.detail).toContain('4 pages, 4 images, embedder layout+dhash');
    expect(h.summariser).toBe('extractive');
  });
});
