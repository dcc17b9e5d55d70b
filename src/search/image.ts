/**
 * Image helpers shared by the proxy and the in-worker `local` engine (browser-safe: no Node APIs).
 * The proxy trusts the decoded header, never the claimed content type (issue 4, "bad input").
 */
import { decode as decodePng, encode as encodePng, convertIndexedToRgb } from 'fast-png';
import { decode as decodeJpeg } from 'jpeg-js';

/** Image container types accepted by the search tools. */
export type ImageType = 'png' | 'jpeg';

/** What the file header says: container type and pixel size. */
export interface ImageHeader {
  type: ImageType;
  width: number;
  height: number;
}

/** 8-bit RGBA pixels, row-major, 4 bytes per pixel. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Reads the container type and size from the first bytes (PNG IHDR, JPEG SOFn marker).
 * Returns null when the bytes are neither a PNG nor a JPEG with a readable size.
 */
export function sniffImage(bytes: Uint8Array): ImageHeader | null {
  const u32 = (o: number) => ((bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]) >>> 0;
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 24 && png.every((b, i) => bytes[i] === b)) {
    // IHDR is the first chunk: length(4) "IHDR"(4) width(4) height(4).
    if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return null;
    return { type: 'png', width: u32(16), height: u32(20) };
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    // Walk marker segments to the first start-of-frame (SOF0..SOF15 except DHT/JPG/DAC).
    let o = 2;
    while (o + 9 < bytes.length) {
      if (bytes[o] !== 0xff) return null;
      const marker = bytes[o + 1];
      if (marker === 0xff) { o += 1; continue; }
      const len = (bytes[o + 2] << 8) | bytes[o + 3];
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { type: 'jpeg', height: (bytes[o + 5] << 8) | bytes[o + 6], width: (bytes[o + 7] << 8) | bytes[o + 8] };
      }
      if (len < 2) return null;
      o += 2 + len;
    }
  }
  return null;
}

/**
 * Decodes a PNG (any bit depth, palette, grey or colour) or baseline JPEG to 8-bit RGBA.
 * @throws Error when the bytes are not a decodable PNG/JPEG.
 */
export function decodeImage(bytes: Uint8Array): RgbaImage {
  const header = sniffImage(bytes);
  if (!header) throw new Error('not a PNG or JPEG image');
  if (header.type === 'jpeg') {
    const j = decodeJpeg(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 256 });
    return { width: j.width, height: j.height, data: new Uint8Array(j.data.buffer, j.data.byteOffset, j.data.length) };
  }
  const p = decodePng(bytes);
  let src: ArrayLike<number> = p.data;
  let channels = p.channels;
  if (p.palette) {
    src = convertIndexedToRgb(p);
    channels = p.palette[0]?.length ?? 3;
  }
  const shift = p.depth === 16 ? 8 : 0;
  const n = p.width * p.height;
  const out = new Uint8Array(n * 4);
  // No closure in this loop: a function made per pixel costs more than the pixel (and tsx names each one).
  for (let i = 0, o = 0; i < n; i++, o += channels) {
    if (channels >= 3) {
      out[i * 4] = src[o] >> shift; out[i * 4 + 1] = src[o + 1] >> shift; out[i * 4 + 2] = src[o + 2] >> shift;
      out[i * 4 + 3] = channels === 4 ? src[o + 3] >> shift : 255;
    } else {
      const g = src[o] >> shift;
      out[i * 4] = g; out[i * 4 + 1] = g; out[i * 4 + 2] = g;
      out[i * 4 + 3] = channels === 2 ? src[o + 1] >> shift : 255;
    }
  }
  return { width: p.width, height: p.height, data: out };
}

/**
 * Box-filter resize to exactly `width` x `height` (area average of the source pixels each output
 * pixel covers, in 8-bit RGBA). Used for the embedding's colour layout and for thumbnails.
 */
export function resizeBox(img: RgbaImage, width: number, height: number): RgbaImage {
  const out = new Uint8Array(width * height * 4);
  for (let oy = 0; oy < height; oy++) {
    const y0 = Math.floor((oy * img.height) / height);
    const y1 = Math.max(y0 + 1, Math.floor(((oy + 1) * img.height) / height));
    for (let ox = 0; ox < width; ox++) {
      const x0 = Math.floor((ox * img.width) / width);
      const x1 = Math.max(x0 + 1, Math.floor(((ox + 1) * img.width) / width));
      const sum = [0, 0, 0, 0];
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          for (let c = 0; c < 4; c++) sum[c] += img.data[(y * img.width + x) * 4 + c];
        }
      }
      const count = (y1 - y0) * (x1 - x0);
      for (let c = 0; c < 4; c++) out[(oy * width + ox) * 4 + c] = Math.round(sum[c] / count);
    }
  }
  return { width, height, data: out };
}

/** Encodes RGBA pixels as an 8-bit RGBA PNG file. */
export function encodeRgbaPng(img: RgbaImage): Uint8Array {
  return encodePng({ width: img.width, height: img.height, data: img.data, channels: 4, depth: 8 });
}

/**
 * A PNG thumbnail no larger than `maxSide` pixels on its longer side (aspect kept), as a
 * `data:image/png;base64,...` URL that a worker can decode without another request.
 */
export function thumbnailDataUrl(img: RgbaImage, maxSide = 64): string {
  const scale = Math.min(1, maxSide / Math.max(img.width, img.height));
  const w = Math.max(1, Math.round(img.width * scale));
  const h = Math.max(1, Math.round(img.height * scale));
  const small = scale < 1 ? resizeBox(img, w, h) : img;
  return 'data:image/png;base64,' + bytesToBase64(encodeRgbaPng(small));
}

/** Standard base64 (RFC 4648 section 4) of bytes, without Node's Buffer. */
export function bytesToBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Decodes standard base64 (whitespace ignored). @throws Error on characters outside the alphabet. */
export function base64ToBytes(b64: string): Uint8Array {
  const s = atob(b64.replace(/\s+/g, ''));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
