/**
 * Checks one raw FVQA record (as parquet or JSONL gives it) and turns it into an FvqaRow.
 * Schema: lmms-lab/FVQA, veRL parquet (see types.ts). Every problem is a DatasetFormatError naming
 * the row and the field, e.g. `row 3, field images[0].bytes: undecodable image (not a PNG or JPEG image)`.
 */
import { decodeImage, imageType } from './image.js';
import {
  CATEGORIES, DatasetFormatError, type Category, type ChatMessage, type FvqaImage, type FvqaRow, type LabExtraInfo,
  type QuestionKind,
} from './types.js';

const ROLES = new Set(['system', 'user', 'assistant']);
const KINDS = new Set<QuestionKind>(['visual', 'familiar_fact', 'unfamiliar_name', 'unfamiliar_fact']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

type Rec = Record<string, unknown>;

/** Options for `recordToRow`. */
export interface RecordOptions {
  /** Used to make `data_id` (`${idPrefix}_${row}`) when the record has none (the authors' mini_data.pq). */
  idPrefix: string;
  /** Decode every image fully (default true); false checks only the PNG/JPEG signature. */
  decodeImages?: boolean;
}

/**
 * Validates a raw record and converts it to an FvqaRow.
 * @param rec one row as an object (parquet columns or JSONL keys); binary as Uint8Array.
 * @param row 0-based row number used in error messages.
 * @throws DatasetFormatError for a missing field, a wrong type, an undecodable image or an empty answer.
 */
export function recordToRow(rec: unknown, row: number, opts: RecordOptions): FvqaRow {
  const fail = (field: string | null, problem: string): never => {
    throw new DatasetFormatError(row, field, problem);
  };
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return fail(null, 'expected an object');
  const r = rec as Rec;
  const str = (v: unknown, field: string, allowEmpty = false): string => {
    const s = v instanceof Uint8Array ? decodeUtf8(v, field) : v;
    if (typeof s !== 'string') return fail(field, v === undefined || v === null ? 'missing' : `expected a string, got ${typeName(v)}`);
    if (!allowEmpty && s.trim() === '') return fail(field, 'empty string');
    return s;
  };
  const decodeUtf8 = (v: Uint8Array, field: string): string => {
    try {
      return utf8.decode(v);
    } catch {
      return fail(field, 'bytes are not valid UTF-8 text');
    }
  };

  if (!Array.isArray(r.prompt)) fail('prompt', r.prompt == null ? 'missing' : `expected a list of messages, got ${typeName(r.prompt)}`);
  const prompt: ChatMessage[] = (r.prompt as unknown[]).map((m, i) => {
    if (typeof m !== 'object' || m === null) return fail(`prompt[${i}]`, 'expected {role, content}');
    const role = str((m as Rec).role, `prompt[${i}].role`);
    if (!ROLES.has(role)) fail(`prompt[${i}].role`, `unknown role "${role}"`);
    return { role: role as ChatMessage['role'], content: str((m as Rec).content, `prompt[${i}].content`) };
  });
  if (prompt.length === 0) fail('prompt', 'empty list of messages');

  if (!Array.isArray(r.images)) fail('images', r.images == null ? 'missing' : `expected a list of {bytes, path}, got ${typeName(r.images)}`);
  const images: FvqaImage[] = (r.images as unknown[]).map((im, i) => {
    if (typeof im !== 'object' || im === null) return fail(`images[${i}]`, 'expected {bytes, path}');
    const bytes = (im as Rec).bytes;
    if (!(bytes instanceof Uint8Array)) return fail(`images[${i}].bytes`, bytes == null ? 'missing' : `expected binary, got ${typeName(bytes)}`);
    if (bytes.length === 0) fail(`images[${i}].bytes`, 'empty image');
    try {
      if (opts.decodeImages === false) {
        if (imageType(bytes) === null) throw new Error('not a PNG or JPEG image');
      } else decodeImage(bytes);
    } catch (e) {
      fail(`images[${i}].bytes`, `undecodable image (${(e as Error).message})`);
    }
    const path = (im as Rec).path;
    return { bytes, path: path == null ? null : str(path, `images[${i}].path`, true) };
  });

  const rm = r.reward_model;
  if (typeof rm !== 'object' || rm === null || Array.isArray(rm)) {
    return fail('reward_model', rm == null ? 'missing' : `expected {ground_truth, candidate_answers, style}, got ${typeName(rm)}`);
  }
  const ground_truth = str((rm as Rec).ground_truth, 'reward_model.ground_truth', true).trim();
  if (ground_truth === '') fail('reward_model.ground_truth', 'empty answer');
  const candidate_answers = candidates((rm as Rec).candidate_answers, fail);
  const style = (rm as Rec).style == null ? 'rule' : str((rm as Rec).style, 'reward_model.style');

  const data_source = str(r.data_source, 'data_source');
  const data_id = r.data_id == null ? `${opts.idPrefix}_${row}` : str(r.data_id, 'data_id');
  let category: Category | null = null;
  if (r.category != null) {
    const c = str(r.category, 'category');
    if (!(CATEGORIES as readonly string[]).includes(c)) fail('category', `expected search_free or search_required, got "${c}"`);
    category = c as Category;
  }
  let image_urls: string[] | null = null;
  if (r.image_urls != null) {
    if (!Array.isArray(r.image_urls)) fail('image_urls', `expected a list of strings, got ${typeName(r.image_urls)}`);
    image_urls = (r.image_urls as unknown[]).map((u, i) => str(u, `image_urls[${i}]`, true));
  }
  return { data_id, data_source, prompt, images, reward_model: { ground_truth, candidate_answers, style }, category, image_urls, extra_info: extraInfo(r.extra_info) };
}

/** `candidate_answers`: a JSON-encoded list of strings (FVQA), or a list (JSONL); missing means none. */
function candidates(v: unknown, fail: (field: string, problem: string) => never): string[] {
  const field = 'reward_model.candidate_answers';
  if (v == null) return [];
  let list: unknown = v;
  if (v instanceof Uint8Array) list = new TextDecoder().decode(v);
  if (typeof list === 'string') {
    try {
      list = JSON.parse(list);
    } catch {
      return fail(field, 'not a JSON-encoded list of strings');
    }
  }
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) return fail(field, 'expected a list of strings');
  return list as string[];
}

/** Our `extra_info` when the record carries all of its fields with the right types, else null. */
function extraInfo(v: unknown): LabExtraInfo | null {
  if (typeof v !== 'object' || v === null) return null;
  const x = v as Rec;
  const index = typeof x.index === 'bigint' ? Number(x.index) : x.index;
  const ok = ['split', 'question', 'entity_id', 'attribute'].every((k) => typeof x[k] === 'string') &&
    typeof index === 'number' && KINDS.has(x.question_kind as QuestionKind);
  if (!ok) return null;
  return {
    split: x.split as string, index: index as number, question: x.question as string,
    question_kind: x.question_kind as QuestionKind, entity_id: x.entity_id as string, attribute: x.attribute as string,
    ...(x.search_mode === 'rag' ? { search_mode: 'rag' as const } : {}),
  };
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'binary';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
