/**
 * Name copying: SFT sequences that read a creature's name off an image-search result and write it back, as a
 * warm-start trajectory does after its image search ("The top result is NAME. I need its diet." then the query
 * `NAME diet`, or the name as the answer), for fresh names from the world's name generator (makeName), never a
 * world's own. The recipe's caption stage trains `caption.name_copies` of them per step beside its captions.
 *
 * Why: a policy trained from scratch has no pretraining to copy with, and the heldout split's chains need two
 * exact copies of a name it has never seen (docs/fvqa-mini-warm-start.md, 2026-12-06, fifth session). The
 * warm start's reading drills teach it on some seeds and not on others (41-97% of 64 new names copied). A
 * pretrained VLM (the paper's Qwen2.5-VL) brings this skill, as it brings seeing; this is its miniature, as the
 * captions are LLaVA's stage 1 in miniature.
 */
import * as E from '../engine/index.js';
import { FACT_ATTRIBUTES, TEMPLATES, type FactAttribute } from '../data/questions.js';
import { renderLookPng } from '../data/render.js';
import { readingReasoning, textQuery, topResult } from '../data/trajectories.js';
import { makeName, randomLook } from '../data/world.js';
import type { CausalModel } from '../models/llama.js';
import type { LabTokenizer } from '../models/tokenizer.js';
import { answerAction, assistantTurn, formatImageSearchResults, textSearchAction, toolResultTurn } from '../protocol/prompts.js';
import { greedyImageReplies } from './captioning.js';
import { encodeConversation, type TurnEncoder } from './conversation.js';
import type { TrainSequence } from './steps.js';

/** One copy item: a fresh name, the fact asked about it ('name': the question asks the name itself) and its question. */
export interface CopyItem {
  name: string;
  attribute: FactAttribute;
  question: string;
}

/**
 * The image-search tool turn of a copy item: one result, titled with its name (the protocol's wording); with
 * `withImage` false the result has no image (`1. title: NAME`), as copyBatch trains it.
 */
export const copyToolTurn = (item: CopyItem, withImage = true): string => toolResultTurn('image_search', formatImageSearchResults([{ title: item.name }], withImage), item.question);

/** The assistant turn a copy item trains: the warm start's reply to that tool turn (src/data/trajectories.ts). */
export function copyReply({ name, attribute }: CopyItem): string {
  return attribute === 'name' ? assistantTurn(topResult(name), answerAction(name)) : assistantTurn(readingReasoning(name, attribute), textSearchAction(textQuery(name, attribute)));
}

/** `n` copy items drawn from `rng`: a fresh name each, a fact attribute and one of its question templates. */
export function copyItems(rng: E.Rng, n: number): CopyItem[] {
  return Array.from({ length: n }, () => {
    const attribute = rng.pick(FACT_ATTRIBUTES);
    return { name: makeName(rng), attribute, question: rng.pick(TEMPLATES[attribute]) };
  });
}

/**
 * One optimizer step's copy sequences: `n` fresh items, their search results without an image (text only).
 * Why no image: a result image is a random look that the reply never depends on, and training replies that
 * ignore an image beside captions that must read one cost seed 2 its perception of shapes and marks, with 4 or
 * 8 copies per step (docs/fvqa-mini-warm-start.md, sixth session). Copying a title is text work; the read-back
 * (copyAccuracy) checks that it carries over to results with an image, as the policy meets them.
 * Drawn from a stream of (seed, step) alone, so a resumed stage trains what an unbroken one would.
 * @returns TrainSequences whose loss mask covers the reply only (the tool turn is context)
 */
export function copyBatch(enc: TurnEncoder, seed: number, step: number, n: number): TrainSequence[] {
  return copyItems(E.Rng.stream(seed, `copy-train:${step}`), n).map((item) => {
    const c = encodeConversation(enc, [{ role: 'user', content: copyToolTurn(item, false) }, { role: 'assistant', content: copyReply(item) }], []);
    return { tokens: c.tokens, completion_mask: c.lossMask, images: c.images };
  });
}

/** `n` unseen copy items for evaluation (their own stream: never among the training items' draws). */
export function copyEvalItems(seed: number, n: number): CopyItem[] {
  return copyItems(E.Rng.stream(seed, 'copy-eval'), n);
}

/**
 * How a generated reply copies its item's name: restated in the reasoning ("The top result is NAME."), and
 * written into the action (the text query, or the answer of a name question), each exactly.
 */
export function copyScore(reply: string, item: CopyItem): { reasoning: boolean; action: boolean } {
  const reason = /<reason>([\s\S]*?)<\/reason>/.exec(reply)?.[1] ?? '';
  const action = /<(?:text_search|answer)>([\s\S]*?)<\/(?:text_search|answer)>/.exec(reply)?.[1] ?? '';
  const word = new RegExp(`(^|[^A-Za-z])${item.name}([^A-Za-z]|$)`);
  return { reasoning: reason.includes(topResult(item.name)), action: word.test(action) };
}

/**
 * Greedy replies to `items`' tool turns (each with a random look's image, drawn from `seed`), scored with copyScore.
 * @returns percent of the items whose reply restates the name (`reasoning`) and writes it into its action (`action`)
 */
export async function copyAccuracy(model: CausalModel & { imageSeqLen: number }, tok: LabTokenizer, enc: TurnEncoder, items: readonly CopyItem[], seed: number, imageSize: number): Promise<{ reasoning: number; action: number }> {
  const rng = E.Rng.stream(seed, 'copy-eval-images');
  const pngs = items.map((_, k) => renderLookPng(randomLook(rng), { seed, stream: `copy-eval:${k}` }));
  const maxNew = 2 * Math.max(...items.map((item) => enc.assistant(copyReply(item)).length));
  const replies = await greedyImageReplies(model, tok, items.map((item) => enc.prompt(copyToolTurn(item))), pngs, imageSize, maxNew, (text) => /<\/(text_search|answer)>/.test(text));
  const scores = replies.map((reply, k) => copyScore(reply, items[k]));
  const pct = (n: number) => Math.round((1000 * n) / items.length) / 10;
  return { reasoning: pct(scores.filter((s) => s.reasoning).length), action: pct(scores.filter((s) => s.action).length) };
}
