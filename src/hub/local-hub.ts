/**
 * A local hub endpoint for Node: serves a hub-shaped folder (`<root>/<org>/<name>/resolve/<rev>/<file>`,
 * as written by scripts/make-fixtures.ts) over HTTP on 127.0.0.1, so `resolveUrl(ref, file, url)`
 * fetches from it. Supports what the downloader and the Range reader rely on: GET and HEAD,
 * Content-Length, ETag, single byte ranges (RFC 9110 §14: 206 + Content-Range, 416 when
 * unsatisfiable), If-Range, and CORS (preflight included) so browser pages on another origin can use it.
 *
 * For tests it logs every request and can cut a response off mid-body (`truncate`), the way a
 * dropped connection does.
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve, sep } from 'node:path';

/** One request as the server saw it. */
export interface HubRequest {
  method: string;
  /** Decoded URL path, e.g. `/fixtures/tiny-llama/resolve/main/config.json`. */
  path: string;
  range: string | undefined;
  status: number;
  /** Body bytes the server sent (0 for HEAD). */
  sent: number;
}

export interface LocalHubOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /**
   * Called for each GET with a body; returning n makes the server destroy the connection after n
   * body bytes (a dropped connection). `index` counts GETs of that path, from 0.
   */
  truncate?: (path: string, index: number) => number | undefined;
}

export interface LocalHub {
  /** Endpoint, e.g. `http://127.0.0.1:40123`. */
  url: string;
  requests: HubRequest[];
  close(): Promise<void>;
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
  'Access-Control-Allow-Headers': 'Range, If-Range, Content-Type',
  'Access-Control-Expose-Headers': 'Content-Length, Content-Range, Accept-Ranges, ETag',
};

/** Parses a single `bytes=` range against a file of `size` bytes: [begin, end] inclusive, or 'bad'. */
function parseRange(h: string, size: number): [number, number] | 'bad' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // unsupported form: ignore, send 200
  if (m[1] === '') {
    const n = Number(m[2]);
    return n === 0 ? 'bad' : [Math.max(0, size - n), size - 1];
  }
  const b = Number(m[1]);
  const e = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return b >= size || e < b ? 'bad' : [b, e];
}

/**
 * Starts the server on 127.0.0.1.
 * @param root the hub-shaped folder; requests outside it get 404.
 */
export async function startLocalHub(root: string, opts: LocalHubOptions = {}): Promise<LocalHub> {
  const base = resolve(root);
  const requests: HubRequest[] = [];
  const getCounts = new Map<string, number>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const log: HubRequest = { method: req.method ?? 'GET', path, range: req.headers.range, status: 0, sent: 0 };
    requests.push(log);
    const send = (status: number, headers: Record<string, string | number> = {}) => {
      log.status = status;
      res.writeHead(status, { ...CORS, ...headers });
    };
    if (req.method === 'OPTIONS') return send(204), res.end();
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405), res.end();
    const file = join(base, path);
    let st;
    try {
      st = file.startsWith(base + sep) ? statSync(file) : undefined;
    } catch {
      st = undefined;
    }
    if (!st?.isFile()) return send(404, { 'Content-Type': 'text/plain' }), res.end('Entry not found');
    const size = st.size;
    const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const common = { 'Accept-Ranges': 'bytes', ETag: etag, 'Content-Type': 'application/octet-stream' };
    const ifRange = req.headers['if-range'];
    const range = req.headers.range && (!ifRange || ifRange === etag) ? parseRange(req.headers.range, size) : undefined;
    if (range === 'bad') return send(416, { ...common, 'Content-Range': `bytes */${size}` }), res.end();
    const [b, e] = range ?? [0, size - 1];
    const length = size === 0 ? 0 : e - b + 1;
    send(range ? 206 : 200, { ...common, 'Content-Length': length, ...(range ? { 'Content-Range': `bytes ${b}-${e}/${size}` } : {}) });
    if (req.method === 'HEAD' || length === 0) return res.end();
    const index = getCounts.get(path) ?? 0;
    getCounts.set(path, index + 1);
    const cut = opts.truncate?.(path, index);
    const stream = createReadStream(file, { start: b, end: e });
    stream.on('data', (chunk) => {
      const buf = chunk as Buffer;
      if (cut !== undefined && log.sent + buf.length >= cut) {
        stream.destroy();
        // Close the socket a moment after the partial body is written (destroySoon = end, then
        // destroy): the client then holds exactly `cut` bytes, not a reset it could retry by itself
        // or bytes still in flight that it would drop. A second, not 100 ms: Chromium drops body bytes
        // its reader has not taken when the connection closes short, and on a loaded 2-core machine
        // 100 ms was not always enough (the browser test then saw a restart instead of a resume).
        res.write(buf.subarray(0, cut - log.sent), () => setTimeout(() => res.socket?.destroySoon(), 1000));
        log.sent = cut;
        return;
      }
      log.sent += buf.length;
      res.write(buf);
    });
    stream.on('end', () => res.end());
    stream.on('error', () => res.destroy());
  };

  const server = createServer(handle);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, '127.0.0.1', ok);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
