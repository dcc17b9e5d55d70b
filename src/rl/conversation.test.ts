/**
 * Segment-wise encoding of warm-start trajectories equals the chat template's rendering of the
 * whole conversation tokenized at once, so SFT and RL see one token layout.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { observedOpening } from '../data/trajectories.js';
import { loadTokenizer, TINY_VLM_IMAGE_SEQ_LEN } from '../models/tokenizer.js';
import { dataUrlBytes, encodeConversation, TurnEncoder } from './conversation.js';

const tok = loadTokenizer(
  JSON.parse(readFileSync(new URL('../../models/tiny-vlm/tokenizer.json', import.meta.url), 'utf8')),
  JSON.parse(readFileSync(new URL('../../models/tiny-vlm/tokenizer_config.json', import.meta.url), 'utf8')),
);

test('segment-wise trajectories equal the whole conversation tokenized with the chat template', () => {
  const data = generateFvqaMini({ seed: 3 });
  const enc = new TurnEncoder(tok, TINY_VLM_IMAGE_SEQ_LEN);
  const rows = data.splits.sft.filter((r) => r.prompt.length >= 4).slice(0, 10).concat(data.splits.sft.filter((r) => r.prompt.length === 2).slice(0, 5));
  expect(rows.some((r) => r.prompt.length === 6)).toBe(true); // image search -> text search -> answer chains included
  for (const r of rows) {
    const e = encodeConversation(enc, r.prompt, r.images.map((i) => i.bytes));
    const whole = tok.encodeChat(r.prompt, { imageSeqLen: TINY_VLM_IMAGE_SEQ_LEN });
    // The template closes the last assistant turn with <end_of_utterance>\n, which the rollout inserts later.
    const tail = tok.encode('<end_of_utterance>\n');
    expect([...e.tokens, ...tail]).toEqual(whole);
    const assistantText = tok.decode(e.tokens.filter((_, i) => e.lossMask[i] === 1));
    expect(assistantText).toBe(r.prompt.filter((m) => m.role === 'assistant').map((m) => ` ${m.content}`).join(''));
    expect(e.tokens.filter((t) => t === tok.specialIds.image)).toHaveLength(r.images.length * TINY_VLM_IMAGE_SEQ_LEN);
  }
});

test('a RAG-workflow trajectory trains every assistant turn but its first (the imposed search)', () => {
  const data = generateFvqaMini({ seed: 3, ragWorkflowShare: 1 });
  const enc = new TurnEncoder(tok, TINY_VLM_IMAGE_SEQ_LEN);
  const row = data.splits.sft.find((r) => r.extra_info?.search_mode === 'rag')!;
  const images = row.images.map((i) => i.bytes);
  const all = encodeConversation(enc, row.prompt, images);
  const rag = encodeConversation(enc, row.prompt, images, 1);
  expect(rag.tokens).toEqual(all.tokens);
  // Trained text: the assistant turns after the first, in order, each after the template's space.
  const assistant = row.prompt.filter((m) => m.role === 'assistant').map((m) => ` ${m.content}`);
  expect(assistant).toHaveLength(3);
  expect(assistant[0]).toContain('<search><img></search>');
  expect(tok.decode(rag.tokens.filter((_, i) => rag.lossMask[i] === 1))).toBe(assistant.slice(1).join(''));
  expect(rag.lossMask.reduce((a, b) => a + b, 0)).toBe(all.lossMask.reduce((a, b) => a + b, 0) - tok.encode(assistant[0]).length);
});

test('the observed look of a RAG-workflow first turn is trained, the rest of that turn is not', () => {
  const data = generateFvqaMini({ seed: 3, ragWorkflowShare: 1 });
  const enc = new TurnEncoder(tok, TINY_VLM_IMAGE_SEQ_LEN);
  const row = data.splits.sft.find((r) => r.extra_info?.search_mode === 'rag')!;
  const images = row.images.map((i) => i.bytes);
  const first = row.prompt[1].content;
  const look = observedOpening(first);
  expect(look).toMatch(/^<reason>A \w+ \w+ \w+, \d marks?\.$/);
  const rag = encodeConversation(enc, row.prompt, images, 1);
  const seen = encodeConversation(enc, row.prompt, images, 1, look);
  expect(seen.tokens).toEqual(rag.tokens);
  const assistant = row.prompt.filter((m) => m.role === 'assistant').map((m) => ` ${m.content}`);
  expect(tok.decode(seen.tokens.filter((_, i) => seen.lossMask[i] === 1))).toBe(` ${look}${assistant.slice(1).join('')}`);
  expect(() => encodeConversation(enc, row.prompt, images, 1, first.slice(0, first.indexOf(',')))).not.toThrow();
  expect(() => encodeConversation(enc, row.prompt, images, 1, 'The top result')).toThrow(/does not start assistant turn 0/);
  expect(observedOpening('<reason>The top result is X.</reason>')).toBe('');
});

test("with recognition_first a reading drill's trained opening ends at its recognition, before the decision", () => {
  const data = generateFvqaMini({ seed: 3, readingDrills: 2, recognitionFirst: 1 });
  const enc = new TurnEncoder(tok, TINY_VLM_IMAGE_SEQ_LEN);
  const row = data.splits.sft.at(-1)!;
  const first = row.prompt[1].content;
  const opening = observedOpening(first);
  expect(opening).toMatch(/^<reason>A \w+ \w+ \w+, \d marks?\. I do not recognise this creature\.$/);
  const seen = encodeConversation(enc, row.prompt, row.images.map((i) => i.bytes), 1, opening);
  const assistant = row.prompt.filter((m) => m.role === 'assistant').map((m) => ` ${m.content}`);
  // Trained: the opening and the later turns; not trained: "I can answer." and the imposed image search.
  expect(tok.decode(seen.tokens.filter((_, i) => seen.lossMask[i] === 1))).toBe(` ${opening}${assistant.slice(1).join('')}`);
  expect(first.slice(opening.length)).toMatch(/^ I can answer\.<\/reason><search><img><\/search>$/);
});

test('bad conversations and thumbnails are rejected with the reason', () => {
  const enc = new TurnEncoder(tok, TINY_VLM_IMAGE_SEQ_LEN);
  expect(() => encodeConversation(enc, [{ role: 'assistant', content: 'x' }], [])).toThrow(/first message must be the user turn/);
  expect(() => encodeConversation(enc, [{ role: 'user', content: '<image> q' }, { role: 'user', content: 'again' }], [new Uint8Array()])).toThrow(/both user turns/);
  expect(() => encodeConversation(enc, [{ role: 'user', content: '<image> q' }], [])).toThrow(/1 <image> placeholders but 0 images/);
  expect(Array.from(dataUrlBytes('data:image/png;base64,AAEC'))).toEqual([0, 1, 2]);
  expect(() => dataUrlBytes('https://example.com/a.png')).toThrow(/not a base64 data: URL/);
});

test('compact instructions shorten every trajectory and keep its structure', () => {
  const data = generateFvqaMini({ seed: 3 });
  const full = new TurnEncoder(tok, TINY_VLM_IMAGE_SEQ_LEN);
  const compact = new TurnEncoder(tok, TINY_VLM_IMAGE_SEQ_LEN, true);
  const row = data.splits.sft.find((r) => r.prompt.length === 6)!;
  const a = encodeConversation(full, row.prompt, row.images.map((i) => i.bytes));
  const b = encodeConversation(compact, row.prompt, row.images.map((i) => i.bytes));
  expect(b.tokens.length).toBeLessThan(a.tokens.length - 250);
  // Same assistant tokens, same images, same number of turns.
  expect(b.tokens.filter((_, i) => b.lossMask[i])).toEqual(a.tokens.filter((_, i) => a.lossMask[i]));
  expect(b.tokens.filter((t) => t === tok.specialIds.image).length).toBe(a.tokens.filter((t) => t === tok.specialIds.image).length);
  const text = tok.decode(b.tokens);
  expect(text).not.toContain('Look at the image carefully');
  // Result headers are shortened too; the hits themselves are kept.
  expect(text).toContain('<information>[Image Search Results]\n1. image:');
  expect(text).toContain('<information>[Text Search Results]\n1. (https://');
});
