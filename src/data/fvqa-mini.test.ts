import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { generateFvqaMini, SPLITS, type FvqaMini } from './fvqa-mini.js';
import { decodeImage, type Rgba } from './image.js';
import { IMAGE_PLACEHOLDER, questionFromUserTurn } from '../protocol/prompts.js';
import { DEFAULT_LIMITS } from '../protocol/tools.js';
import type { FvqaRow } from './types.js';
import { LocalSearchIndex } from '../search/local-index.js';
import { COLOURS } from './look.js';
import { LOOK_ATTRIBUTES, LOOK_VALUES } from './questions.js';
import { randomLook } from './world.js';
import { Rng } from '../engine/random.js';

let w: FvqaMini;
beforeAll(() => {
  w = generateFvqaMini({ seed: 1 });
});

/** Answer normalisation of the MMSearch-R1 reward (lowercase, no punctuation or articles, single spaces). */
const norm = (s: string) =>
  s.toLowerCase().replace(/[^\p{L}\p{N}\s]/gu, ' ').replace(/\b(a|an|the)\b/g, ' ').replace(/\s+/g, ' ').trim();
const accepts = (row: FvqaRow, answer: string) =>
  [row.reward_model.ground_truth, ...row.reward_model.candidate_answers].some((a) => norm(a) === norm(answer));

/** SHA-256 over every split's rows and the corpus; `withImages: false` leaves the image bytes out (text only). */
export function digest(m: FvqaMini, withImages = true): string {
  const h = createHash('sha256');
  for (const s of SPLITS) {
    for (const r of m.splits[s]) {
      h.update(JSON.stringify({ ...r, images: r.images.map((i) => i.path) }));
      if (withImages) for (const i of r.images) h.update(i.bytes);
    }
  }
  h.update(JSON.stringify(m.corpus.pages));
  for (const im of m.corpus.images) {
    h.update(JSON.stringify({ ...im, png: null }));
    if (withImages) h.update(im.png);
  }
  return h.digest('hex');
}

/**
 * Independent reading of a rendered image: body colour (the most frequent colour that is neither
 * background nor a dark mark, nearest palette entry), number of dark marks (connected components),
 * and body shape from the row-width profile of the non-background, non-mark pixels.
 */
function readPixels(img: Rgba): { colour: string; marks: number; shape: string } {
  const { width: W, height: H } = img;
  const px = (x: number, y: number) => Array.from(img.data.subarray((y * W + x) * 4, (y * W + x) * 4 + 3));
  const bg = px(0, 0);
  const counts = new Map<string, { n: number; rgb: number[] }>();
  const dark = new Uint8Array(W * H);
  const rows: [number, number][] = [];
  for (let y = 0; y < H; y++) {
    let lo = -1;
    let hi = -1;
    for (let x = 0; x < W; x++) {
      const p = px(x, y);
      if (Math.max(...p) < 90) dark[y * W + x] = 1;
      else if (Math.hypot(p[0] - bg[0], p[1] - bg[1], p[2] - bg[2]) > 30) {
        const k = p.map((v) => v >> 4).join(',');
        const c = counts.get(k) ?? { n: 0, rgb: p };
        c.n++;
        counts.set(k, c);
        if (lo < 0) lo = x;
        hi = x;
      }
    }
    if (lo >= 0) rows.push([y, hi - lo + 1]);
  }
  const mode = [...counts.values()].sort((a, b) => b.n - a.n)[0].rgb;
  const colour = Object.entries(COLOURS).sort(
    ([, a], [, b]) => Math.hypot(...a.map((v, i) => v - mode[i])) - Math.hypot(...b.map((v, i) => v - mode[i])),
  )[0][0];
  let marks = 0;
  for (let i = 0; i < dark.length; i++) {
    if (dark[i] !== 1) continue;
    marks++;
    const stack = [i];
    dark[i] = 2;
    while (stack.length) {
      const j = stack.pop()!;
      const x = j % W;
      for (const k of [j - W, j + W, x > 0 ? j - 1 : -1, x < W - 1 ? j + 1 : -1]) {
        if (k >= 0 && k < dark.length && dark[k] === 1) {
          dark[k] = 2;
          stack.push(k);
        }
      }
    }
  }
  const height = rows.length;
  const widths = rows.map(([, w]) => w);
  const maxW = Math.max(...widths);
  const fill = widths.reduce((a, b) => a + b, 0) / (height * maxW);
  const widest = widths.indexOf(maxW) / (height - 1);
  const aspect = maxW / height;
  const shape =
    fill > 0.9 ? 'square'
      : fill > 0.7 ? (aspect > 1.08 ? 'hexagon' : 'circle')
        : fill > 0.55 ? 'cross'
          : widest > 0.8 ? 'triangle'
            : widest > 0.45 ? 'diamond' : 'star';
  return { colour, marks, shape };
}

function pooled(img: Rgba, g = 8): Float32Array {
  const out = new Float32Array(g * g * 3);
  const c = img.width / g;
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++)
      for (let k = 0; k < 3; k++) out[(Math.floor(y / c) * g + Math.floor(x / c)) * 3 + k] += img.data[(y * img.width + x) * 4 + k];
  return out;
}

describe('FVQA-mini generator', () => {
  test('same seed gives the same bytes; another seed gives another world', () => {
    expect(digest(generateFvqaMini({ seed: 1 }))).toBe(digest(w));
    expect(digest(generateFvqaMini({ seed: 2 }))).not.toBe(digest(w));
  });

  test('the default options generate exactly what they did before issue 15 (digests pinned before its options existed)', () => {
    // Computed with the generator of commit a23a81a. Text first: a mismatch there is a change of rows or
    // corpus; a mismatch of the full digest only is a change of image bytes (renderer or PNG encoder).
    expect(digest(w, false)).toBe('e71b59c7f0ba11d9efb3080bd86205c5b929728df1262ff9b22d821af747073c');
    expect(digest(w)).toBe('8f7b2b75bd33273e5248e82071dee3c62248ba5b5838530bfaed2c8a352a0a46');
    // recipes/fvqa-mini.json's world (the documented reproduction), with the new options at their defaults spelled out.
    const recipeWorld = generateFvqaMini({ seed: 1, entities: 16, heldOutEntities: 4, testSize: 80, sftSamplesPerPair: 3, decisionNeutral: 0, hazyFactShare: 0, hazyTruthShare: 0 });
    expect(digest(recipeWorld, false)).toBe('9e80ffc151a1437d8faf8291a5bff5d6656760f401877175c0040a03962706f2');
    expect(digest(recipeWorld)).toBe('b8050ef1cd09bac792d513115481b8bb35a8232233fcb5ec2b245d7a0fb77c59');
    expect(recipeWorld.hazyFacts).toEqual([]);
  });

  test('split sizes, categories and the stated test ratio follow the config', () => {
    const { train, test: testRows, heldout } = w.splits;
    const inWorld = w.entities.filter((e) => e.familiarity !== 'held_out').length;
    expect(train.length).toBe(inWorld * (5 * w.config.trainSamplesPerFact + w.config.trainVisualPerEntity));
    expect(testRows.length).toBe(w.config.testSize);
    expect(heldout.length).toBe(w.config.heldOutEntities * 8);
    const fam = new Set(w.entities.filter((e) => e.familiarity === 'familiar').map((e) => e.id));
    const famTest = testRows.filter((r) => fam.has(r.extra_info!.entity_id)).length;
    expect(famTest).toBe(Math.round(w.config.testSize * w.config.testFamiliarShare));
    for (const split of [train, testRows, heldout]) {
      expect(new Set(split.map((r) => r.category))).toEqual(new Set(['search_free', 'search_required']));
    }
  });

  test('splits are disjoint: question instances, images and held-out entities', () => {
    const key = (r: FvqaRow) => createHash('sha256').update(r.images[0].bytes).update(r.extra_info!.question).digest('hex');
    const imageKey = (r: FvqaRow) => createHash('sha256').update(r.images[0].bytes).digest('hex');
    const seen = new Map<string, string>();
    for (const s of SPLITS) {
      for (const r of w.splits[s]) {
        const k = imageKey(r);
        expect(seen.get(k), `${r.data_id} reuses the question image of ${seen.get(k)}`).toBeUndefined();
        seen.set(k, r.data_id);
      }
    }
    const trainKeys = new Set(w.splits.train.map(key));
    expect(w.splits.test.filter((r) => trainKeys.has(key(r)))).toEqual([]);
    const held = new Set(w.entities.filter((e) => e.familiarity === 'held_out').map((e) => e.id));
    expect(held.size).toBe(w.config.heldOutEntities);
    for (const s of ['train', 'test', 'sft'] as const) {
      expect(w.splits[s].filter((r) => held.has(r.extra_info!.entity_id)).map((r) => r.data_id)).toEqual([]);
    }
    expect(w.splits.heldout.every((r) => held.has(r.extra_info!.entity_id))).toBe(true);
    const ids = SPLITS.flatMap((s) => w.splits[s].map((r) => r.data_id));
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('labels: search_required rows need the corpus, search_free rows do not', () => {
    // Warm-start knowledge: what a trajectory answers in its first assistant turn, without any search.
    const known = new Map<string, string[]>();
    for (const r of w.splits.sft) {
      const first = r.prompt.find((m) => m.role === 'assistant')!.content;
      const m = /<answer>(.*)<\/answer>$/.exec(first);
      if (!m) continue;
      const k = `${r.extra_info!.entity_id}/${r.extra_info!.attribute}`;
      known.set(k, [...(known.get(k) ?? []), m[1]]);
    }
    const corpusImages = w.corpus.images.map((im) => ({ im, d: pooled(decodeImage(im.png)) }));
    const imageSearchTop1 = (png: Uint8Array) => {
      const q = pooled(decodeImage(png));
      let best = corpusImages[0];
      let bd = Infinity;
      for (const c of corpusImages) {
        let d = 0;
        for (let j = 0; j < q.length; j++) d += (q[j] - c.d[j]) ** 2;
        if (d < bd) [best, bd] = [c, d];
      }
      return best.im;
    };
    let checked = 0;
    for (const r of [...w.splits.train, ...w.splits.test, ...w.splits.heldout]) {
      const x = r.extra_info!;
      const warm = known.get(`${x.entity_id}/${x.attribute}`) ?? [];
      if (r.category === 'search_required') {
        expect(warm.some((a) => accepts(r, a)), `${r.data_id}: answer is in the warm-start data`).toBe(false);
        // Answerable from the corpus: image search finds the entity, its page states the answer.
        const hit = imageSearchTop1(r.images[0].bytes);
        const page = w.corpus.pages.find((p) => p.id === hit.pageId)!;
        expect(hit.title, `${r.data_id}: image search top-1`).toBe(w.entities.find((e) => e.id === x.entity_id)!.facts.name);
        if (x.question_kind === 'unfamiliar_name') expect(accepts(r, hit.title)).toBe(true);
        else expect(norm(page.text)).toContain(norm(r.reward_model.ground_truth));
      } else if (x.question_kind === 'visual') {
        const seen = readPixels(decodeImage(r.images[0].bytes));
        const answer = x.attribute === 'colour' ? seen.colour : x.attribute === 'shape' ? seen.shape : String(seen.marks);
        expect(accepts(r, answer), `${r.data_id} pixels say ${answer}`).toBe(true);
      } else {
        expect(warm.length, `${r.data_id}: no direct warm-start answer`).toBeGreaterThan(0);
        expect(warm.every((a) => accepts(r, a)), `${r.data_id}: warm-start answers ${warm}`).toBe(true);
      }
      checked++;
    }
    expect(checked).toBe(w.splits.train.length + w.splits.test.length + w.splits.heldout.length);
  });

  test('warm-start trajectories follow the MMSearch-R1 protocol and search at a middling rate', () => {
    const action = /^<reason>[^]*<\/reason>(<search><img><\/search>|<text_search>[^<]+<\/text_search>|<answer>[^<]+<\/answer>)$/;
    const patterns = new Map<string, number>();
    let searchedFree = 0;
    let free = 0;
    let searchedRequired = 0;
    let required = 0;
    for (const r of w.splits.sft) {
      const roles = r.prompt.map((m) => m.role).join(',');
      expect(roles).toMatch(/^user,assistant(,user,assistant)*$/);
      const turns = r.prompt.filter((m) => m.role === 'assistant').map((m) => m.content);
      expect(turns.length).toBeLessThanOrEqual(DEFAULT_LIMITS.maxTurns);
      const acts = turns.map((t) => {
        const m = action.exec(t);
        expect(m, t).not.toBeNull();
        return m![1].startsWith('<search>') ? 'image' : m![1].startsWith('<text_search>') ? 'text' : 'answer';
      });
      const pattern = acts.join('>');
      expect(['answer', 'image>answer', 'image>text>answer']).toContain(pattern);
      patterns.set(pattern, (patterns.get(pattern) ?? 0) + 1);
      const placeholders = r.prompt.reduce((n, m) => n + m.content.split(IMAGE_PLACEHOLDER).length - 1, 0);
      expect(placeholders).toBe(r.images.length);
      expect(questionFromUserTurn(r.prompt[0].content)).toBe(r.extra_info!.question);
      const final = /<answer>(.*)<\/answer>$/.exec(turns.at(-1)!)![1];
      // Searches end correct; only answers without search on search_required questions are wrong guesses.
      if (pattern !== 'answer' || r.category === 'search_free') expect(accepts(r, final), r.data_id).toBe(true);
      else expect(accepts(r, final), r.data_id).toBe(false);
      if (r.category === 'search_free') [free, searchedFree] = [free + 1, searchedFree + +(pattern !== 'answer')];
      else [required, searchedRequired] = [required + 1, searchedRequired + +(pattern !== 'answer')];
    }
    expect(patterns.get('image>text>answer')).toBeGreaterThan(0);
    expect(searchedFree / free).toBeGreaterThan(0.1);
    expect(searchedFree / free).toBeLessThan(0.3);
    expect(searchedRequired / required).toBeGreaterThan(0.7);
    expect(searchedRequired / required).toBeLessThan(0.9);
  });

  test('corpus: one page and one image per entity, distractor pages, consistent references', () => {
    const { pages, images } = w.corpus;
    expect(images.length).toBe(w.entities.length);
    expect(pages.length).toBe(w.entities.length + w.config.distractorPages);
    expect(new Set(pages.map((p) => p.id)).size).toBe(pages.length);
    expect(new Set(images.map((i) => i.file)).size).toBe(images.length);
    for (const im of images) {
      expect(im.file).toMatch(/^images\/[a-z0-9]+\.png$/);
      expect(pages.find((p) => p.id === im.pageId)?.title).toBe(im.title);
      expect(decodeImage(im.png)).toMatchObject({ width: 64, height: 64 });
    }
    for (const p of pages) expect(p.text.split('. ').length).toBeLessThanOrEqual(5);
  });

  test('the warm start\'s text-search queries find the answer in a one-sentence question-focused summary', async () => {
    const index = await LocalSearchIndex.build(w.corpus, { summarySentences: 1 });
    let chains = 0;
    for (const r of w.splits.sft) {
      const query = /<text_search>(.*)<\/text_search>$/.exec(r.prompt.find((m) => /<\/text_search>$/.test(m.content))?.content ?? '')?.[1];
      if (!query) continue;
      const [top] = await index.textSearch(query, 1);
      expect(norm(top.summary), `${r.data_id}: "${query}" -> ${top.summary}`).toContain(norm(r.reward_model.ground_truth));
      expect(top.summary.split('. ').length).toBe(1);
      chains++;
    }
    expect(chains).toBeGreaterThan(50);
  });

  test('sftSamplesPerPair adds warm-start instances with new image samples and keeps the first ones', () => {
    const cfg = { seed: 4, entities: 12, heldOutEntities: 2, testSize: 16 };
    const one = generateFvqaMini(cfg).splits.sft;
    const three = generateFvqaMini({ ...cfg, sftSamplesPerPair: 3 }).splits.sft;
    const key = (r: FvqaRow) => `${r.extra_info!.entity_id}:${r.extra_info!.attribute}`;
    // Every (entity, attribute) pair of the single-sample world appears three times, the first as before.
    const pairs = new Set(one.map(key));
    for (const p of pairs) expect(new Set(three.filter((r) => key(r) === p).map((r) => r.images[0].bytes.join())).size, p).toBeGreaterThanOrEqual(3);
    expect(three.slice(0, one.length)).toEqual(one);
  });

  test('impossible configurations are refused', () => {
    expect(() => generateFvqaMini({ entities: 1000 })).toThrow(/entities/);
    expect(() => generateFvqaMini({ entities: 20, heldOutEntities: 4, testSize: 500 })).toThrow(/testSize/);
    expect(() => generateFvqaMini({ entities: 10, heldOutEntities: 10 })).toThrow(/heldOutEntities/);
  });
});

test('random looks take exactly LOOK_VALUES values per attribute (the chance rows divide by them)', () => {
  const rng = new Rng(5);
  const looks = Array.from({ length: 3000 }, () => randomLook(rng));
  for (const a of LOOK_ATTRIBUTES) expect(new Set(looks.map((l) => l[a])).size, a).toBe(LOOK_VALUES[a]);
});
