/**
 * End to end on a micro VLM with the real tokenizer and the local search engine: SFT memorises two
 * warm-start trajectories (a direct answer and an image search -> answer chain); greedy rollouts
 * then replay them through the multi-turn machinery: the search call closes a turn, the local engine
 * runs it, its results come back as inserted tokens (loss mask 0), and the model answers; the
 * trajectory's tokens equal the encoded warm-start conversation.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { gpuBackend } from '../engine/testing.js';
import type { WebGPUBackend } from '../engine/webgpu/backend.js';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { createModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { loadTokenizer } from '../models/tokenizer.js';
import { LocalSearchIndex } from '../search/local-index.js';
import { DEFAULT_LIMITS } from '../protocol/tools.js';
import { encodeConversation, TurnEncoder } from './conversation.js';
import { rollout } from './rollout.js';
import { lossMask, lossMaskedSequenceLogprobs, maskedLogprobs, packBatch, sequenceLogprobs, sftStep, trainedTokens } from './steps.js';
import { meanTrainedTokensPerStep } from './sft-plan.js';

const tok = loadTokenizer(
  JSON.parse(readFileSync(new URL('../../models/tiny-vlm/tokenizer.json', import.meta.url), 'utf8')),
  JSON.parse(readFileSync(new URL('../../models/tiny-vlm/tokenizer_config.json', import.meta.url), 'utf8')),
);
const tinyRaw = JSON.parse(readFileSync(new URL('../../models/tiny-vlm/config.json', import.meta.url), 'utf8'));
const microRaw = {
  ...tinyRaw,
  vision_config: { ...tinyRaw.vision_config, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2 },
  text_config: { ...tinyRaw.text_config, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 },
};

let gpu: WebGPUBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});
afterAll(() => gpu?.ctx.device.destroy());

test('packBatch aligns next-token targets with completion_mask and tool_mask', () => {
  const p = packBatch([{ tokens: [5, 6, 7], completion_mask: [0, 1, 1], tool_mask: [1, 0, 1], images: [] }, { tokens: [8, 9], completion_mask: [0, 1], images: [] }], 2, 64);
  expect(Array.from(p.batch.ids)).toEqual([5, 6, 7, 8, 9, 2]);
  expect(Array.from(p.batch.mask!)).toEqual([1, 1, 1, 1, 1, 0]);
  expect(Array.from(p.targets)).toEqual([6, 7, 2, 9, 2, 2]);
  expect(Array.from(p.completionMask)).toEqual([1, 1, 0, 1, 0, 0]);
  // tool_mask is 1 on padding and where a sequence gives none (TRL pads it with 1).
  expect(Array.from(p.toolMask!)).toEqual([0, 1, 1, 1, 1, 1]);
});

/** The micro VLM on the CPU backend (weights seed 3) and a random stream seeded `seed` for its inputs. */
function microCpuModel(seed: number) {
  const be = new E.CpuBackend();
  const model = createModel(parseConfig(microRaw, 'micro'), be, 3);
  return { be, model, params: model.parameters(), rng: new E.Rng(seed) };
}
/** `n` random token ids in [5, 905), inside the micro model's 1024-token vocabulary. */
const randomTokens = (rng: E.Rng, n: number) => Array.from({ length: n }, () => 5 + rng.int(900));

test("maskedLogprobs and lossMaskedSequenceLogprobs: sequenceLogprobs' values and gradients at the loss-masked positions, without the head at the others", async () => {
  const { be, model, params, rng } = microCpuModel(5);
  const seq = (n: number) => {
    const tokens = randomTokens(rng, n);
    return { tokens, completion_mask: tokens.map(() => (rng.next() < 0.3 ? 1 : 0)), tool_mask: tokens.map(() => (rng.next() < 0.8 ? 1 : 0)), images: [] };
  };
  const p = packBatch([seq(23), seq(17), seq(9)], 2, 64);
  const shape = [p.batch.batch, p.batch.length];
  const m = lossMask(p);
  // A loss weighting each position differently, as GRPO's advantages do: sum(logprobs · w) + sum(entropy · w).
  const w = Float32Array.from(m, (x) => x * (0.5 + rng.next()));
  const run = async (f: () => { logprobs: E.Tensor; entropy: E.Tensor }, weights: Float32Array | null) => {
    const v = await E.scope(async () => {
      const { logprobs, entropy } = f();
      const weigh = (t: E.Tensor) => (weights ? E.mul(t, E.fromArray(be, weights, t.shape)) : t);
      E.add(E.sum(weigh(logprobs)), E.sum(weigh(entropy))).backward();
      return { lp: Array.from((await logprobs.data()) as Float32Array), ent: Array.from((await entropy.data()) as Float32Array) };
    });
    // The vision tower gets no gradient (no images here): null for both.
    const grads = await Promise.all(params.map(async (q) => (q.grad ? Array.from((await q.grad.data()) as Float32Array) : [])));
    E.zeroGrad(params);
    return { ...v, grads };
  };
  const close = (a: number[], b: number[], what: string) => {
    expect(a.length, what).toBe(b.length);
    a.forEach((x, i) => expect(x, `${what}[${i}]`).toBeCloseTo(b[i], 4));
  };
  const sameGrads = (a: number[][], b: number[][]) => {
    expect(a.map((g) => g.length)).toEqual(b.map((g) => g.length));
    expect(a.filter((g) => g.length).length).toBeGreaterThan(10);
    a.forEach((g, k) => close(g, b[k], `grad ${k}`));
  };
  const full = await run(() => sequenceLogprobs(model, p, 0.7, 64), w);
  const atMask = (v: number[]) => v.flatMap((x, i) => (m[i] !== 0 ? [x] : []));
  const masked = await run(() => maskedLogprobs(model, p, 0.7, 64), Float32Array.from(atMask(Array.from(w))));
  expect(masked.lp.length).toBe(m.reduce((a, b) => a + b, 0));
  expect(masked.lp.length).toBeGreaterThan(5);
  close(masked.lp, atMask(full.lp), 'logprobs');
  close(masked.ent, atMask(full.ent), 'entropy');
  sameGrads(masked.grads, full.grads);
  // Spread back to [B, T]: the same values where the mask is 1, 0 elsewhere.
  const spread = await run(() => lossMaskedSequenceLogprobs(model, p, 0.7, 64), w);
  close(spread.lp, full.lp.map((x, i) => x * m[i]), 'spread logprobs');
  close(spread.ent, full.ent.map((x, i) => x * m[i]), 'spread entropy');
  expect(spread.lp.filter((x, i) => m[i] === 0 && x !== 0)).toEqual([]);
  sameGrads(spread.grads, full.grads);
  const untrained = packBatch([{ tokens: [5, 6, 7], completion_mask: [0, 0, 0], images: [] }], 2, 64);
  expect(() => maskedLogprobs(model, untrained, 1, 64)).toThrow('maskedLogprobs: the batch has no loss-masked position');
  // With nothing masked, the whole sequenceLogprobs.
  const whole = await run(() => lossMaskedSequenceLogprobs(model, untrained, 0.7, 64), null);
  const ref = await run(() => sequenceLogprobs(model, untrained, 0.7, 64), null);
  expect(whole.lp).toEqual(ref.lp);
});

test('SFT memorises two trajectories; greedy multi-turn rollouts with the local search engine replay them', async () => {
  const data = generateFvqaMini({ seed: 2 });
  const index = await LocalSearchIndex.build(data.corpus);
  const sft = data.splits.sft;
  // A direct answer, and an image-search chain whose first result is the right entity in the local engine too.
  const direct = sft.find((r) => r.prompt.length === 2 && r.extra_info?.question_kind === 'familiar_fact')!;
  const chain = sft.find((r) => r.prompt.length === 4 && r.extra_info?.question_kind === 'unfamiliar_name')!;
  const enc = new TurnEncoder(tok, 16, true);
  // Re-render the chain's tool turn with the local engine's actual results (as training does).
  const hits = await index.imageSearch({ bytes: chain.images[0].bytes }, 2);
  const { renderImageResults } = await import('../protocol/tools.js');
  const info = renderImageResults(hits, chain.extra_info!.question);
  const { dataUrlBytes } = await import('./conversation.js');
  const chainMsgs = [chain.prompt[0], chain.prompt[1], { role: 'user' as const, content: info.text }, chain.prompt[3]];
  const convs = [
    encodeConversation(enc, direct.prompt, direct.images.map((i) => i.bytes)),
    encodeConversation(enc, chainMsgs, [chain.images[0].bytes, ...info.images.map(dataUrlBytes)]),
  ];
  const model = createModel(parseConfig(microRaw), gpu, 1);
  const params = model.parameters();
  const opt = new E.AdamW(params, { lr: 3e-3, weightDecay: 0 });
  let first = NaN, last = NaN;
  for (let step = 0; step < 150; step++) {
    const r = await sftStep(model, convs.map((c) => ({ ...c, completion_mask: c.lossMask })), { optimizer: opt, params, maxGradNorm: 1, lr: 3e-3, microBatch: 2, padId: tok.specialIds.imEnd, imageSize: 64 });
    if (step === 0) first = r.loss;
    last = r.loss;
    if (r.loss < 0.01) break;
  }
  expect(last).toBeLessThan(first / 20);

  const { trajectories, stats } = await rollout(model, tok, [direct, chain], index, {
    sampling: { temperature: 0, rng: new E.Rng(0) }, limits: DEFAULT_LIMITS, maxTurnTokens: 64, maxCompletionLength: 600,
    resultsPerSearch: 2, imageSize: 64, withThumbnails: true, compactInstructions: true,
  });
  const [d, c] = trajectories;
  expect(d.calls.map((x) => x.kind)).toEqual(['answer']);
  expect(c.calls.map((x) => x.kind)).toEqual(['image_search', 'answer']);
  expect(stats.imageSearches).toBe(1);
  expect(c.toolTurns).toHaveLength(1);
  expect(c.images).toHaveLength(1 + hits.length);
  // The replayed trajectories are token for token the warm-start conversations.
  expect(d.tokens).toEqual(convs[0].tokens);
  expect(c.tokens).toEqual(convs[1].tokens);
  // The warm start trains on the assistant's tokens; the rollout's completion_mask · tool_mask marks the same ones.
  expect(c.completion_mask.map((m, i) => m * c.tool_mask[i])).toEqual(convs[1].lossMask);
  expect(c.tool_mask.slice(c.promptLength).includes(0)).toBe(true);
  expect(c.turns[1]).toBe(chain.prompt[3].content);

  // RAG workflow: in each of the first two turns the policy reasons, then the workflow inserts the
  // action (tool_mask 0): the image search, then the text-search tag, after which the policy writes
  // the query. The direct row answers at once in its warm start, the chain row after the image search.
  const rag = await rollout(model, tok, [direct, chain], index, {
    sampling: { temperature: 0, rng: new E.Rng(0) }, limits: DEFAULT_LIMITS, maxTurnTokens: 64, maxCompletionLength: 600,
    resultsPerSearch: 2, imageSize: 64, withThumbnails: true, compactInstructions: true, mode: 'rag',
  });
  for (const t of rag.trajectories) {
    expect(t.turns[0]).toMatch(/^<reason>[^]*<\/reason><search><img><\/search>$/);
    expect(t.calls[0].kind).toBe('image_search');
    expect(t.toolTurns.length).toBeGreaterThanOrEqual(1);
    // Inserted tags carry tool_mask 0, the policy's reasoning before them (and its query after) 1.
    const at = t.tokens.indexOf(tok.tagIds['<search>']!, t.promptLength);
    expect([t.tool_mask[at - 1], t.tool_mask[at], t.tool_mask[at + 1]]).toEqual([1, 0, 0]);
  }
  // Turn 2: the text-search tag follows the reasoning (closed for the policy when it left it open, as the
  // memorised toy model does after an unseen first turn) and the policy writes the query.
  for (const t of rag.trajectories) {
    expect(t.turns[1]).toMatch(/^<reason>[^]*<\/reason><text_search>/);
    expect(t.turns[1].split('<text_search>')[1]).not.toMatch(/<answer>|<\/answer>/);
    const at = t.tokens.indexOf(tok.tagIds['<text_search>']!, t.promptLength);
    expect([t.tool_mask[at], t.tool_mask[at + 1]]).toEqual([0, 1]);
  }

  // Direct answer: the search tags are suppressed, so the chain row, which searches on demand, answers
  // from memory in its first turn (no search call, no tool turn).
  const direct1 = await rollout(model, tok, [chain], index, {
    sampling: { temperature: 0, rng: new E.Rng(0) }, limits: DEFAULT_LIMITS, maxTurnTokens: 64, maxCompletionLength: 600,
    resultsPerSearch: 2, imageSize: 64, withThumbnails: true, compactInstructions: true, mode: 'direct',
  });
  const dc = direct1.trajectories[0];
  expect(dc.toolTurns).toHaveLength(0);
  expect(dc.turns[0]).not.toMatch(/<search>|<text_search>/);
  expect(dc.tokens.slice(dc.promptLength)).not.toContain(tok.tagIds['<search>']);
  opt.dispose();
  model.dispose();
}, 600_000);

// sft.loss_agg_mode: token-mean divides by the step's own trained tokens, token-sum-norm by a constant per epoch.
test('trainedTokens counts completion_mask x tool_mask after position 0; meanTrainedTokensPerStep is their sum over the steps', () => {
  expect(trainedTokens({ completion_mask: [1, 1, 0, 1, 1], tool_mask: [1, 1, 1, 0, 1] })).toBe(2);
  expect(trainedTokens({ completion_mask: [0, 1, 1] })).toBe(2);
  // 5 trajectories in batches of 2: 3 steps, 20 tokens.
  expect(meanTrainedTokensPerStep([3, 5, 0, 4, 8], 2)).toBeCloseTo(20 / 3, 12);
  expect(meanTrainedTokensPerStep([7], 8)).toBe(7);
  expect(() => meanTrainedTokensPerStep([0, 0], 2)).toThrow(/no trained token/);
});

test("sftStep with a normalizer: the same loss per token, gradients scaled by the batch's tokens over the normalizer", async () => {
  const { model, params, rng } = microCpuModel(11);
  const seq = (n: number) => {
    const tokens = randomTokens(rng, n);
    return { tokens, completion_mask: tokens.map((_, t) => (t > n / 2 ? 1 : 0)), images: [] };
  };
  const seqs = [seq(12), seq(20), seq(7)];
  const total = seqs.reduce((n, s) => n + trainedTokens(s), 0);
  // lr 0: the parameters stay put, so both calls see the same model; gradNorm is measured before clipping.
  const optimizer = new E.AdamW(params, { lr: 0, weightDecay: 0 });
  const step = (normalizer?: number) => sftStep(model, seqs, { optimizer, params, maxGradNorm: 0, lr: 0, microBatch: 2, padId: 2, imageSize: 64, normalizer });
  const mean = await step();
  const norm = await step(40);
  expect(norm.loss).toBeCloseTo(mean.loss, 5);
  expect(norm.tokens).toBe(total);
  expect(norm.gradNorm / mean.gradNorm).toBeCloseTo(total / 40, 5);
  await expect(step(0)).rejects.toThrow(/normalizer must be > 0/);
});
