/**
 * grpo.max_prompt_length: prompts longer than the limit are left-truncated as TRL does (the last
 * max_prompt_length tokens are kept), and a cut that would reach the image is an error. Checked on the
 * function and through a real rollout of a micro VLM on the float64 CPU backend.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { createModel } from '../models/checkpoint.js';
import { imageSeqLen, parseConfig, type VLMConfig } from '../models/config.js';
import { loadTokenizer } from '../models/tokenizer.js';
import { LocalSearchIndex } from '../search/local-index.js';
import { DEFAULT_LIMITS } from '../protocol/tools.js';
import { TurnEncoder } from './conversation.js';
import { rollout, truncatePromptLeft } from './rollout.js';

describe('truncatePromptLeft', () => {
  const image = new Set([90, 91]);
  // 4 text tokens, an image run (91 90 90 91), 3 text tokens: 11 tokens, the image starts at index 4.
  const prompt = [1, 2, 3, 4, 91, 90, 90, 91, 5, 6, 7];
  test('keeps the last max_prompt_length tokens', () => {
    expect(truncatePromptLeft(prompt, 11, image)).toEqual(prompt);
    expect(truncatePromptLeft(prompt, 20, image)).toEqual(prompt);
    expect(truncatePromptLeft(prompt, 9, image)).toEqual([3, 4, 91, 90, 90, 91, 5, 6, 7]);
    // 7 = 11 - 4: the cut ends right before the image.
    expect(truncatePromptLeft(prompt, 7, image)).toEqual([91, 90, 90, 91, 5, 6, 7]);
  });
  test('a cut into the image is an error naming the field and the smallest limit that keeps the image', () => {
    expect(() => truncatePromptLeft(prompt, 6, image)).toThrow(
      'grpo.max_prompt_length 6: the prompt has 11 tokens and its image starts at token 4, so left truncation would cut image tokens; raise max_prompt_length to at least 7',
    );
    // Without image tokens any cut is allowed.
    expect(truncatePromptLeft([1, 2, 3], 1, image)).toEqual([3]);
  });
});

test('rollout with maxPromptLength: trajectories start with the prompt\'s last tokens; too small a limit is an error', async () => {
  const root = new URL('../../', import.meta.url);
  const tok = loadTokenizer(JSON.parse(readFileSync(new URL('models/tiny-vlm/tokenizer.json', root), 'utf8')), JSON.parse(readFileSync(new URL('models/tiny-vlm/tokenizer_config.json', root), 'utf8')));
  const tiny = JSON.parse(readFileSync(new URL('models/tiny-vlm/config.json', root), 'utf8'));
  const micro = {
    ...tiny,
    vision_config: { ...tiny.vision_config, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 },
    text_config: { ...tiny.text_config, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2 },
  };
  const config = parseConfig(micro);
  const model = createModel(config, new E.CpuBackend(), 1);
  const world = generateFvqaMini({ seed: 3, entities: 16, heldOutEntities: 2, testSize: 8 });
  const tools = await LocalSearchIndex.build(world.corpus);
  const rows = world.splits.train.slice(0, 2);
  const enc = new TurnEncoder(tok, imageSeqLen(config as VLMConfig), true);
  const full = rows.map((r) => enc.prompt(r.prompt[0].content));
  const firstImage = full.map((p) => p.findIndex((id) => id === tok.specialIds.image || id === tok.specialIds.fakeTokenAroundImage || id === tok.specialIds.globalImg));
  // The compact prompt: template and instructions, then the image, then the question.
  expect(Math.min(...firstImage)).toBeGreaterThan(5);
  const opts = (maxPromptLength?: number) => ({
    sampling: { temperature: 1, rng: new E.Rng(5) }, limits: { ...DEFAULT_LIMITS, maxTurns: 1 }, maxTurnTokens: 3, maxCompletionLength: 16,
    resultsPerSearch: 1, imageSize: tiny.vision_config.image_size, withThumbnails: true, compactInstructions: true, maxPromptLength,
  });

  // Cut 5 tokens off the longer prompt (the template's opening and some instruction text), none off a prompt that fits.
  const limit = Math.max(...full.map((p) => p.length)) - 5;
  const { trajectories, stats } = await rollout(model, tok, rows, tools, opts(limit));
  trajectories.forEach((t, r) => {
    const want = full[r].length > limit ? full[r].slice(full[r].length - limit) : full[r];
    expect(t.promptLength).toBe(want.length);
    expect(t.tokens.slice(0, t.promptLength)).toEqual(want);
    expect(t.completion_mask.slice(0, t.promptLength).every((m) => m === 0)).toBe(true);
  });
  expect(stats.truncatedPrompts).toBe(full.filter((p) => p.length > limit).length);
  expect(stats.truncatedPrompts).toBeGreaterThan(0);

  // No limit: the whole prompt.
  const whole = await rollout(model, tok, rows, tools, opts());
  expect(whole.trajectories.map((t) => t.promptLength)).toEqual(full.map((p) => p.length));
  expect(whole.stats.truncatedPrompts).toBe(0);

  // A limit that would cut into the image of the first row.
  const tooSmall = full[0].length - firstImage[0] - 1;
  await expect(rollout(model, tok, rows, tools, opts(tooSmall))).rejects.toThrow(`grpo.max_prompt_length ${tooSmall}: the prompt has ${full[0].length} tokens and its image starts at token ${firstImage[0]}`);
  model.dispose();
}, 120_000);
