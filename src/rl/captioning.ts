/**
 * Captioning: SFT of a policy on captions of FVQA-mini creatures it has never seen, one fresh random look per
 * caption, and greedy captions of other unseen looks read back attribute by attribute (issue 15,
 * docs/fvqa-mini-warm-start.md). The recipe's `caption` stage runs it before the warm start (LLaVA's stage 1,
 * feature alignment on image-caption pairs, in miniature): at the warm start's learning rate (3e-3) the
 * language model never learns to read image tokens, at 3e-4 on captions it does, and the warm start keeps it.
 * The perception probe (scripts/perception-probe.ts) runs the same steps apart from everything else a warm start
 * teaches. The caption is what a warm-start first turn opens with (`<reason>A striped red star, 3 marks.</reason>`),
 * after the image and a question, in the chat layout SFT and the rollout use (conversation.ts).
 */
import * as E from '../engine/index.js';
import type { EntityLook } from '../data/look.js';
import { describeLook, LOOK_ATTRIBUTES, readDescribedLook } from '../data/questions.js';
import { randomLook } from '../data/world.js';
import { renderLookPng } from '../data/render.js';
import { DecodeSession } from '../models/generate.js';
import type { CausalModel } from '../models/llama.js';
import type { LabTokenizer } from '../models/tokenizer.js';
import { encodeConversation, imagePixels, type TurnEncoder } from './conversation.js';
import { sftSchedule } from './schedule.js';
import { sftStep, type TrainSequence } from './steps.js';

export const CAPTION_QUESTION = '<image>What does this creature look like?';
/**
 * The caption conversation of one image: the question (loss mask 0) and `<reason>` + describeLook + `</reason>`
 * (loss mask 1), as a TrainSequence for sftStep.
 */
export function captionSequence(enc: TurnEncoder, look: EntityLook, png: Uint8Array): TrainSequence {
  const c = encodeConversation(enc, [{ role: 'user', content: CAPTION_QUESTION }, { role: 'assistant', content: `<reason>${describeLook(look)}</reason>` }], [png]);
  return { tokens: c.tokens, completion_mask: c.lossMask, images: c.images };
}

export interface PerceptionProbeOptions {
  /** Peak learning rate of sftSchedule (warmup over warmupRatio of the steps, then cosine decay to 0.1x). */
  learningRate: number;
  warmupRatio: number;
  /** Optimizer steps; each trains `batchSize` captions of fresh looks (each look and image seen once). */
  steps: number;
  batchSize: number;
  /** Evaluate every this many steps (and after the last). */
  evalEvery: number;
  /** Unseen looks captioned at each evaluation (the same ones every time). */
  evalLooks: number;
  /** Seeds the looks and the images' jitter (train and evaluation draw from separate streams). */
  seed: number;
  /** image_size of the model's vision tower. */
  imageSize: number;
  weightDecay?: number;
  maxGradNorm?: number;
}

/** One evaluation: percent of the unseen looks whose greedy caption states each attribute right. */
export interface PerceptionProbeRow {
  step: number;
  /** Mean caption loss (nats per trained token) over the steps since the last row. */
  loss: number;
  /** Captions that readDescribedLook could parse, percent. */
  parsed: number;
  pattern: number;
  colour: number;
  shape: number;
  marks: number;
}

/**
 * Greedy replies to `prompts` (token ids of a user turn and the assistant prefix, as TurnEncoder.prompt
 * writes them), each with one image (PNG bytes, resized to `imageSize`), in batches of 32 left-padded rows,
 * until `stop` holds for a reply's text or `maxNewTokens` tokens. Shared by the caption and name-copy read-backs.
 * @returns the decoded replies, in prompt order
 */
export async function greedyImageReplies(model: CausalModel & { imageSeqLen: number }, tok: LabTokenizer, prompts: readonly number[][], pngs: readonly Uint8Array[], imageSize: number, maxNewTokens: number, stop: (text: string) => boolean): Promise<string[]> {
  const replies: string[] = [];
  for (let i = 0; i < prompts.length; i += 32) {
    const batch = prompts.slice(i, i + 32);
    const session = new DecodeSession(model, batch.length, Math.max(...batch.map((p) => p.length)) + maxNewTokens + 1);
    try {
      await session.append(batch.map((ids, k) => ({ ids, images: E.fromArray(model.backend, imagePixels(pngs[i + k], imageSize), [1, 3, imageSize, imageSize]) })));
      const out = await session.generate({ maxNewTokens, sampling: { temperature: 0, rng: new E.Rng(0) }, stop: (_, t) => stop(tok.decode(t)) });
      for (const t of out.tokens) replies.push(tok.decode(t));
    } finally {
      session.dispose();
    }
  }
  return replies;
}

/**
 * Greedy captions of `looks` (rendered with jitter from `seed`), read back with readDescribedLook.
 * @returns percent right per attribute (a caption that does not parse counts as wrong on every attribute)
 */
export async function captionAccuracy(model: CausalModel & { imageSeqLen: number }, tok: LabTokenizer, enc: TurnEncoder, looks: readonly EntityLook[], seed: number, imageSize: number): Promise<Omit<PerceptionProbeRow, 'step' | 'loss'>> {
  const right = { parsed: 0, pattern: 0, colour: 0, shape: 0, marks: 0 };
  const prompt = enc.prompt(CAPTION_QUESTION);
  const maxNew = 2 * enc.assistant(`<reason>${describeLook({ shape: 'triangle', colour: 'purple', pattern: 'checkered', marks: 6, background: 0 })}</reason>`).length;
  const pngs = looks.map((look, k) => renderLookPng(look, { seed, stream: `probe-eval:${k}` }));
  const replies = await greedyImageReplies(model, tok, looks.map(() => prompt), pngs, imageSize, maxNew, (text) => text.includes('</reason>'));
  replies.forEach((reply, k) => {
    const got = readDescribedLook(reply.trim());
    if (!got) return;
    right.parsed++;
    for (const a of LOOK_ATTRIBUTES) if (got[a] === looks[k][a]) right[a]++;
  });
  const pct = (n: number) => Math.round((1000 * n) / looks.length) / 10;
  return { parsed: pct(right.parsed), pattern: pct(right.pattern), colour: pct(right.colour), shape: pct(right.shape), marks: pct(right.marks) };
}

/**
 * The caption looks of a seed, drawn in order: step k trains looks k*batchSize .. (k+1)*batchSize - 1.
 * `skipSteps` steps' looks are drawn and dropped, so that a resumed stage trains what an unbroken one would.
 */
export function captionLookStream(seed: number, batchSize: number, skipSteps = 0): E.Rng {
  const rng = E.Rng.stream(seed, 'probe-train-looks');
  for (let i = 0; i < skipSteps * batchSize; i++) randomLook(rng);
  return rng;
}

/** One optimizer step's captions: `batchSize` fresh looks from `looks` (captionLookStream), each rendered once with jitter from (seed, step). */
export function captionBatch(enc: TurnEncoder, looks: E.Rng, seed: number, step: number, batchSize: number): TrainSequence[] {
  return Array.from({ length: batchSize }, (_, k) => {
    const look = randomLook(looks);
    return captionSequence(enc, look, renderLookPng(look, { seed, stream: `probe-train:${step}:${k}` }));
  });
}

/** `n` unseen looks to caption at evaluation (their own stream: never among the training looks' draws). */
export function captionEvalLooks(seed: number, n: number): EntityLook[] {
  const rng = E.Rng.stream(seed, 'probe-eval-looks');
  return Array.from({ length: n }, () => randomLook(rng));
}

/**
 * Trains `model` in place on captions of fresh looks and evaluates it on `evalLooks` unseen ones every
 * `evalEvery` steps. AdamW as the warm start's SFT (transformers' defaults, weight decay 0.01, max_grad_norm 1);
 * the same steps as the recipe's caption stage (Trainer).
 * @param onRow called with each evaluation as it is made (progress)
 * @throws Error when steps, batchSize, evalEvery or evalLooks is not a positive integer
 */
export async function perceptionProbe(
  model: CausalModel & { imageSeqLen: number },
  tok: LabTokenizer,
  enc: TurnEncoder,
  o: PerceptionProbeOptions,
  onRow?: (row: PerceptionProbeRow) => void,
): Promise<PerceptionProbeRow[]> {
  for (const k of ['steps', 'batchSize', 'evalEvery', 'evalLooks'] as const)
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`perceptionProbe: ${k} must be a positive integer, got ${o[k]}`);
  const looks = captionLookStream(o.seed, o.batchSize);
  const evalLooks = captionEvalLooks(o.seed, o.evalLooks);
  const params = model.parameters();
  const optimizer = new E.AdamW(params, { lr: o.learningRate, weightDecay: o.weightDecay ?? 0.01 });
  const schedule = sftSchedule({ learning_rate: o.learningRate, warmup_ratio: o.warmupRatio }, o.steps);
  const rows: PerceptionProbeRow[] = [];
  let lossSum = 0, lossSteps = 0;
  try {
    for (let step = 0; step < o.steps; step++) {
      const seqs = captionBatch(enc, looks, o.seed, step, o.batchSize);
      const r = await sftStep(model, seqs, { optimizer, params, maxGradNorm: o.maxGradNorm ?? 1, lr: schedule(step), microBatch: o.batchSize, padId: tok.specialIds.imEnd, imageSize: o.imageSize });
      lossSum += r.loss;
      lossSteps++;
      if ((step + 1) % o.evalEvery === 0 || step === o.steps - 1) {
        const row = { step: step + 1, loss: lossSum / lossSteps, ...(await captionAccuracy(model, tok, enc, evalLooks, o.seed, o.imageSize)) };
        rows.push(row);
        onRow?.(row);
        lossSum = lossSteps = 0;
      }
    }
  } finally {
    optimizer.dispose();
  }
  return rows;
}
