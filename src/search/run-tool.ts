/**
 * Running one search call of the MMSearch-R1 protocol: the tools (proxy client or the local index)
 * answer it and the result comes back as the next user turn (src/protocol/tools.ts renders it).
 */
import { renderImageResults, renderTextResults, renderToolError, RESULTS_PER_SEARCH, type InformationTurn, type ToolCall, type ToolMetrics } from '../protocol/tools.js';
import type { ImageQuery, SearchTools } from './types.js';

/** Options of {@link runToolCall}. */
export interface RunToolOptions {
  /** Results per call; default RESULTS_PER_SEARCH (5). */
  k?: number;
  /** Put thumbnails into the image-search turn; default true. */
  withImages?: boolean;
  signal?: AbortSignal;
}

/**
 * Runs an executed search call and renders the next user turn. Never throws for a tool failure:
 * the model gets {@link renderToolError} and `metrics.*Failures` is incremented, so one failed
 * search never kills a training step.
 */
export async function runToolCall(
  tools: SearchTools,
  call: Extract<ToolCall, { kind: 'image_search' | 'text_search' }>,
  ctx: { question: string; image: ImageQuery },
  metrics: ToolMetrics,
  opts: RunToolOptions = {},
): Promise<InformationTurn> {
  const k = opts.k ?? RESULTS_PER_SEARCH;
  try {
    if (call.kind === 'image_search') {
      metrics.imageSearches++;
      const results = await tools.imageSearch(ctx.image, k, opts.signal);
      return renderImageResults(results, ctx.question, opts.withImages ?? true);
    }
    metrics.textSearches++;
    return renderTextResults(await tools.textSearch(call.query, k, opts.signal), ctx.question);
  } catch (e) {
    if (call.kind === 'image_search') metrics.imageSearchFailures++;
    else metrics.textSearchFailures++;
    return renderToolError(call.kind, e instanceof Error ? e.message : String(e));
  }
}
