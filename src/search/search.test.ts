import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodeJpeg } from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { loadCorpus } from './corpus.js';
import { readCorpusDir, writeCorpusDir } from './corpus-fs.js';
import { colourLayout, differenceHash, LayoutHashEmbedder } from './embed.js';
import { base64ToBytes, bytesToBase64, decodeImage, sniffImage } from './image.js';
import { LocalSearchIndex } from './local-index.js';
import { IMAGE_PLACEHOLDER } from '../protocol/prompts.js';
import { emptyToolMetrics, parseToolCall, renderImageResults, renderTextResults, SearchBudget } from '../protocol/tools.js';
import { runToolCall } from './run-tool.js';
import { extractiveSummary, splitSentences } from './summarise.js';
import { draw, makeTestCorpus, png, TEST_IMAGES } from './testing.js';
import { cacheKey, normaliseQuery, type SearchTools } from './types.js';

describe('image header and codecs', () => {
  it('reads PNG and JPEG sizes from the header and rejects other bytes', () => {
    expect(sniffImage(png(draw(32, 20, () => [1, 2, 3])))).toEqual({ type: 'png', width: 32, height: 20 });
    const jpg = encodeJpeg({ data: draw(24, 10, () => [9, 9, 9]).data, width: 24, height: 10 }, 90).data;
    expect(sniffImage(new Uint8Array(jpg))).toEqual({ type: 'jpeg', width: 24, height: 10 });
    expect(sniffImage(new TextEncoder().encode('GIF89a not an image at all......'))).toBeNull();
    expect(() => decodeImage(new Uint8Array([0x89, 0x50]))).toThrow(/not a PNG or JPEG/);
  });

  it('round-trips base64 per RFC 4648 test vectors', () => {
    expect(bytesToBase64(new TextEncoder().encode('foobar'))).toBe('Zm9vYmFy');
    expect(bytesToBase64(new TextEncoder().encode('fo'))).toBe('Zm8=');
    expect(new TextDecoder().decode(base64ToBytes('Zm9vYg=='))).toBe('foob');
  });
});

describe('deterministic image embedding', () => {
  it('colour layout of the red|blue halves image is red in columns 0-3, blue in 4-7', () => {
    const layout = colourLayout(TEST_IMAGES.e1);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        expect(Array.from(layout.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3))).toEqual(x < 4 ? [1, 0, 0] : [0, 0, 1]);
      }
    }
  });

  it('dHash is all ones for a left-to-right brightening ramp and all zeros for a horizontally flat image', () => {
    expect(Array.from(differenceHash(TEST_IMAGES.e3))).toEqual(new Array(64).fill(1));
    expect(Array.from(differenceHash(TEST_IMAGES.e2))).toEqual(new Array(64).fill(0));
  });

  it('similarity is 1 for identical images and 0.5 * (1 - mean layout difference) when every hash bit differs', async () => {
    const e = new LayoutHashEmbedder();
    const a = await e.embed(TEST_IMAGES.e3);
    expect(e.similarity(a, a)).toBe(1);
    // Mirror of the ramp: every bit flips; mean |layout diff| over 8 columns of grey.
    const mirror = draw(32, 32, (x) => [(31 - x) * 8, (31 - x) * 8, (31 - x) * 8]);
    const b = await e.embed(mirror);
    const la = colourLayout(TEST_IMAGES.e3), lb = colourLayout(mirror);
    let d = 0;
    for (let i = 0; i < 192; i++) d += Math.abs(la[i] - lb[i]);
    expect(e.similarity(a, b)).toBeCloseTo(0.5 * (1 - d / 192), 6);
  });
});

describe('extractive summary', () => {
  const text = makeTestCorpus().pages[2].text;
  it('splits sentences at terminal punctuation', () => {
    expect(splitSentences('A b. C d? E!  F')).toEqual(['A b.', 'C d?', 'E!', 'F']);
  });
  it('keeps the top sentences by BM25 in page order', () => {
    // Sentences with "bridge": #0 (7 tokens), #2 (12 tokens), #6 (9 tokens); BM25 length
    // normalisation ranks the two shorter ones first; they come back in page order.
    expect(extractiveSummary(text, 'bridge', 2)).toBe('The Amber Bridge crosses the river Lune. A festival is held on the bridge each May.');
    expect(splitSentences(extractiveSummary(text, 'What is the bridge made of?', 5)).length).toBeLessThanOrEqual(5);
  });
  it('returns the first sentences when nothing matches, and short pages whole', () => {
    expect(extractiveSummary(text, 'zebra', 2)).toBe('The Amber Bridge crosses the river Lune. It opened in 1930.');
    expect(extractiveSummary('One. Two.', 'x', 5)).toBe('One. Two.');
  });
});

describe('local search index', async () => {
  const index = await LocalSearchIndex.build(makeTestCorpus());

  it('ranks pages by BM25 and summarises each for the query', async () => {
    const r = await index.textSearch('Which tower houses old maps?', 5);
    expect(r[0]).toMatchObject({ title: 'Verdant Tower', url: 'https://world.test/wiki/e2' });
    expect(r[0].summary).toContain('The tower houses a library of old maps.');
    expect((await index.textSearch('lighthouse keeper', 1)).map((x) => x.title)).toEqual(['Crimson Lighthouse']);
    expect(await index.textSearch('zebra', 5)).toEqual([]);
  });

  it('finds an image again from a JPEG re-encoding and from a noisy copy', async () => {
    const jpg = new Uint8Array(encodeJpeg({ data: TEST_IMAGES.e1.data, width: 32, height: 32 }, 85).data);
    const r1 = await index.imageSearch({ bytes: jpg }, 4);
    expect(r1.map((r) => r.url)).toHaveLength(4);
    expect(r1[0].url).toBe('https://world.test/img/e1');
    expect(r1[0].thumbnail).toMatch(/^data:image\/png;base64,/);
    expect(sniffImage(base64ToBytes(r1[0].thumbnail.split(',')[1]))).toEqual({ type: 'png', width: 32, height: 32 });
    const noisy = draw(32, 32, (x, y) => {
      const [r, g, b] = Array.from(TEST_IMAGES.e4.data.subarray((y * 32 + x) * 4, (y * 32 + x) * 4 + 3));
      const n = ((x * 7 + y * 13) % 41) - 20;
      const c = (v: number) => Math.max(0, Math.min(255, v + n));
      return [c(r), c(g), c(b)];
    });
    expect((await index.imageSearch({ bytes: png(noisy) }, 1))[0].title).toBe('Violet Dome photograph');
    await expect(index.imageSearch({ url: 'https://x.test/a.png' }, 1)).rejects.toThrow(/needs image bytes/);
  });
});

describe('corpus folder format', () => {
  it('writes and reads back a corpus; refuses image paths leaving the folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corpus-'));
    try {
      const corpus = makeTestCorpus();
      await writeCorpusDir(dir, corpus);
      const back = await readCorpusDir(dir);
      expect(back.pages).toEqual(corpus.pages);
      expect(back.images.map((i) => [i.id, i.file, i.pageId, i.png.length])).toEqual(corpus.images.map((i) => [i.id, i.file, i.pageId, i.png.length]));
      writeFileSync(join(dir, 'images.jsonl'), JSON.stringify({ id: 'x', title: 't', url: 'u', file: '../secret.png' }) + '\n');
      await expect(readCorpusDir(dir)).rejects.toThrow(/unsafe file path/);
      writeFileSync(join(dir, 'pages.jsonl'), '{"id": "p1"}\n{broken\n');
      await expect(loadCorpus(async (p) => new Uint8Array(readFileSync(join(dir, p))))).rejects.toThrow(/pages.jsonl line 2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tool-call parsing (tag must close the turn)', () => {
  it.each([
    ['<reason>unknown</reason><search><img></search>', { kind: 'image_search' }],
    ['<reason>x</reason> <search><img></search>\n  ', { kind: 'image_search' }],
    ['<reason>x</reason><text_search> capital of Orm </text_search>', { kind: 'text_search', query: 'capital of Orm' }],
    ['<text_search>first</text_search><text_search>second</text_search>', { kind: 'text_search', query: 'second' }],
    ['<reason>x</reason><answer>Paris</answer>', { kind: 'answer', answer: 'Paris' }],
    ['<reason>x</reason><text_search>q</text_search> then I will answer', { kind: 'none' }],
    ['<search><img></search> and more', { kind: 'none' }],
    ['<text_search>  </text_search>', { kind: 'none' }],
    ['no tags at all', { kind: 'none' }],
    ['</answer>', { kind: 'none' }],
  ])('%j', (turn, want) => {
    expect(parseToolCall(turn)).toEqual(want);
  });
});

describe('per-trajectory search limits', () => {
  it('image once, text twice, never in the last of 3 turns', () => {
    const b = new SearchBudget();
    expect(b.decide({ kind: 'image_search' }, 0)).toBe('execute');
    expect(b.decide({ kind: 'image_search' }, 1)).toBe('end');
    expect(b.decide({ kind: 'text_search', query: 'a' }, 1)).toBe('execute');
    expect(b.decide({ kind: 'text_search', query: 'b' }, 2)).toBe('end');
    expect([b.imageSearches, b.textSearches]).toEqual([1, 1]);
    const c = new SearchBudget({ maxTurns: 5, imageSearch: 0, textSearch: 2 });
    expect(c.decide({ kind: 'image_search' }, 0)).toBe('end');
    expect(c.decide({ kind: 'text_search', query: 'a' }, 0)).toBe('execute');
    expect(c.decide({ kind: 'text_search', query: 'a' }, 1)).toBe('execute');
    expect(c.decide({ kind: 'text_search', query: 'a' }, 2)).toBe('end');
    expect(c.decide({ kind: 'answer', answer: 'x' }, 0)).toBe('end');
  });
});

describe('rendering the <information> turn', () => {
  it('image results: thumbnails inserted as images, in order, before each title', () => {
    const t = renderImageResults([{ title: 'A', url: 'u1', thumbnail: 'data:1' }, { title: 'B', url: 'u2', thumbnail: 'data:2' }], 'Who?');
    expect(t.images).toEqual(['data:1', 'data:2']);
    expect(t.text.startsWith('Searched results: <information>[Image Search Results]')).toBe(true);
    expect(t.text).toContain(`1. image: ${IMAGE_PLACEHOLDER}\ntitle: A\n2. image: ${IMAGE_PLACEHOLDER}\ntitle: B</information>\nOriginal user's question: Who?\n`);
    // parts interleave text and the thumbnails exactly where the placeholders are
    expect(t.parts.filter((p) => p.type === 'image').map((p) => (p as { url: string }).url)).toEqual(['data:1', 'data:2']);
    expect(t.parts.map((p) => (p.type === 'text' ? p.text : IMAGE_PLACEHOLDER)).join('')).toBe(t.text);
    const textOnly = renderImageResults([{ title: 'A', url: 'u1', thumbnail: 'data:1' }], 'Who?', false);
    expect(textOnly.images).toEqual([]);
    expect(textOnly.text).toContain('1. title: A</information>');
  });
  it('text results: "(link) summary" entries', () => {
    const t = renderTextResults([{ title: 'T', url: 'https://a.test', summary: 'S1. S2.' }], 'When?');
    expect(t.text).toContain('1. (https://a.test) S1. S2.</information>\nOriginal user\'s question: When?\n');
    expect(t.images).toEqual([]);
    expect(t.error).toBe(false);
  });
});

describe('runToolCall', () => {
  it('turns a failing tool into an error string and counts it, never throwing', async () => {
    const failing: SearchTools = {
      imageSearch: async () => { throw new Error('backend down'); },
      textSearch: async () => { throw new Error('backend down'); },
    };
    const m = emptyToolMetrics();
    const t = await runToolCall(failing, { kind: 'text_search', query: 'q' }, { question: 'Q', image: { bytes: new Uint8Array() } }, m);
    expect(t.error).toBe(true);
    expect(t.text).toContain('[Text Search Results] There is an error encountered in performing search: backend down.');
    expect(m).toEqual({ imageSearches: 0, textSearches: 1, imageSearchFailures: 0, textSearchFailures: 1 });
  });
  it('runs the local engine end to end', async () => {
    const index = await LocalSearchIndex.build(makeTestCorpus());
    const m = emptyToolMetrics();
    const t = await runToolCall(index, { kind: 'image_search' }, { question: 'Which building?', image: { bytes: png(TEST_IMAGES.e2) } }, m, { k: 2 });
    expect(t.images).toHaveLength(2);
    expect(t.text).toContain('1. image: <image>\ntitle: Verdant Tower photograph');
    expect(m.imageSearches).toBe(1);
  });
});

describe('cache keys', () => {
  it('normalise case and spacing; hash image bytes with SHA-256', async () => {
    expect(normaliseQuery('  Capital   OF\tOrm ')).toBe('capital of orm');
    expect(await cacheKey('local', 'text', 5, 'A  b')).toBe('local|text|5|a b');
    // SHA-256("abc") from FIPS 180-2, appendix B.1.
    expect(await cacheKey('local', 'image', 3, { bytes: new TextEncoder().encode('abc') })).toBe(
      'local|image|3|sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});
