/**
 * Errors the proxy turns into JSON responses: 4xx naming the request field, 502 naming the
 * upstream backend, 504 on an upstream timeout (issue 4, "Security and bad input").
 */

/** An error with an HTTP status and the JSON body `{error, field?, backend?}` sent for it. */
export class ProxyError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly field?: string,
    readonly backend?: string,
  ) {
    super(message);
    this.name = 'ProxyError';
  }

  toJSON(): { error: string; field?: string; backend?: string } {
    return { error: this.message, ...(this.field ? { field: this.field } : {}), ...(this.backend ? { backend: this.backend } : {}) };
  }
}

/** 400 (or another 4xx) naming the offending request field. */
export function badRequest(field: string, message: string, status = 400): ProxyError {
  return new ProxyError(status, `${field}: ${message}`, field);
}

/** 502: the named upstream failed or answered something unusable. */
export function upstreamFailed(backend: string, message: string): ProxyError {
  return new ProxyError(502, `${backend}: ${message}`, undefined, backend);
}

/** 504: the named upstream did not answer in time. */
export function upstreamTimeout(backend: string, ms: number): ProxyError {
  return new ProxyError(504, `${backend}: no answer within ${ms} ms`, undefined, backend);
}

/**
 * GETs/POSTs JSON from a configured backend (trusted host, chosen by the operator) with a time limit.
 * @throws ProxyError 504 on timeout, 502 on network error, non-2xx status or non-JSON body.
 */
export async function upstreamJson(
  backend: string,
  url: string,
  opts: { timeoutMs: number; signal?: AbortSignal; method?: string; headers?: Record<string, string>; body?: string },
): Promise<unknown> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(url, { method: opts.method ?? 'GET', headers: { accept: 'application/json', ...opts.headers }, body: opts.body, signal, redirect: 'error' });
  } catch (e) {
    if (timeout.aborted) throw upstreamTimeout(backend, opts.timeoutMs);
    throw upstreamFailed(backend, `request failed (${(e as Error).message})`);
  }
  let text: string;
  try {
    text = await res.text();
  } catch {
    if (timeout.aborted) throw upstreamTimeout(backend, opts.timeoutMs);
    throw upstreamFailed(backend, 'response body was cut off');
  }
  if (!res.ok) throw upstreamFailed(backend, `HTTP ${res.status}`);
  try {
    return JSON.parse(text);
  } catch {
    throw upstreamFailed(backend, 'response is not JSON');
  }
}
