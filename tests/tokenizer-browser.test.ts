import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { generateFvqaMini } from '../src/data/fvqa-mini.js';
import type { ChatMessage } from '../src/data/types.js';
import { TINY_VLM_IMAGE_SEQ_LEN, loadTokenizer } from '../src/models/tokenizer.js';
import { openBrowser, type TestBrowser } from './browser.js';

type Encode = (c: ChatMessage[][], n: number) => Promise<{ ids: number[]; text: string }[]>;
let b: TestBrowser;
beforeAll(async () => {
  b = await openBrowser();
});
afterAll(async () => {
  await b?.close();
});

test('tiny-vlm tokenizer loads in Chromium and gives the same ids as in Node', async () => {
  const dir = join(import.meta.dirname, '..', 'models', 'tiny-vlm');
  const read = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as object;
  const tok = loadTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
  const sft = generateFvqaMini({ seed: 3, entities: 24, heldOutEntities: 4, testSize: 30, distractorPages: 2 }).splits.sft;
  const conversations = [
    ...sft.filter((_, i) => i % 4 === 0).map((r) => r.prompt),
    [{ role: 'user', content: 'Ünïcödé, 東京 and 😀 <image>\t1907 <answer>x</answer>' }],
  ] as ChatMessage[][];
  const page = await b.page('/tests/pages/tokenizer.html');
  const inBrowser = await page.evaluate(
    ([c, n]) => (window as unknown as { encodeConversations: Encode }).encodeConversations(c, n),
    [conversations, TINY_VLM_IMAGE_SEQ_LEN] as const,
  );
  const inNode = conversations.map((m) => {
    const ids = tok.encodeChat(m, { imageSeqLen: TINY_VLM_IMAGE_SEQ_LEN, addGenerationPrompt: true });
    return { ids, text: tok.decode(ids) };
  });
  expect(inBrowser).toHaveLength(conversations.length);
  expect(inBrowser).toEqual(inNode);
  expect(inNode.at(-1)!.text).toBe(tok.renderChat(conversations.at(-1)!, { imageSeqLen: TINY_VLM_IMAGE_SEQ_LEN, addGenerationPrompt: true }));
  expect(b.errors).toEqual([]);
});
