/**
 * In-memory form of one FVQA row, the veRL parquet schema that MMSearch-R1 trains on
 * (lmms-lab/FVQA on the Hugging Face hub; the authors' mmsearch_r1/data/mini_data.pq). Field names are
 * the schema's own. Lab datasets (FVQA-mini, imports, warm-start trajectories) all use this type.
 */

/** FVQA `category`: whether answering needed search (paper Sec. 4.1: decided by 8 tries without search). */
export type Category = 'search_free' | 'search_required';
export const CATEGORIES: readonly Category[] = ['search_free', 'search_required'];

/** One chat message; `content` may hold `<image>` placeholders, one per entry of the row's `images`. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** One image: encoded bytes (PNG or JPEG) and an optional original path (null in FVQA). */
export interface FvqaImage {
  bytes: Uint8Array;
  path: string | null;
}

/**
 * veRL `reward_model` with style "rule": exact match against `ground_truth` or any of
 * `candidate_answers`. In parquet `candidate_answers` is a JSON-encoded list of strings; here decoded.
 */
export interface RewardModel {
  ground_truth: string;
  candidate_answers: string[];
  style: string;
}

/** FVQA-mini question kinds (issue 5): which knowledge a question needs. */
export type QuestionKind = 'visual' | 'familiar_fact' | 'unfamiliar_name' | 'unfamiliar_fact';

/**
 * Lab metadata kept in veRL's conventional `extra_info` column; absent (null) for imported rows.
 * `question` is the bare question, needed for the follow-up turns ("Original user's question").
 */
export interface LabExtraInfo {
  split: string;
  index: number;
  question: string;
  question_kind: QuestionKind;
  entity_id: string;
  attribute: string;
  /**
   * 'rag' on warm-start trajectories that follow the RAG workflow (src/data/fvqa-mini.ts
   * ragWorkflowShare): their first assistant turn (reasoning and the imposed image search) is context,
   * not trained. Absent elsewhere.
   */
  search_mode?: 'rag';
}

/** One FVQA row. `prompt` is the conversation so far (FVQA: a single user turn). */
export interface FvqaRow {
  data_id: string;
  data_source: string;
  prompt: ChatMessage[];
  images: FvqaImage[];
  reward_model: RewardModel;
  category: Category | null;
  image_urls: string[] | null;
  extra_info: LabExtraInfo | null;
}

/** Progress of a long task. `done`/`total` in `unit`s; `total` is null when unknown. */
export interface Progress {
  phase: string;
  done: number;
  total: number | null;
  unit: 'rows' | 'bytes' | 'images' | 'entities' | 'corpora';
}
export type ProgressCallback = (p: Progress) => void;

/**
 * Bad input: names the 0-based row (null for file-level problems) and the field, e.g.
 * `row 3, field reward_model.ground_truth: empty answer`.
 */
export class DatasetFormatError extends Error {
  constructor(
    readonly row: number | null,
    readonly field: string | null,
    readonly problem: string,
  ) {
    const where = [row === null ? null : `row ${row}`, field === null ? null : `field ${field}`].filter(Boolean).join(', ');
    super(where ? `${where}: ${problem}` : problem);
    this.name = 'DatasetFormatError';
  }
}
