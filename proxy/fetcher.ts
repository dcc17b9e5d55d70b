/**
 * SSRF-safe page fetcher for text-search summaries (and image URLs for the local backend).
 * Every hop (the first request and each redirect) is checked: http/https only; the host must
 * resolve only to public unicast addresses (loopback, private, link-local, unique-local, CGNAT,
 * metadata 169.254.169.254, multicast, reserved... are refused, IPv4-mapped IPv6 is unwrapped);
 * the connection is pinned to the checked address so DNS rebinding cannot swap it. The response is
 * capped in size and time and its content type must be in the accepted list.
 * Follows the OWASP SSRF prevention cheat sheet ("network layer" + "application layer" checks).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** Options of {@link SafeFetcher}. */
export interface FetcherOptions {
  /** Total time for all hops and the body, ms. */
  timeoutMs: number;
  /** Largest body accepted, bytes. */
  maxBytes: number;
  /** Most redirects followed. */
  maxRedirects: number;
  /**
   * `host:port` pairs exempt from the address check (tests use this for their loopback servers).
   * Empty by default: nothing on loopback/private networks can be reached.
   */
  allowHosts: string[];
}

export const DEFAULT_FETCHER_OPTIONS: FetcherOptions = { timeoutMs: 8000, maxBytes: 2 * 1024 * 1024, maxRedirects: 5, allowHosts: [] };

/** Why a fetch was refused or failed; `kind` lets callers and tests tell the cases apart. */
export class FetchRefused extends Error {
  constructor(
    readonly kind: 'forbidden-address' | 'scheme' | 'too-many-redirects' | 'too-large' | 'content-type' | 'timeout' | 'status' | 'network',
    message: string,
  ) {
    super(message);
    this.name = 'FetchRefused';
  }
}

/** A fetched body with its final URL and content type (parameters stripped, lowercase). */
export interface FetchedPage {
  url: string;
  contentType: string;
  body: Uint8Array;
}

/** True for an address the fetcher may connect to: public unicast only. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.process(address);
  return ip.range() === 'unicast';
}

export const TEXT_TYPES = ['text/html', 'text/plain', 'application/json'];
export const IMAGE_TYPES = ['image/png', 'image/jpeg'];

/** Fetches public pages with the checks described above. */
export class SafeFetcher {
  readonly opts: FetcherOptions;

  constructor(opts: Partial<FetcherOptions> = {}) {
    this.opts = { ...DEFAULT_FETCHER_OPTIONS, ...opts };
  }

  /**
   * GETs `url`, following redirects with every hop re-checked.
   * @param accept content types accepted (default text/html, text/plain, application/json)
   * @throws FetchRefused for every refusal or failure.
   */
  async fetch(url: string, accept: string[] = TEXT_TYPES, signal?: AbortSignal): Promise<FetchedPage> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const all = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let current = url;
    for (let hop = 0; hop <= this.opts.maxRedirects; hop++) {
      const res = await this.request(current, all, accept);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        current = new URL(res.headers.location, current).toString();
        continue;
      }
      if (status < 200 || status >= 300) {
        res.resume();
        throw new FetchRefused('status', `HTTP ${status} from ${current}`);
      }
      const contentType = (res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (!accept.includes(contentType)) {
        res.destroy();
        throw new FetchRefused('content-type', `content type "${contentType}" not accepted`);
      }
      return { url: current, contentType, body: await this.readCapped(res, all) };
    }
    throw new FetchRefused('too-many-redirects', `more than ${this.opts.maxRedirects} redirects`);
  }

  private request(url: string, signal: AbortSignal, accept: string[]): Promise<IncomingMessage> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return Promise.reject(new FetchRefused('scheme', `not a URL: ${url}`));
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      return Promise.reject(new FetchRefused('scheme', `scheme ${u.protocol} not allowed`));
    }
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    const exempt = this.opts.allowHosts.includes(`${host}:${port}`);
    if (!exempt && isIP(host) && !isPublicAddress(host)) {
      return Promise.reject(new FetchRefused('forbidden-address', `address ${host} is not public`));
    }
    // Called by the socket for hostnames: check what DNS returns and connect to exactly that.
    const lookup = (hostname: string, options: object, cb: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
      dnsLookup(hostname, { all: true }, (err, addresses) => {
        if (err) return cb(err, '', 0);
        const bad = addresses.find((a) => !isPublicAddress(a.address));
        if (bad && !exempt) return cb(new FetchRefused('forbidden-address', `${hostname} resolves to non-public ${bad.address}`), '', 0);
        if ((options as { all?: boolean }).all) return cb(null, addresses);
        cb(null, addresses[0].address, addresses[0].family);
      });
    };
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(new FetchRefused('timeout', `no answer within ${this.opts.timeoutMs} ms`));
      const req = mod.get(u, { lookup, signal, headers: { accept: accept.join(', '), 'user-agent': 'mmsearch-lab-proxy' } }, resolve);
      req.on('error', (e) =>
        reject(
          e instanceof FetchRefused ? e
            : signal.aborted ? new FetchRefused('timeout', `no answer within ${this.opts.timeoutMs} ms`)
            : new FetchRefused('network', e.message),
        ),
      );
    });
  }

  private readCapped(res: IncomingMessage, signal: AbortSignal): Promise<Uint8Array> {
    const declared = Number(res.headers['content-length']);
    if (declared > this.opts.maxBytes) {
      res.destroy();
      return Promise.reject(new FetchRefused('too-large', `body of ${declared} bytes exceeds ${this.opts.maxBytes}`));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.opts.maxBytes) {
          res.destroy();
          reject(new FetchRefused('too-large', `body exceeds ${this.opts.maxBytes} bytes`));
        } else chunks.push(c);
      });
      res.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
      res.on('error', () => reject(signal.aborted ? new FetchRefused('timeout', `no answer within ${this.opts.timeoutMs} ms`) : new FetchRefused('network', 'body cut off')));
    });
  }
}
