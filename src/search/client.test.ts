import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type Proxy } from '../../proxy/server.js';
import { fakeServer, sendJson, type FakeServer } from '../../proxy/testing.js';
import { MemorySearchCache, ProxySearchClient, SearchClientError } from './client.js';
import { emptyToolMetrics } from '../protocol/tools.js';
import { runToolCall } from './run-tool.js';
import { makeTestCorpus, png, TEST_IMAGES } from './testing.js';

let proxy: Proxy;
let flaky: FakeServer; // answers 503 until its third request
let silent: FakeServer; // never answers

beforeAll(async () => {
  proxy = await startProxy({ port: 0, cacheDir: '' }, { corpus: makeTestCorpus() });
  flaky = await fakeServer((_req, res) =>
    flaky.requests.length < 3 ? sendJson(res, 503, { error: 'busy' }) : sendJson(res, 200, { results: [{ title: 't', url: 'u', summary: 's' }] }),
  );
  silent = await fakeServer(() => {});
});

afterAll(async () => {
  await proxy.close();
  await flaky.close();
  await silent.close();
});

describe('ProxySearchClient against the real proxy', () => {
  it('text and image search; the result cache answers repeats without a request', async () => {
    const cache = new MemorySearchCache();
    const c = new ProxySearchClient({ baseUrl: proxy.url, cache });
    const t = await c.textSearch('Amber Bridge opened', 2);
    expect(t[0].title).toBe('Amber Bridge');
    const im = await c.imageSearch({ bytes: png(TEST_IMAGES.e1) }, 1);
    expect(im.map((r) => r.title)).toEqual(['Crimson Lighthouse photograph']);
    expect(c.attempts).toBe(2);
    expect(await c.textSearch('amber   BRIDGE opened', 2)).toEqual(t);
    expect(await c.imageSearch({ bytes: png(TEST_IMAGES.e1) }, 1)).toEqual(im);
    expect(c.attempts).toBe(2);
    expect([...cache.map.keys()].sort()[1]).toBe('proxy|text|2|amber bridge opened');
  });

  it('does not retry a 400 and reports the field', async () => {
    const c = new ProxySearchClient({ baseUrl: proxy.url, backoffMs: 1 });
    const err = await c.textSearch('', 3).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SearchClientError);
    expect(err).toMatchObject({ status: 400, field: 'query' });
    expect(c.attempts).toBe(1);
  });
});

describe('retry, backoff and timeout', () => {
  it('retries 503 with exponential backoff (20 ms, then 40 ms) and succeeds on the third attempt', async () => {
    const c = new ProxySearchClient({ baseUrl: flaky.url, retries: 3, backoffMs: 20 });
    const t0 = performance.now();
    const r = await c.textSearch('q', 1);
    expect(r).toEqual([{ title: 't', url: 'u', summary: 's' }]);
    expect(c.attempts).toBe(3);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(60 - 5);
  });

  it('gives up after retries + 1 attempts that each time out', async () => {
    const c = new ProxySearchClient({ baseUrl: silent.url, retries: 1, backoffMs: 5, timeoutMs: 250 });
    const err = await c.textSearch('q', 1).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, message: 'no answer within 250 ms' });
    expect(c.attempts).toBe(2);
  });

  it('inside a rollout a failing proxy yields an error turn and a counted failure', async () => {
    const c = new ProxySearchClient({ baseUrl: silent.url, retries: 0, timeoutMs: 50 });
    const m = emptyToolMetrics();
    const turn = await runToolCall(c, { kind: 'image_search' }, { question: 'Q', image: { bytes: png(TEST_IMAGES.e1) } }, m);
    expect(turn.error).toBe(true);
    expect(turn.text).toMatch(/^\[Image Search Results\] There is an error encountered in performing search: no answer within 50 ms\./);
    expect(m).toMatchObject({ imageSearches: 1, imageSearchFailures: 1 });
  });
});
