import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { ByteWriter, parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateFvqaMini, SPLITS, type FvqaMini } from './fvqa-mini.js';
import { decodeImage } from './image.js';
import { bufferFromBytes, fvqaSchema, rangeBufferFromUrl, readFvqaParquet, writeFvqaParquet } from './parquet.js';
import { FIXTURE, fixtureBytes } from './testing.js';
import { DatasetFormatError, type FvqaRow } from './types.js';

async function toParquet(rows: FvqaRow[], rowGroupRows?: number): Promise<Uint8Array> {
  const w = new ByteWriter();
  await writeFvqaParquet(rows, w, { rowGroupRows });
  return w.getBytes();
}

async function fromParquet(bytes: Uint8Array, idPrefix = 'row'): Promise<FvqaRow[]> {
  const out: FvqaRow[] = [];
  await readFvqaParquet(bufferFromBytes(bytes), (rows) => void out.push(...rows), { idPrefix });
  return out;
}

async function formatError(p: Promise<unknown>): Promise<DatasetFormatError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(DatasetFormatError);
  return e as DatasetFormatError;
}

let mini: FvqaMini;
beforeAll(() => {
  mini = generateFvqaMini({ seed: 3, entities: 24, heldOutEntities: 4, testSize: 20, distractorPages: 4 });
});

describe('FVQA parquet', () => {
  test('lab -> parquet -> lab keeps every split, field and image byte', async () => {
    for (const s of SPLITS) {
      const rows = mini.splits[s];
      const back = await fromParquet(await toParquet(rows, 50));
      expect(back).toEqual(rows);
    }
    // RAG-workflow warm-start rows keep their mark (the trainer masks their first turn by it).
    const rag = generateFvqaMini({ seed: 3, entities: 12, heldOutEntities: 2, testSize: 8, ragWorkflowShare: 1 }).splits.sft;
    const back = await fromParquet(await toParquet(rag));
    expect(back.filter((r) => r.extra_info?.search_mode === 'rag').length).toBe(rag.filter((r) => r.extra_info?.search_mode === 'rag').length);
    expect(back).toEqual(rag);
  });

  test('our files read back with plain hyparquet in the FVQA layout (candidate_answers as JSON text)', async () => {
    const rows = mini.splits.test.slice(0, 3);
    const raw = await parquetReadObjects({ file: bufferFromBytes(await toParquet(rows)), utf8: false });
    expect(raw.map((r) => JSON.parse(r.reward_model.candidate_answers))).toEqual(rows.map((r) => r.reward_model.candidate_answers));
    expect(raw.map((r) => r.prompt[0].role)).toEqual(['user', 'user', 'user']);
    expect(raw[0].images[0].bytes).toEqual(rows[0].images[0].bytes);
    expect(Object.keys(raw[0])).toEqual(['prompt', 'images', 'reward_model', 'data_source', 'image_urls', 'data_id', 'category', 'extra_info']);
  });

  test('imports the authors\' pyarrow-written mini_data.pq and agrees with a raw read of it', async () => {
    const bytes = fixtureBytes();
    const rows = await fromParquet(bytes, 'mini_data');
    const raw = await parquetReadObjects({ file: await asyncBufferFromFile(FIXTURE), utf8: false });
    expect(rows.length).toBe(raw.length);
    expect(rows.length).toBe(5);
    rows.forEach((r, i) => {
      expect(r.data_id).toBe(`mini_data_${i}`);
      expect(r.category).toBeNull();
      expect(r.data_source).toBe(raw[i].data_source);
      expect(r.reward_model.ground_truth).toBe(raw[i].reward_model.ground_truth);
      expect(r.reward_model.candidate_answers).toEqual(JSON.parse(raw[i].reward_model.candidate_answers));
      expect(r.reward_model.candidate_answers).toContain(r.reward_model.ground_truth);
      expect(r.prompt).toEqual(raw[i].prompt.map((m: { role: string; content: string }) => ({ role: m.role, content: m.content })));
      expect(r.images[0].bytes).toEqual(raw[i].images[0].bytes);
      const img = decodeImage(r.images[0].bytes);
      expect(img.width * img.height).toBeGreaterThan(100 * 100);
    });
    // And it survives our export: fixture -> lab -> parquet -> lab.
    expect(await fromParquet(await toParquet(rows))).toEqual(rows);
  });

  test('bad rows name the row and field', async () => {
    const base = mini.splits.test.slice(0, 4);
    const mutate = (i: number, f: (r: FvqaRow) => FvqaRow) => base.map((r, k) => (k === i ? f(structuredClone(r)) : r));
    const cases: [FvqaRow[], number, string, RegExp][] = [
      [mutate(1, (r) => ({ ...r, reward_model: { ...r.reward_model, ground_truth: '  ' } })), 1, 'reward_model.ground_truth', /empty answer/],
      [mutate(2, (r) => ({ ...r, images: [{ bytes: new Uint8Array([0xff, 0xd8, 0xff, 0, 1, 2]), path: null }] })), 2, 'images[0].bytes', /undecodable/],
      [mutate(3, (r) => ({ ...r, images: [{ bytes: new Uint8Array([1, 2, 3]), path: null }] })), 3, 'images[0].bytes', /undecodable/],
      [mutate(0, (r) => ({ ...r, category: 'maybe' as never })), 0, 'category', /search_free or search_required/],
      [mutate(2, (r) => ({ ...r, prompt: [{ role: 'robot' as never, content: 'x' }] })), 2, 'prompt[0].role', /unknown role/],
      [mutate(1, (r) => ({ ...r, prompt: [] })), 1, 'prompt', /empty/],
    ];
    for (const [rows, row, field, problem] of cases) {
      const e = await formatError(fromParquet(await toParquet(rows)));
      expect([e.row, e.field]).toEqual([row, field]);
      expect(e.message).toMatch(problem);
      expect(e.message).toContain(`row ${row}, field ${field}`);
    }
  });

  test('candidate_answers that are not a JSON list of strings are refused', async () => {
    const rm = (candidate_answers: string) => ({ candidate_answers, ground_truth: 'x', style: 'rule' });
    const img = mini.splits.test[0].images[0].bytes;
    const bytes = parquetWriteBuffer({
      schema: fvqaSchema(false),
      columnData: [
        { name: 'prompt', data: [[{ content: 'q', role: 'user' }], [{ content: 'q', role: 'user' }]] },
        { name: 'images', data: [[{ bytes: img, path: null }], [{ bytes: img, path: null }]] },
        { name: 'reward_model', data: [rm('["x"]'), rm('x, y')] },
        { name: 'data_source', data: ['a', 'a'] },
        { name: 'image_urls', data: [null, null] },
        { name: 'data_id', data: ['a', 'b'] },
        { name: 'category', data: [null, null] },
      ],
    });
    const e = await formatError(fromParquet(new Uint8Array(bytes)));
    expect([e.row, e.field]).toEqual([1, 'reward_model.candidate_answers']);
  });

  test('a missing column, a wrong column type and a truncated file are refused before any row', async () => {
    const full = await toParquet(mini.splits.test);
    const noReward = parquetWriteBuffer({
      columnData: [
        { name: 'prompt', data: [[{ content: 'q', role: 'user' }]] },
        { name: 'images', data: [[{ bytes: new Uint8Array([1]), path: null }]] },
        { name: 'data_source', data: ['a'], type: 'STRING' },
      ],
    });
    let e = await formatError(fromParquet(new Uint8Array(noReward)));
    expect([e.row, e.field, e.problem]).toEqual([null, 'reward_model', 'missing column']);
    const promptIsText = parquetWriteBuffer({
      columnData: [
        { name: 'prompt', data: ['q'], type: 'STRING' },
        { name: 'images', data: [[{ bytes: new Uint8Array([1]), path: null }]] },
        { name: 'reward_model', data: [{ candidate_answers: '[]', ground_truth: 'x', style: 'rule' }] },
        { name: 'data_source', data: ['a'], type: 'STRING' },
      ],
    });
    e = await formatError(fromParquet(new Uint8Array(promptIsText)));
    expect([e.row, e.field]).toEqual([null, 'prompt']);
    expect(e.problem).toMatch(/wrong type/);
    e = await formatError(fromParquet(full.slice(0, full.length - 40)));
    expect(e.message).toMatch(/truncated/);
    e = await formatError(fromParquet(full.slice(0, full.length >> 1)));
    expect(e.message).toMatch(/truncated/);
  });

  test('data pages cut short inside a valid footer give an error naming the rows', async () => {
    const full = await toParquet(mini.splits.test, 5);
    // Zero the middle of the file (row data), keep the footer: reading those row groups must fail.
    const broken = full.slice();
    broken.fill(0, 4, full.length >> 1);
    const e = await formatError(fromParquet(broken));
    expect(e.row).not.toBeNull();
    expect(e.message).toMatch(/^row \d+/);
  });
});

describe('FVQA parquet over HTTP Range', () => {
  let server: Server;
  let base: string;
  const files = new Map<string, Uint8Array>();
  const slices: number[] = [];
  beforeAll(async () => {
    files.set('/mini_data.pq', fixtureBytes());
    files.set('/many-groups.pq', await toParquet(mini.splits.train, 16));
    server = createServer((req, res) => {
      const body = files.get(req.url!.replace('/norange', ''));
      if (!body) return void res.writeHead(404).end();
      const range = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      if (req.method === 'HEAD') return void res.writeHead(200, { 'content-length': body.length }).end();
      if (!range || req.url!.startsWith('/norange')) return void res.writeHead(200, { 'content-length': body.length }).end(body);
      const [s, e] = [Number(range[1]), Number(range[2])];
      slices.push(e - s + 1);
      res.writeHead(206, { 'content-range': `bytes ${s}-${e}/${body.length}`, 'content-length': e - s + 1 }).end(body.subarray(s, e + 1));
    });
    // No idle timeout on the server's side: under load the client could reuse a kept-alive socket the
    // server had just timed out (its 5 s default) and see 'fetch failed' instead of the server's answer.
    server.keepAliveTimeout = 0;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('streams a file in slices no larger than a row group, with byte progress', async () => {
    slices.length = 0;
    const size = files.get('/many-groups.pq')!.length;
    let fetched = 0;
    const file = await rangeBufferFromUrl(`${base}/many-groups.pq`, { onBytes: (n) => (fetched = n) });
    const rows: FvqaRow[] = [];
    const progress: number[] = [];
    await readFvqaParquet(file, (b) => void rows.push(...b), { batchRows: 16, onProgress: (p) => progress.push(p.done) });
    expect(rows).toEqual(mini.splits.train);
    expect(progress.at(-1)).toBe(rows.length);
    expect(fetched).toBeGreaterThanOrEqual(size * 0.9);
    // Every byte once, plus the 64 KiB footer read overlapping the last row groups.
    expect(fetched).toBeLessThan(size + (1 << 16) + 4096);
    // After the footer read, each request is one column chunk of one row group (16 of 100+ rows).
    expect(Math.max(...slices.slice(1))).toBeLessThan(size / 4);
  });

  test('the fixture imports from a URL as from a file', async () => {
    const rows: FvqaRow[] = [];
    await readFvqaParquet(await rangeBufferFromUrl(`${base}/mini_data.pq`), (b) => void rows.push(...b));
    expect(rows).toEqual(await fromParquet(fixtureBytes()));
  });

  test('a server without Range support is refused with a clear message', async () => {
    await expect(rangeBufferFromUrl(`${base}/norange/mini_data.pq`).then((f) => f.slice(0, 10))).rejects.toThrow(/Range/);
  });
});
