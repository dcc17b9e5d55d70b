/**
 * A trajectory as one flat token sequence, built segment by segment and never re-tokenised from
 * text (MMSearch-R1 multi-turn rollout): the prompt (chat template up to `Assistant:`), each assistant
 * turn the model wrote (loss mask 1), and each inserted user turn with tool results (loss mask 0,
 * thumbnails as `<image>` runs). Segment texts follow SmolVLM's chat template, so the concatenation
 * equals the template's rendering of the whole conversation (tested), for tiny-vlm and SmolVLM alike.
 */
import { decodeImage } from '../data/image.js';
import { compactInstructions } from '../protocol/prompts.js';
import type { ChatMessage } from '../data/types.js';
import { pixelValues } from '../models/image.js';
import { expandImageTokens, SPECIAL_TOKENS, type LabTokenizer } from '../models/tokenizer.js';

/**
 * Encodes the segments of a conversation for a model with `imageSeqLen` tokens per image. With
 * `compact`, the paper's instruction texts in user turns are replaced by short stand-ins
 * (src/protocol/prompts.ts COMPACT_INSTRUCTIONS), for policies trained from scratch.
 */
export class TurnEncoder {
  constructor(
    readonly tok: LabTokenizer,
    readonly imageSeqLen: number,
    readonly compact = false,
  ) {}

  private user(content: string): string {
    return this.compact ? compactInstructions(content) : content;
  }

  /** `<|im_start|>User: …<end_of_utterance>\nAssistant:` for the first user turn (images expanded). */
  prompt(userContent: string): number[] {
    return this.tok.encodeChat([{ role: 'user', content: this.user(userContent) }], { imageSeqLen: this.imageSeqLen, addGenerationPrompt: true });
  }

  /** An assistant turn as the model writes it after `Assistant:` (the template's `: ` space first). */
  assistant(content: string): number[] {
    return this.tok.encode(` ${content}`);
  }

  /** `<end_of_utterance>\nUser: …<end_of_utterance>\nAssistant:`: closes the assistant turn and inserts a user turn. */
  userTurn(content: string): number[] {
    const role = content.startsWith(SPECIAL_TOKENS.image) ? 'User:' : 'User: ';
    return this.tok.encode(expandImageTokens(`${SPECIAL_TOKENS.endOfUtterance}\n${role}${this.user(content)}${SPECIAL_TOKENS.endOfUtterance}\nAssistant:`, this.imageSeqLen));
  }
}

/** A tokenized conversation: tokens, loss mask (1 = assistant-written), images in token order (PNG/JPEG bytes). */
export interface EncodedConversation {
  tokens: number[];
  lossMask: number[];
  images: Uint8Array[];
}

/**
 * Encodes a whole conversation (a warm-start trajectory: user, assistant, user, assistant, …) with
 * the same segments the rollout produces, so that SFT trains exactly the token layout RL samples.
 * @param contextTurns the first `contextTurns` assistant turns get loss mask 0 (context, not trained):
 *   1 for a RAG-workflow trajectory (`extra_info.search_mode` 'rag'), whose first turn's search was imposed
 * @param observed a prefix of the last context turn that is trained all the same: what the policy saw
 *   (the description of the image that opens a warm-start first turn), not what it decided
 * @throws when the conversation does not start with a user turn, two turns of a role follow each other,
 *   or `observed` does not start the last context turn on a token boundary
 */
export function encodeConversation(enc: TurnEncoder, messages: readonly ChatMessage[], images: readonly Uint8Array[], contextTurns = 0, observed = ''): EncodedConversation {
  if (messages[0]?.role !== 'user') throw new Error('encodeConversation: the first message must be the user turn');
  const tokens: number[] = [];
  const lossMask: number[] = [];
  const push = (ids: number[], mask: 0 | 1) => ids.forEach((id) => (tokens.push(id), lossMask.push(mask)));
  let assistantTurns = 0;
  messages.forEach((m, i) => {
    if (i > 0 && m.role === messages[i - 1].role) throw new Error(`encodeConversation: messages ${i - 1} and ${i} are both ${m.role} turns`);
    if (i === 0) push(enc.prompt(m.content), 0);
    else if (m.role === 'assistant') {
      const ids = enc.assistant(m.content);
      if (assistantTurns++ >= contextTurns) push(ids, 1);
      else if (assistantTurns < contextTurns || !observed) push(ids, 0);
      else {
        const seen = enc.assistant(observed);
        if (!m.content.startsWith(observed) || seen.some((id, j) => id !== ids[j])) {
          throw new Error(`encodeConversation: "${observed}" does not start assistant turn ${assistantTurns - 1} on a token boundary`);
        }
        push(seen, 1);
        push(ids.slice(seen.length), 0);
      }
    }
    else push(enc.userTurn(m.content), 0);
  });
  const placeholders = messages.reduce((n, m) => n + m.content.split(SPECIAL_TOKENS.image).length - 1, 0);
  if (placeholders !== images.length) throw new Error(`encodeConversation: ${placeholders} <image> placeholders but ${images.length} images`);
  return { tokens, lossMask, images: [...images] };
}

/** Pixel values [3·size·size] of PNG/JPEG bytes (see models/image.ts). @throws when undecodable */
export function imagePixels(bytes: Uint8Array, size: number): Float32Array {
  const img = decodeImage(bytes);
  return pixelValues(img.data, img.width, img.height, size);
}

/** Bytes of a `data:image/...;base64,` URL (search thumbnails). @throws on other URLs */
export function dataUrlBytes(url: string): Uint8Array {
  const m = /^data:image\/[a-z+]+;base64,(.*)$/i.exec(url);
  if (!m) throw new Error(`thumbnail is not a base64 data: URL: ${url.slice(0, 60)}`);
  const bin = atob(m[1]);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

