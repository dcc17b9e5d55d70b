import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, test } from 'vitest';
import { DEFAULT_TRAIN_TOKENIZER, preTokenize, trainBpe, trainTokenizer } from '../../scripts/train-tokenizer.js';
import { generateFvqaMini, type FvqaMini } from '../data/fvqa-mini.js';
import type { ChatMessage } from '../data/types.js';
import {
  PROTOCOL_TAGS, SMOLVLM_IMAGE_SEQ_LEN, SPECIAL_TOKENS, TINY_VLM_IMAGE_SEQ_LEN, expandImageTokens, loadTokenizer, toContentParts,
  type LabTokenizer,
} from './tokenizer.js';

const dir = join(import.meta.dirname, '..', '..', 'models', 'tiny-vlm');
const committed = {
  tokenizerJson: readFileSync(join(dir, 'tokenizer.json'), 'utf8'),
  tokenizerConfigJson: readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'),
};
let fresh: { tokenizerJson: string; tokenizerConfigJson: string };
let tok: LabTokenizer;
let world: FvqaMini;
// Training the tokenizer takes minutes of one core (128 s with a training run beside it): past the 120 s default.
beforeAll(() => {
  fresh = trainTokenizer();
  tok = loadTokenizer(JSON.parse(committed.tokenizerJson), JSON.parse(committed.tokenizerConfigJson));
  world = generateFvqaMini({ seed: 1 });
}, 600_000);

test('BPE training merges the most frequent pair first, ties to the smaller pair, and stops below count 2', () => {
  const counts = new Map([['abc', 3], ['abd', 2], ['cd', 2], ['xy', 1]]);
  expect(trainBpe(counts, 10)).toEqual([['a', 'b'], ['ab', 'c'], ['ab', 'd'], ['c', 'd']]);
  expect(trainBpe(counts, 2)).toEqual([['a', 'b'], ['ab', 'c']]);
});

test('pre-tokenization splits off added tokens, single digits and GPT-2 words, as byte symbols', () => {
  expect(preTokenize("Year 1907, it's <answer>ok</answer>\n")).toEqual(['Year', 'Ġ', '1', '9', '0', '7', ',', 'Ġit', "'s", 'Ġ', 'ok', 'Ċ']);
  expect(preTokenize('café')).toEqual(['cafÃ©']);
});

// The committed files were this trainer's output on FVQA-mini's wording before the reproduction run's data
// changes (fact sentences, warm-start reasoning); they are kept because that run's checkpoints use their ids.
// So they are checked as a fit to today's corpus, not byte for byte.
test('the trainer is deterministic; the committed tokenizer has its layout and compresses today\'s corpus about as well', () => {
  const again = trainTokenizer();
  expect(again.tokenizerJson).toBe(fresh.tokenizerJson);
  expect(again.tokenizerConfigJson).toBe(fresh.tokenizerConfigJson);
  expect(committed.tokenizerConfigJson).toBe(fresh.tokenizerConfigJson);
  expect(tok.vocabSize).toBe(DEFAULT_TRAIN_TOKENIZER.vocabSize);
  const now = loadTokenizer(JSON.parse(fresh.tokenizerJson), JSON.parse(fresh.tokenizerConfigJson));
  const texts = [...world.splits.sft.flatMap((r) => r.prompt.map((m) => m.content)), ...world.corpus.pages.map((p) => p.text)];
  const count = (t: LabTokenizer) => texts.reduce((n, x) => n + t.encode(x).length, 0);
  expect(count(tok) / count(now)).toBeLessThan(1.1);
  // Specials, tags and byte symbols keep their ids: only merges differ.
  const vocab = (json: string) => JSON.parse(json).model.vocab as Record<string, number>;
  const [c, f] = [vocab(committed.tokenizerJson), vocab(fresh.tokenizerJson)];
  for (const [k, id] of Object.entries(f)) if (id < 274) expect(c[k], k).toBe(id);
});

// models/tiny-vlm-name-pieces, the caption recipe's model folder (recipes/fvqa-mini-caption.json), is today's output.
test('models/tiny-vlm-name-pieces is the trainer\'s output byte for byte, with tiny-vlm\'s config', () => {
  const np = join(dir, '..', 'tiny-vlm-name-pieces');
  expect(readFileSync(join(np, 'tokenizer.json'), 'utf8')).toBe(fresh.tokenizerJson);
  expect(readFileSync(join(np, 'tokenizer_config.json'), 'utf8')).toBe(fresh.tokenizerConfigJson);
  expect(readFileSync(join(np, 'config.json'), 'utf8')).toBe(readFileSync(join(dir, 'config.json'), 'utf8'));
});

test("the trainer splits creature names into pieces, never whole: every seed's names take about as many tokens, none is one token", () => {
  const trained = loadTokenizer(JSON.parse(fresh.tokenizerJson), JSON.parse(fresh.tokenizerConfigJson));
  const means: number[] = [];
  for (const seed of [1, 2, 3, 4, 5]) {
    const names = generateFvqaMini({ seed, entities: 16, heldOutEntities: 4, testSize: 80 }).entities.map((e) => e.facts.name);
    const lengths = names.flatMap((n) => [trained.encode(` ${n}`).length, trained.encode(n).length]);
    expect(Math.min(...lengths), `seed ${seed}`).toBeGreaterThanOrEqual(2);
    means.push(lengths.reduce((x, y) => x + y, 0) / lengths.length);
  }
  expect(Math.max(...means) - Math.min(...means)).toBeLessThan(0.6);
  expect(Math.max(...means)).toBeLessThan(4.5);
});

test('encode -> decode round-trips every message of generated splits exactly (another seed too)', () => {
  const other = generateFvqaMini({ seed: 7, entities: 24, heldOutEntities: 4, testSize: 30, distractorPages: 2 });
  const texts = [world.splits.sft, world.splits.test, world.splits.heldout, other.splits.sft]
    .flatMap((rows) => rows.flatMap((r) => r.prompt.map((m) => m.content)));
  texts.push(...world.corpus.pages.map((p) => p.text), 'Ünïcödé, 東京 and 😀 survive\t\r\n  spaces  ', '');
  let mismatches = 0;
  for (const t of texts) if (tok.decode(tok.encode(t)) !== t) mismatches++;
  expect(mismatches).toBe(0);
  expect(texts.length).toBeGreaterThan(2000);
});

test('specials and protocol tags are single tokens with distinct ids; only specials are skipped on decode', () => {
  const all = [...Object.values(SPECIAL_TOKENS), ...PROTOCOL_TAGS];
  for (const t of all) {
    expect(tok.encode(t)).toHaveLength(1);
    expect(tok.decode(tok.encode(t))).toBe(t);
  }
  const ids = [...Object.values(tok.specialIds), ...Object.values(tok.tagIds)];
  expect(new Set(ids).size).toBe(all.length);
  for (const tag of PROTOCOL_TAGS) expect(tok.encode(`x${tag}y`)).toEqual([...tok.encode('x'), tok.tagIds[tag], ...tok.encode('y')]);
  const turn = '<reason>look</reason><search><img></search><end_of_utterance>';
  expect(tok.decode(tok.encode(turn), { skipSpecialTokens: true })).toBe('<reason>look</reason><search><img></search>');
});

test("the chat template renders SmolVLM's format", () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: '<image>Which region is this creature native to?' },
    { role: 'assistant', content: '<reason>Unsure.</reason><search><img></search>' },
    { role: 'user', content: 'Searched results: <information>1. image: <image>\ntitle: Plalox</information>' },
  ];
  expect(tok.renderChat(messages, { addGenerationPrompt: true })).toBe(
    '<|im_start|>User:<image>Which region is this creature native to?<end_of_utterance>\n' +
      'Assistant: <reason>Unsure.</reason><search><img></search><end_of_utterance>\n' +
      'User: Searched results: <information>1. image: <image>\ntitle: Plalox</information><end_of_utterance>\n' +
      'Assistant:',
  );
  expect(tok.renderChat(messages.slice(0, 2))).toBe(
    '<|im_start|>User:<image>Which region is this creature native to?<end_of_utterance>\n' +
      'Assistant: <reason>Unsure.</reason><search><img></search><end_of_utterance>\n',
  );
  expect(toContentParts('a<image><image>b')).toEqual([{ type: 'text', text: 'a' }, { type: 'image' }, { type: 'image' }, { type: 'text', text: 'b' }]);
});

test("images expand as SmolVLM's processor does without splitting", () => {
  expect(expandImageTokens('x <image>y', 3)).toBe('x <fake_token_around_image><global-img><image><image><image><fake_token_around_image>y');
  expect(() => expandImageTokens('<image>', 0)).toThrow(/positive integer/);
  const s = tok.specialIds;
  const row = world.splits.sft.find((r) => r.images.length === 6)!;
  for (const n of [TINY_VLM_IMAGE_SEQ_LEN, SMOLVLM_IMAGE_SEQ_LEN]) {
    const ids = tok.encodeChat(row.prompt, { imageSeqLen: n });
    const count = (id: number) => ids.filter((x) => x === id).length;
    expect([count(s.image), count(s.globalImg), count(s.fakeTokenAroundImage)]).toEqual([6 * n, 6, 12]);
    const start = ids.indexOf(s.fakeTokenAroundImage);
    expect(ids.slice(start, start + n + 3)).toEqual([s.fakeTokenAroundImage, s.globalImg, ...Array<number>(n).fill(s.image), s.fakeTokenAroundImage]);
  }
});

test('a trajectory encodes as the concatenation of its turns, so rollouts append tokens without re-tokenising', () => {
  for (const row of world.splits.sft.filter((r) => r.prompt.length > 2)) {
    const full = tok.encodeChat(row.prompt, { imageSeqLen: TINY_VLM_IMAGE_SEQ_LEN });
    for (let k = 1; k < row.prompt.length; k++) {
      const opts = { imageSeqLen: TINY_VLM_IMAGE_SEQ_LEN, addGenerationPrompt: row.prompt[k].role === 'assistant' };
      const prefix = tok.encodeChat(row.prompt.slice(0, k), opts);
      expect(full.slice(0, prefix.length)).toEqual(prefix);
    }
  }
});

test('tokens per prompt and per SFT trajectory are well below their characters, and fit model_max_length', () => {
  const stats = (rows: FvqaMini['splits']['sft']) => {
    let tokens = 0;
    let chars = 0;
    let max = 0;
    for (const r of rows) {
      const n = tok.encodeChat(r.prompt, { imageSeqLen: TINY_VLM_IMAGE_SEQ_LEN }).length;
      tokens += n;
      max = Math.max(max, n);
      chars += tok.renderChat(r.prompt).length;
    }
    return { meanTokens: tokens / rows.length, meanChars: chars / rows.length, maxTokens: max };
  };
  const prompts = stats(world.splits.train);
  const sft = stats(world.splits.sft);
  console.log(`tiny-vlm tokenizer, image_seq_len ${TINY_VLM_IMAGE_SEQ_LEN}: prompt`, prompts, 'SFT trajectory', sft);
  expect(sft.meanTokens).toBeLessThan(sft.meanChars / 3);
  expect(prompts.meanTokens).toBeLessThan(prompts.meanChars / 3);
  expect(sft.maxTokens).toBeLessThanOrEqual(tok.modelMaxLength);
});

test('loading fails with the name of a missing special token', () => {
  const json = JSON.parse(committed.tokenizerJson) as { added_tokens: { content: string }[]; model: { vocab: Record<string, number> } };
  json.added_tokens = json.added_tokens.filter((t) => t.content !== '<global-img>');
  delete json.model.vocab['<global-img>'];
  expect(() => loadTokenizer(json, JSON.parse(committed.tokenizerConfigJson))).toThrow('tokenizer has no special token <global-img> (globalImg)');
});
