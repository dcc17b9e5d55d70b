import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchRefused, isPublicAddress, SafeFetcher } from './fetcher.js';
import { htmlToText } from './summariser.js';
import { fakeServer, type FakeServer } from './testing.js';

let allowed: FakeServer; // the only loopback server the fetcher may reach
let internal: FakeServer; // stands in for an internal service: must never receive a request
let fetcher: SafeFetcher;

beforeAll(async () => {
  internal = await fakeServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('internal secret'));
  allowed = await fakeServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const to = u.searchParams.get('to');
    if (u.pathname === '/redirect' && to) return void res.writeHead(302, { location: to }).end();
    if (u.pathname === '/loop') return void res.writeHead(301, { location: '/loop' }).end();
    if (u.pathname === '/page') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<p>Hello page.</p>');
    if (u.pathname === '/big') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(5000));
    if (u.pathname === '/big-chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 10; i++) res.write('y'.repeat(1000));
      return void res.end();
    }
    if (u.pathname === '/binary') return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('abc');
    if (u.pathname === '/slow') return; // never answers
    res.writeHead(404).end();
  });
  fetcher = new SafeFetcher({ allowHosts: [allowed.hostPort], maxBytes: 4096, timeoutMs: 400 });
});

afterAll(async () => {
  await allowed.close();
  await internal.close();
});

async function refusal(url: string, f = fetcher): Promise<string> {
  try {
    await f.fetch(url);
  } catch (e) {
    if (e instanceof FetchRefused) return e.kind;
    throw e;
  }
  return 'fetched';
}

describe('address policy', () => {
  it.each([
    ['8.8.8.8', true], ['2606:4700:4700::1111', true],
    ['127.0.0.1', false], ['127.5.6.7', false], ['0.0.0.0', false], ['10.1.2.3', false], ['172.16.0.1', false],
    ['192.168.0.1', false], ['169.254.169.254', false], ['100.64.0.1', false], ['::1', false], ['fe80::1', false],
    ['fc00::1', false], ['::ffff:10.0.0.1', false], ['::ffff:127.0.0.1', false], ['224.0.0.1', false], ['not-an-ip', false],
  ])('%s public = %s', (addr, want) => {
    expect(isPublicAddress(addr)).toBe(want);
  });
});

describe('SSRF refusals (no request ever reaches the internal server)', () => {
  it('refuses loopback, private, link-local and metadata targets by default', async () => {
    const strict = new SafeFetcher({ timeoutMs: 400 });
    const port = internal.url.split(':')[2];
    for (const url of [
      internal.url, `http://localhost:${port}/`, `http://[::1]:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`,
      `http://0.0.0.0:${port}/`, 'http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/', 'http://192.168.1.1/', `http://2130706433:${port}/`,
    ]) {
      expect(await refusal(url, strict), url).toBe('forbidden-address');
    }
    expect(await refusal('file:///etc/passwd', strict)).toBe('scheme');
    expect(await refusal('ftp://example.test/x', strict)).toBe('scheme');
    // An allowed host:port does not open other ports on the same address.
    expect(await refusal(internal.url)).toBe('forbidden-address');
    expect(internal.requests).toHaveLength(0);
  });

  it('re-checks every redirect hop', async () => {
    const port = internal.url.split(':')[2];
    const viaRedirect = (to: string) => `${allowed.url}/redirect?to=${encodeURIComponent(to)}`;
    expect(await refusal(viaRedirect(internal.url + '/'))).toBe('forbidden-address');
    expect(await refusal(viaRedirect(`http://localhost:${port}/`))).toBe('forbidden-address');
    expect(await refusal(viaRedirect('http://169.254.169.254/latest/meta-data/'))).toBe('forbidden-address');
    // Two hops: allowed -> allowed -> internal.
    expect(await refusal(viaRedirect(viaRedirect(internal.url)))).toBe('forbidden-address');
    expect(await refusal(viaRedirect('gopher://x.test/'))).toBe('scheme');
    expect(internal.requests).toHaveLength(0);
    // Redirects that stay on allowed hosts are followed.
    const page = await fetcher.fetch(viaRedirect(viaRedirect(`${allowed.url}/page`)));
    expect(page).toMatchObject({ url: `${allowed.url}/page`, contentType: 'text/html' });
    expect(new TextDecoder().decode(page.body)).toBe('<p>Hello page.</p>');
  });
});

describe('caps', () => {
  it('size (declared and streamed), content type, redirect count and time', async () => {
    expect(await refusal(`${allowed.url}/big`)).toBe('too-large');
    expect(await refusal(`${allowed.url}/big-chunked`)).toBe('too-large');
    expect(await refusal(`${allowed.url}/binary`)).toBe('content-type');
    expect(await refusal(`${allowed.url}/loop`)).toBe('too-many-redirects');
    expect(await refusal(`${allowed.url}/missing`)).toBe('status');
    const t0 = Date.now();
    expect(await refusal(`${allowed.url}/slow`)).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('htmlToText', () => {
  it('drops scripts, styles and tags, decodes entities, ends blocks as sentences', () => {
    const html = '<html><head><style>p{}</style><script>var a = "<p>x</p>";</script></head><body><h1>Title</h1><p>Fish &amp; chips cost &#163;5.</p><p>Open&nbsp;daily</p></body></html>';
    expect(htmlToText(html)).toBe('Title. Fish & chips cost £5. Open daily.');
  });
});
