/**
 * The MMSearch-R1 conversation protocol as text: the first user turn, the follow-up user turns that
 * carry tool results, and the action tags the policy ends a turn with. Shared by the dataset
 * generator (prompts, warm-start trajectories), the search tools' result turns and the rollout code;
 * parsing a turn, the limits and the rendered tool turns are in ./tools.ts.
 *
 * Source: MMSearch-R1 (arXiv 2506.20670, Sec. 3 and App. on prompts) and its public code
 * (EvolvingLMMs-Lab/multimodal-search-r1: the round-1 user prompt, the after-image-search and
 * after-text-search prompts, and the `Searched results: <information>...</information>` wrapper).
 * The wording here is ours; structure, tags and limits follow the paper.
 */

/** Placeholder for one image inside message text; the i-th placeholder is the row's i-th image. */
export const IMAGE_PLACEHOLDER = '<image>';

/** Separator before the image and the question in the first user turn (as in the authors' prompt). */
export const QUESTION_MARKER = 'Here is the image and the question:\n';

/** The image-search action: the whole question image is the query (paper Sec. 3.1). */
export const IMAGE_SEARCH_ACTION = '<search><img></search>';

/** What the model says after a text search that did not give the answer (paper's after-text-search prompt). */
export const UNABLE_TO_ANSWER = 'Unable to answer due to lack of relevant information';

/**
 * Instructions of the first user turn (paper: "round-1 user prompt"): reason in <reason>, then end
 * with exactly one of image search, text search or a short answer.
 */
export const FIRST_TURN_INSTRUCTIONS =
  "Answer the user's question about the provided image. Look at the image carefully and decide " +
  'whether you recognise the main visual entity well enough to answer from your own knowledge. If you ' +
  'do, explain your reasoning and then give the answer.\n' +
  'If you cannot identify the visual entity with confidence, stop and call the image search tool by ' +
  `ending your response with ${IMAGE_SEARCH_ACTION}. It searches the web with the original image and ` +
  'returns pages that show similar images, with their titles.\n' +
  'Once you know what the image shows, decide whether you can answer. If you can, answer directly. If ' +
  'you still lack the fact, call the text search tool by ending your response with ' +
  '<text_search>a short, specific query</text_search>. Do not refer to "the image" in the query.\n' +
  'Always reason inside <reason> and </reason> before any action: an image search, a text search or the ' +
  'final answer. Search results are returned to you inside <information> and </information>. Give the ' +
  'final answer inside <answer> and </answer>, as few words as possible, without explanation. ' +
  'For example: <answer>Titanic</answer>.';

/** Follow-up instruction after image search results (paper: "after image search prompt"). */
export const AFTER_IMAGE_SEARCH_INSTRUCTIONS =
  'From the search results, identify the visual entity that the question is about. Then decide whether ' +
  'you need a text search to answer the question.\n' +
  'If you do, end your response with <text_search>your query</text_search>, a query built from the entity ' +
  'you identified.\n' +
  'If you do not, answer the question from your own knowledge.\n' +
  'Reason inside <reason> and </reason> before the action. Put a final answer inside <answer> and ' +
  '</answer>, without explanation. For example: <answer>Titanic</answer>';

/** Follow-up instruction after text search results (paper: "after text search prompt"). */
export const AFTER_TEXT_SEARCH_INSTRUCTIONS =
  "Analyse the search results and the user's question, reasoning inside <reason> and </reason>.\n" +
  'If the results still do not hold what you need, do not answer: end your response with the sentence ' +
  `'${UNABLE_TO_ANSWER}'.\n` +
  'Otherwise give the final answer inside <answer> and </answer>, short and without explanation.';

/** Opening lines of the two tools' result texts (authors' tool output: a header, then the hits). */
export const IMAGE_RESULTS_HEADER = '[Image Search Results] Pages whose main image resembles the image of the question, most relevant first:';
export const TEXT_RESULTS_HEADER = '[Text Search Results] Summaries of the most relevant pages for the query, most relevant first:';

/**
 * Short stand-ins for the three instruction texts and the two result headers above, for policies trained from scratch (tiny-vlm):
 * such a model cannot read instructions, which would only add ~250 constant tokens to every prompt
 * (and ~40 more per search: the result headers).
 * Map with {@link compactInstructions}; the structure of every turn is unchanged.
 */
export const COMPACT_INSTRUCTIONS: Readonly<Record<string, string>> = {
  [FIRST_TURN_INSTRUCTIONS]: 'Answer the question; search if needed.',
  [AFTER_IMAGE_SEARCH_INSTRUCTIONS]: 'Identify the entity; text search or answer.',
  [AFTER_TEXT_SEARCH_INSTRUCTIONS]: 'Answer from the results.',
  [IMAGE_RESULTS_HEADER]: '[Image Search Results]',
  [TEXT_RESULTS_HEADER]: '[Text Search Results]',
};

/** Replaces each paper instruction text in `content` by its compact stand-in. */
export function compactInstructions(content: string): string {
  let out = content;
  for (const [long, short] of Object.entries(COMPACT_INSTRUCTIONS)) out = out.split(long).join(short);
  return out;
}

/** The user turn that opens every trajectory: instructions, image placeholder, question. */
export function firstUserTurn(question: string): string {
  return `${FIRST_TURN_INSTRUCTIONS}\n${QUESTION_MARKER}${IMAGE_PLACEHOLDER} ${question}`;
}

/**
 * The bare question of a first user turn. Accepts both our full prompt and FVQA rows whose user turn
 * is only the question (as in the authors' mini_data.pq); drops `<image>` placeholders.
 */
export function questionFromUserTurn(content: string): string {
  const i = content.lastIndexOf(QUESTION_MARKER);
  const tail = i >= 0 ? content.slice(i + QUESTION_MARKER.length) : content;
  return tail.split(IMAGE_PLACEHOLDER).join('').trim();
}

/** One image-search hit as shown to the model: a thumbnail (inserted as an image) and its page title. */
export interface ImageHitText {
  title: string;
}

/** One text-search hit as shown to the model: the page link and a summary of at most 5 sentences. */
export interface TextHitText {
  url: string;
  summary: string;
}

/**
 * Text of image-search results; each hit contributes one `<image>` placeholder (its thumbnail, loss
 * mask 0) followed by its title, best first (format of the authors' image_search tool). Without
 * images (models that take none in tool results) only the titles are listed.
 */
export function formatImageSearchResults(hits: readonly ImageHitText[], withImages = true): string {
  if (hits.length === 0) return '[Image Search Results] No results were found for the image.';
  const lines = hits.map((h, i) => (withImages ? `${i + 1}. image: ${IMAGE_PLACEHOLDER}\ntitle: ${h.title}` : `${i + 1}. title: ${h.title}`));
  return `${IMAGE_RESULTS_HEADER}\n${lines.join('\n')}`;
}

/** Text of text-search results: `(link) summary` entries, best first (paper Sec. 3.1). */
export function formatTextSearchResults(hits: readonly TextHitText[]): string {
  if (hits.length === 0) return '[Text Search Results] No results were found for the query.';
  const lines = hits.map((h, i) => `${i + 1}. (${h.url}) ${h.summary}`);
  return `${TEXT_RESULTS_HEADER}\n${lines.join('\n')}`;
}

/**
 * The user turn that returns a tool's results: the results inside <information>, the original question
 * and the follow-up instruction for that tool (authors' rollout code: "Searched results: ...").
 */
export function toolResultTurn(tool: 'image_search' | 'text_search', resultsText: string, question: string): string {
  const follow = tool === 'image_search' ? AFTER_IMAGE_SEARCH_INSTRUCTIONS : AFTER_TEXT_SEARCH_INSTRUCTIONS;
  return `Searched results: <information>${resultsText}</information>\nOriginal user's question: ${question}\n${follow}`;
}

/** An assistant turn: reasoning, then exactly one action that closes the turn. */
export function assistantTurn(reason: string, action: string): string {
  return `<reason>${reason}</reason>${action}`;
}

/** `<text_search>query</text_search>`. */
export function textSearchAction(query: string): string {
  return `<text_search>${query}</text_search>`;
}

/** `<answer>answer</answer>`. */
export function answerAction(answer: string): string {
  return `<answer>${answer}</answer>`;
}
