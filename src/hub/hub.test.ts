import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { writeFixtureHub } from '../../scripts/make-fixtures.js';
import type { FixtureRepo } from '../io/fixtures.js';
import { openSafetensorsUrl, SafetensorsError } from '../io/safetensors.js';
import { HubHttpError, HubIntegrityError, type DownloadProgress } from './download.js';
import { FsHubCache } from '../storage/fs-hub-cache.js';
import { startLocalHub, type LocalHub } from './local-hub.js';
import { parseHfDatasetFile, parseHfRef, resolveUrl } from './ref.js';
import { HubRepo } from './repo.js';

let root: string;
let repos: FixtureRepo[];
let hub: LocalHub | undefined;
const fixture = (name: string) => repos.find((r) => r.repo === `fixtures/${name}`)!;
const bytesOf = async (b: Blob) => new Uint8Array(await b.arrayBuffer());
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'hub-test-'));
  repos = writeFixtureHub(join(root, 'hub'), 0);
});
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let cacheN = 0;
const freshCache = () => new FsHubCache(join(root, `cache-${cacheN++}`));

describe('hf: references', () => {
  test('parse with default and explicit revision', () => {
    expect(parseHfRef('hf:HuggingFaceTB/SmolLM2-135M')).toEqual({ repo: 'HuggingFaceTB/SmolLM2-135M', revision: 'main' });
    expect(parseHfRef('hf:Qwen/Qwen2.5-0.5B@v1.0')).toEqual({ repo: 'Qwen/Qwen2.5-0.5B', revision: 'v1.0' });
  });
  test('resolve URLs in the hub scheme', () => {
    expect(resolveUrl('hf:HuggingFaceTB/SmolVLM-256M-Instruct', 'model.safetensors')).toBe(
      'https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct/resolve/main/model.safetensors',
    );
    expect(resolveUrl('hf:a/b@refs/pr/1', 'onnx/model q.onnx', 'http://127.0.0.1:9/')).toBe('http://127.0.0.1:9/a/b/resolve/refs%2Fpr%2F1/onnx/model%20q.onnx');
  });
  test('dataset files: hf:ORG/NAME[@REVISION]/FILE resolves under datasets/', () => {
    expect(parseHfDatasetFile('hf:lmms-lab/FVQA/fvqa_train.parquet')).toEqual({ ref: { repo: 'lmms-lab/FVQA', revision: 'main', repoType: 'dataset' }, file: 'fvqa_train.parquet' });
    const f = parseHfDatasetFile('hf:a/b@refs%2Fpr%2F1/data/test.parquet');
    expect(f).toEqual({ ref: { repo: 'a/b', revision: 'refs/pr/1', repoType: 'dataset' }, file: 'data/test.parquet' });
    expect(resolveUrl(f.ref, f.file, 'http://127.0.0.1:9')).toBe('http://127.0.0.1:9/datasets/a/b/resolve/refs%2Fpr%2F1/data/test.parquet');
    for (const bad of ['hf:a/b', 'a/b/c.parquet', 'hf:a/b@/c.parquet', 'hf:a/b/../c.parquet', 'hf:a/b@%zz/c.parquet']) expect(() => parseHfDatasetFile(bad)).toThrow(bad);
  });
  test('reject malformed references and paths', () => {
    for (const bad of ['SmolLM2', 'hf:SmolLM2', 'hf:a/b/c', 'hf:a/b@', 'hf:-a/b', 'hf:a/b@x y', 'hf:a/b@../x']) expect(() => parseHfRef(bad)).toThrow(bad);
    expect(() => resolveUrl('hf:a/b', '../secret')).toThrow(/invalid file path/);
  });
});

describe('local hub server', () => {
  test('HEAD, full GET, ranges, If-Range, 416 and 404', async () => {
    hub = await startLocalHub(join(root, 'hub'));
    const url = resolveUrl('hf:fixtures/tiny-llama', 'config.json', hub.url);
    const body = fixture('tiny-llama').files.get('config.json')!;
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(body.length));
    const etag = head.headers.get('etag')!;
    expect(same(new Uint8Array(await (await fetch(url)).arrayBuffer()), body)).toBe(true);
    const r = await fetch(url, { headers: { Range: 'bytes=2-5' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 2-5/${body.length}`);
    expect([...new Uint8Array(await r.arrayBuffer())]).toEqual([...body.subarray(2, 6)]);
    expect((await fetch(url, { headers: { Range: 'bytes=2-', 'If-Range': etag } })).status).toBe(206);
    expect((await fetch(url, { headers: { Range: 'bytes=2-', 'If-Range': '"other"' } })).status).toBe(200);
    expect((await fetch(url, { headers: { Range: `bytes=${body.length}-` } })).status).toBe(416);
    expect((await fetch(`${hub.url}/fixtures/nope/resolve/main/config.json`)).status).toBe(404);
    expect((await fetch(`${hub.url}/%2e%2e/%2e%2e/etc/passwd`)).status).toBe(404);
  });
});

describe('safetensors over HTTP Range', () => {
  test('reads the header first, then only the requested tensor bytes', async () => {
    hub = await startLocalHub(join(root, 'hub'));
    const fx = fixture('tiny-idefics3');
    const url = resolveUrl('hf:fixtures/tiny-idefics3', 'model.safetensors', hub.url);
    const r = await openSafetensorsUrl(url);
    const n = r.header.dataStart - 8;
    expect(hub.requests.map((q) => q.range)).toEqual(['bytes=0-7', `bytes=8-${8 + n - 1}`]);
    const name = 'model.connector.modality_projection.proj.weight';
    const [b, e] = r.info(name).dataOffsets;
    const got = await r.readF32(name);
    expect(hub.requests[2].range).toBe(`bytes=${r.header.dataStart + b}-${r.header.dataStart + e - 1}`);
    expect(hub.requests.reduce((s, q) => s + q.sent, 0)).toBe(8 + n + (e - b));
    const whole = fx.files.get('model.safetensors')!;
    expect(same(new Uint8Array(got.buffer), whole.subarray(r.header.dataStart + b, r.header.dataStart + e))).toBe(true);
  });

  test('errors name the URL: no Range support, missing file, truncated file', async () => {
    hub = await startLocalHub(join(root, 'hub'));
    const url = resolveUrl('hf:fixtures/tiny-llama', 'model.safetensors', hub.url);
    // A server that ignores Range (200) must not be taken for one that honours it.
    const noRange: typeof fetch = (input, init) => {
      const h = new Headers(init?.headers);
      h.delete('Range');
      return fetch(input, { ...init, headers: h });
    };
    await expect(openSafetensorsUrl(url, {}, noRange)).rejects.toThrow(`${url}: Range request for bytes 0-7 answered 200`);
    await expect(openSafetensorsUrl(url.replace('tiny-llama', 'nope'))).rejects.toThrow(/answered 404/);
    const cut = join(root, 'hub', 'fixtures', 'tiny-llama', 'resolve', 'main', 'cut.safetensors');
    const full = fixture('tiny-llama').files.get('model.safetensors')!;
    writeFileSync(cut, full.subarray(0, full.length - 100));
    const e = await openSafetensorsUrl(url.replace('model.safetensors', 'cut.safetensors')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SafetensorsError);
    expect((e as Error).message).toMatch(/cut\.safetensors: tensor ".*": data_offsets .* go beyond the \d+-byte data section/);
  });
});

describe('downloader', () => {
  test('resumes with Range after the server drops the connection mid-body; progress is monotone', async () => {
    const fx = fixture('tiny-qwen2');
    const body = fx.files.get('model.safetensors')!;
    const half = Math.floor(body.length / 2);
    hub = await startLocalHub(join(root, 'hub'), { truncate: (p, i) => (p.endsWith('tiny-qwen2/resolve/main/model.safetensors') && i === 0 ? half : undefined) });
    const progress: DownloadProgress[] = [];
    const repo = new HubRepo('hf:fixtures/tiny-qwen2', { cache: freshCache(), endpoint: hub.url, onProgress: (p) => progress.push(p), retryDelayMs: 1, chunkBytes: 4096 });
    const blob = await repo.download('model.safetensors');
    expect(same(await bytesOf(blob), body)).toBe(true);
    const gets = hub.requests.filter((q) => q.method === 'GET');
    expect(gets.map((q) => [q.range, q.sent])).toEqual([
      [undefined, half],
      [`bytes=${half}-`, body.length - half],
    ]);
    expect(progress.length).toBeGreaterThan(2);
    for (let i = 1; i < progress.length; i++) expect(progress[i].loaded).toBeGreaterThanOrEqual(progress[i - 1].loaded);
    expect(progress.every((p) => p.total === body.length && !p.fromCache)).toBe(true);
    expect(progress.at(-1)).toMatchObject({ loaded: body.length, done: true, etaSeconds: 0 });
    expect(progress.filter((p) => p.done)).toHaveLength(1);
  });

  test('second download is a cache hit: the server sees no second body request', async () => {
    hub = await startLocalHub(join(root, 'hub'));
    const cache = freshCache();
    const body = fixture('tiny-llama').files.get('model.safetensors')!;
    await new HubRepo('hf:fixtures/tiny-llama', { cache, endpoint: hub.url }).download('model.safetensors');
    const progress: DownloadProgress[] = [];
    const again = await new HubRepo('hf:fixtures/tiny-llama', { cache, endpoint: hub.url, onProgress: (p) => progress.push(p) }).download('model.safetensors');
    expect(same(await bytesOf(again), body)).toBe(true);
    expect(hub.requests.map((q) => q.method)).toEqual(['HEAD', 'GET', 'HEAD']);
    expect(progress).toEqual([expect.objectContaining({ loaded: body.length, total: body.length, done: true, fromCache: true })]);
    // Offline (endpoint gone): the complete cached copy is served.
    await hub.close();
    hub = undefined;
    const offline = await new HubRepo('hf:fixtures/tiny-llama', { cache, endpoint: 'http://127.0.0.1:9' }).download('model.safetensors');
    expect(offline.size).toBe(body.length);
  });

  test('a partial file is never served as complete; a changed remote file restarts the entry', async () => {
    const dir = join(root, 'hub', 'fixtures', 'tiny-llama', 'resolve', 'main');
    writeFileSync(join(dir, 'blob.bin'), new Uint8Array(10_000).fill(1));
    hub = await startLocalHub(join(root, 'hub'), { truncate: (p, i) => (p.endsWith('blob.bin') ? (i === 0 ? 3000 : 0) : undefined) });
    const cache = freshCache();
    const repo = new HubRepo('hf:fixtures/tiny-llama', { cache, endpoint: hub.url, retries: 1, retryDelayMs: 1 });
    await expect(repo.download('blob.bin')).rejects.toThrow();
    const key = { repo: 'fixtures/tiny-llama', revision: 'main', file: 'blob.bin' };
    expect(await cache.state(key)).toMatchObject({ stored: 3000, complete: false });
    await expect(cache.get(key)).rejects.toThrow(/not in the cache as a complete file/);
    await hub.close();
    // The file changes on the server (new size and ETag): the stale partial bytes are discarded.
    writeFileSync(join(dir, 'blob.bin'), new Uint8Array(12_000).fill(2));
    hub = await startLocalHub(join(root, 'hub'));
    const blob = await new HubRepo('hf:fixtures/tiny-llama', { cache, endpoint: hub.url }).download('blob.bin');
    expect(same(await bytesOf(blob), new Uint8Array(12_000).fill(2))).toBe(true);
    expect(hub.requests.filter((q) => q.method === 'GET').map((q) => q.range)).toEqual([undefined]);
  });

  test('Content-Range that does not match the request is an integrity error', async () => {
    hub = await startLocalHub(join(root, 'hub'), { truncate: (p, i) => (p.endsWith('tiny-qwen2/resolve/main/config.json') && i === 0 ? 10 : undefined) });
    // Rewrites the server's Range to one byte later, as a broken proxy might.
    const shifted: typeof fetch = (input, init) => {
      const h = new Headers(init?.headers);
      const m = /^bytes=(\d+)-$/.exec(h.get('Range') ?? '');
      if (m) h.set('Range', `bytes=${Number(m[1]) + 1}-`);
      return fetch(input, { ...init, headers: h });
    };
    const repo = new HubRepo('hf:fixtures/tiny-qwen2', { cache: freshCache(), endpoint: hub.url, fetch: shifted, retryDelayMs: 1 });
    const e = await repo.download('config.json').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HubIntegrityError);
    expect((e as Error).message).toMatch(/asked bytes 10- of \d+, got Content-Range "bytes 11-/);
  });

  test('missing file is a 404 HubHttpError', async () => {
    hub = await startLocalHub(join(root, 'hub'));
    const e = await new HubRepo('hf:fixtures/tiny-llama', { cache: freshCache(), endpoint: hub.url }).download('nope.json').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HubHttpError);
    expect((e as HubHttpError).status).toBe(404);
  });
});

describe('HubRepo.weights', () => {
  test('single-file and sharded checkpoints resolve every tensor', async () => {
    hub = await startLocalHub(join(root, 'hub'));
    for (const name of ['tiny-llama', 'tiny-llama-sharded']) {
      const fx = fixture(name);
      const repo = new HubRepo(`hf:fixtures/${name}`, { cache: freshCache(), endpoint: hub.url });
      const w = await repo.weights();
      expect(new Set(w.names())).toEqual(new Set(fx.tensors.map((t) => t.name)));
      const cfg = await repo.json<{ hidden_size: number; vocab_size: number }>('config.json');
      expect(w.expectTensor('model.embed_tokens.weight', [cfg.vocab_size, cfg.hidden_size]).shape).toEqual([96, 32]);
      expect((await w.readF32('model.norm.weight')).length).toBe(32);
    }
    const shardGets = hub.requests.filter((q) => q.method === 'GET' && q.path.includes('sharded')).map((q) => q.path.split('/').pop());
    expect(new Set(shardGets)).toEqual(new Set(['model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'config.json']));
  });
});
