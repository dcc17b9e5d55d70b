/**
 * Text-search summaries for web backends: each result page is fetched (directly or through a
 * reader service such as Jina Reader, `READER_URL` + page URL) and summarised for the question,
 * as MMSearch-R1's text search does (notes "Text search results": <= 5 sentences per page).
 * Default summariser: extractive (top sentences by BM25, src/search/summarise.ts); optionally an
 * OpenAI-compatible `/chat/completions` endpoint.
 */
import { extractiveSummary } from '../src/search/summarise.js';
import { upstreamFailed, upstreamJson } from './errors.js';
import { SafeFetcher } from './fetcher.js';

/** Settings of {@link PageSummariser}. */
export interface SummariserConfig {
  /** Reader service prefix, e.g. "https://r.jina.ai/"; the page URL is appended. Empty = fetch pages directly. */
  readerUrl: string;
  /** OpenAI-compatible base URL (ending before /chat/completions). Empty = extractive. */
  chatUrl: string;
  chatKey: string;
  chatModel: string;
  /** Sentences per summary. */
  sentences: number;
  timeoutMs: number;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** Visible text of an HTML page: scripts, styles and tags removed, entities decoded, blocks end sentences. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|noscript|template)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<\/(p|div|h[1-6]|li|tr|section|article|br)\s*>|<br\s*\/?>/gi, '. ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') return String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
      return ENTITIES[e.toLowerCase()] ?? m;
    })
    .replace(/\s+/g, ' ')
    .replace(/(\.\s*){2,}/g, '. ')
    .replace(/^[.\s]+/, '')
    .trim();
}

/** Fetches and summarises result pages for a question. */
export class PageSummariser {
  constructor(
    readonly config: SummariserConfig,
    private readonly fetcher: SafeFetcher,
  ) {}

  /** "extractive" or "chat:<model>", for /api/health. */
  get name(): string {
    return this.config.chatUrl ? `chat:${this.config.chatModel}` : 'extractive';
  }

  /**
   * A summary of the page at `url` for `question`. When the page cannot be fetched (refused by
   * the SSRF checks, too large, wrong type, down), the search engine's `snippet` is summarised instead.
   * @throws ProxyError 502/504 naming "summariser" when the configured chat endpoint fails.
   */
  async summarise(url: string, snippet: string, question: string, signal?: AbortSignal): Promise<string> {
    let text = snippet;
    try {
      const target = this.config.readerUrl ? this.config.readerUrl + url : url;
      const page = await this.fetcher.fetch(target, undefined, signal);
      const raw = new TextDecoder().decode(page.body);
      text = page.contentType === 'text/html' ? htmlToText(raw) : raw;
    } catch {
      // Fall back to the snippet: one unreachable page must not fail the whole search.
    }
    return this.summariseText(text, question, signal);
  }

  /** Summarises already fetched text (used by backends that return page text themselves). */
  async summariseText(text: string, question: string, signal?: AbortSignal): Promise<string> {
    if (!this.config.chatUrl) return extractiveSummary(text, question, this.config.sentences);
    const body = {
      model: this.config.chatModel,
      temperature: 0,
      messages: [
        { role: 'system', content: `Summarise the web page for the question in at most ${this.config.sentences} sentences. Keep facts that help answer it.` },
        { role: 'user', content: `Question: ${question}\n\nPage:\n${text.slice(0, 12000)}` },
      ],
    };
    const json = (await upstreamJson('summariser', this.config.chatUrl.replace(/\/$/, '') + '/chat/completions', {
      method: 'POST',
      timeoutMs: this.config.timeoutMs,
      signal,
      headers: { 'content-type': 'application/json', ...(this.config.chatKey ? { authorization: `Bearer ${this.config.chatKey}` } : {}) },
      body: JSON.stringify(body),
    })) as { choices?: { message?: { content?: unknown } }[] };
    const content = json.choices?.[0]?.message?.content;
    if (typeof content !== 'string') throw upstreamFailed('summariser', 'no choices[0].message.content in the answer');
    return content.trim();
  }
}
