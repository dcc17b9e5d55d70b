/**
 * Tokenizers of the lab's policies, loaded from the JSON of tokenizer.json and tokenizer_config.json
 * with the two libraries transformers.js builds its `PreTrainedTokenizer` on (`@huggingface/tokenizers`
 * and `@huggingface/jinja` for the chat template, used the same way), so the same code runs in the
 * browser and in Node with no hub access, and the lab's bundle does not carry transformers.js with its
 * ONNX runtime: tiny-vlm's own byte-level BPE (models/tiny-vlm/, trained by scripts/train-tokenizer.ts)
 * and SmolVLM-256M/500M-Instruct's.
 *
 * Conversations follow SmolVLM's (Idefics3) format: its chat template, rendered by the tokenizer's
 * `apply_chat_template`, then each `<image>` expanded the way SmolVLM's processor does without image
 * splitting (transformers' Idefics3Processor `_prompt_single_image`):
 *   `<fake_token_around_image><global-img>` + `<image>` x image_seq_len + `<fake_token_around_image>`.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ChatMessage } from '../data/types.js';

/**
 * Special tokens as SmolVLM-256M-Instruct's tokenizer_config.json names them: bos `<|im_start|>` opens
 * a conversation, eos `<end_of_utterance>` closes every turn, pad `<|im_end|>`, unk `<|endoftext|>`;
 * `<image>`, `<fake_token_around_image>` and `<global-img>` carry images (Idefics3).
 */
export const SPECIAL_TOKENS = {
  endOfText: '<|endoftext|>',
  imStart: '<|im_start|>',
  imEnd: '<|im_end|>',
  endOfUtterance: '<end_of_utterance>',
  image: '<image>',
  fakeTokenAroundImage: '<fake_token_around_image>',
  globalImg: '<global-img>',
} as const;
export type SpecialTokenName = keyof typeof SPECIAL_TOKENS;

/** The MMSearch-R1 protocol tags (src/protocol/prompts.ts); added, non-special tokens in tiny-vlm's vocabulary. */
export const PROTOCOL_TAGS = [
  '<reason>', '</reason>', '<answer>', '</answer>', '<search>', '</search>', '<img>',
  '<text_search>', '</text_search>', '<information>', '</information>',
] as const;
export type ProtocolTag = (typeof PROTOCOL_TAGS)[number];

/**
 * SmolVLM-256M-Instruct's chat template, verbatim (tokenizer_config.json / chat_template.json): roles
 * capitalised, `:` glued to the role when the content opens with an image (else `: `), every turn closed
 * by `<end_of_utterance>\n`, generation prompt `Assistant:` with no trailing space.
 */
export const CHAT_TEMPLATE =
  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

/** Image tokens per image without splitting: SmolVLM-256M/500M (512 px, patch 16, pixel shuffle 4) and tiny-vlm. */
export const SMOLVLM_IMAGE_SEQ_LEN = 64;
export const TINY_VLM_IMAGE_SEQ_LEN = 16;

/** One content part of a message in the structured form the chat template expects. */
export type ContentPart = { type: 'text'; text: string } | { type: 'image' };

/** Options of {@link LabTokenizer.encodeChat} and {@link LabTokenizer.renderChat}. */
export interface ChatOptions {
  /** `<image>` tokens per image (64 for SmolVLM-256M, 16 for tiny-vlm); omitted: placeholders stay unexpanded. */
  imageSeqLen?: number;
  /** End with `Assistant:` so that the model writes the next turn (default false). */
  addGenerationPrompt?: boolean;
}

/** A loaded tokenizer with the lab's chat conventions. */
export interface LabTokenizer {
  /** The tokenizers.js tokenizer, for anything not wrapped here. */
  readonly tokenizer: Tokenizer;
  /** tokenizer_config.json's `model_max_length` (Infinity when absent). */
  readonly modelMaxLength: number;
  /** Number of ids (model vocabulary and added tokens). */
  readonly vocabSize: number;
  /** Ids of the special tokens (all present in tiny-vlm's and SmolVLM's vocabularies). */
  readonly specialIds: Readonly<Record<SpecialTokenName, number>>;
  /** Ids of the protocol tags that are single tokens (all of them in tiny-vlm; none in SmolVLM). */
  readonly tagIds: Readonly<Partial<Record<ProtocolTag, number>>>;
  /** Renders messages with the chat template; `<image>` placeholders expanded when `imageSeqLen` is given. */
  renderChat(messages: readonly ChatMessage[], options?: ChatOptions): string;
  /**
   * Token ids of a conversation: rendered, images expanded, then tokenized without adding specials
   * (the template writes them). @throws Error when `imageSeqLen` is not a positive integer.
   */
  encodeChat(messages: readonly ChatMessage[], options: ChatOptions & { imageSeqLen: number }): number[];
  /** Token ids of plain text; added tokens in the text (tags, specials) become their single ids. */
  encode(text: string): number[];
  /** Text of token ids, specials kept unless `skipSpecialTokens`; no clean-up of spaces (exact inverse of encode). */
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
}

/**
 * Splits message text into content parts at `<image>` placeholders (one image part each), the form
 * SmolVLM's chat template reads (`message['content'][i]['type']`). Empty text pieces are dropped.
 */
export function toContentParts(content: string): ContentPart[] {
  const parts: ContentPart[] = [];
  content.split(SPECIAL_TOKENS.image).forEach((text, i) => {
    if (i > 0) parts.push({ type: 'image' });
    if (text) parts.push({ type: 'text', text });
  });
  return parts;
}

/**
 * Replaces each `<image>` in rendered text by SmolVLM's single-image expansion (Idefics3Processor
 * `_prompt_single_image`): `<fake_token_around_image><global-img>` + `<image>` x `imageSeqLen` +
 * `<fake_token_around_image>`. @throws Error when `imageSeqLen` is not a positive integer.
 */
export function expandImageTokens(text: string, imageSeqLen: number): string {
  if (!Number.isInteger(imageSeqLen) || imageSeqLen < 1) throw new Error(`imageSeqLen must be a positive integer, got ${imageSeqLen}`);
  const { fakeTokenAroundImage: fake, globalImg, image } = SPECIAL_TOKENS;
  return text.split(image).join(`${fake}${globalImg}${image.repeat(imageSeqLen)}${fake}`);
}

/** tokenizer_config.json fields the chat template sees as variables (transformers' SPECIAL_TOKEN_ATTRIBUTES). */
const TEMPLATE_TOKENS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

/** A special token of the config as text: a string, or an AddedToken object's `content`. */
function configToken(config: Record<string, unknown>, key: string): string | null {
  const v = config[key];
  if (typeof v === 'string') return v || null;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/** The chat template of a config: a string, or the `default` of a list of named templates. */
function chatTemplate(config: Record<string, unknown>): string {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  const named = Array.isArray(t) ? (t as { name?: unknown; template?: unknown }[]).find((x) => x.name === 'default')?.template : undefined;
  if (typeof named === 'string') return named;
  throw new Error('tokenizer_config.json: "chat_template" is neither a string nor a list with a "default" template');
}

/**
 * Builds a tokenizer from parsed tokenizer.json and tokenizer_config.json (Hugging Face formats). The
 * chat template is the config's `chat_template`, else SmolVLM's ({@link CHAT_TEMPLATE}), rendered with
 * the config's special tokens as variables (as transformers does); spaces are never cleaned up on decode.
 * @throws Error when a special token of {@link SPECIAL_TOKENS} is missing from the vocabulary, or the
 *   chat template is not usable.
 */
export function loadTokenizer(tokenizerJson: object, tokenizerConfig: object): LabTokenizer {
  const config: Record<string, unknown> = { chat_template: CHAT_TEMPLATE, ...tokenizerConfig, clean_up_tokenization_spaces: false };
  const tokenizer = new Tokenizer(tokenizerJson, config);
  const template = new Template(chatTemplate(config));
  const templateTokens = Object.fromEntries(TEMPLATE_TOKENS.map((k) => [k, configToken(config, k)]).filter(([, v]) => v));
  const specialIds = Object.fromEntries(
    Object.entries(SPECIAL_TOKENS).map(([name, token]) => {
      const id = tokenizer.token_to_id(token);
      if (id === undefined) throw new Error(`tokenizer has no special token ${token} (${name})`);
      return [name, id];
    }),
  ) as Record<SpecialTokenName, number>;
  const tagIds: Partial<Record<ProtocolTag, number>> = {};
  for (const tag of PROTOCOL_TAGS) {
    const ids = tokenizer.encode(tag, { add_special_tokens: false }).ids;
    if (ids.length === 1) tagIds[tag] = ids[0];
  }

  const renderChat = (messages: readonly ChatMessage[], options: ChatOptions = {}): string => {
    const conversation = messages.map((m) => ({ role: m.role, content: toContentParts(m.content) }));
    const text = template.render({ messages: conversation, add_generation_prompt: options.addGenerationPrompt ?? false, tools: null, documents: null, ...templateTokens });
    return options.imageSeqLen === undefined ? text : expandImageTokens(text, options.imageSeqLen);
  };
  const encode = (text: string): number[] => tokenizer.encode(text, { add_special_tokens: false }).ids;
  return {
    tokenizer,
    modelMaxLength: typeof config.model_max_length === 'number' ? config.model_max_length : Infinity,
    vocabSize: tokenizer.get_vocab().size,
    specialIds,
    tagIds,
    renderChat,
    encodeChat: (messages, options) => encode(renderChat(messages, options)),
    encode,
    decode: (ids, options = {}) =>
      ids.length === 0 ? '' : tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false }),
  };
}
