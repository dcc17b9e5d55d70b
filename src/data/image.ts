/** Image bytes <-> RGBA for the data layer (PNG via fast-png, JPEG via jpeg-js); runs in Node, pages and workers. */
import { decode as decodePng, encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';

/** RGBA pixels, row-major, 4 bytes per pixel (uint8, non-premultiplied). */
export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

/** 'png' or 'jpeg' from the magic bytes, else null. */
export function imageType(bytes: Uint8Array): 'png' | 'jpeg' | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** Encodes RGBA as an 8-bit RGBA PNG (deterministic: same pixels, same bytes). */
export function rgbaToPng(img: Rgba): Uint8Array {
  return encodePng({ width: img.width, height: img.height, data: img.data, channels: 4, depth: 8 });
}

/**
 * Decodes PNG or JPEG bytes to RGBA.
 * @throws Error saying why (unknown format, corrupt data, unsupported bit depth).
 */
export function decodeImage(bytes: Uint8Array): Rgba {
  const type = imageType(bytes);
  if (type === 'jpeg') {
    const d = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 512 });
    return { width: d.width, height: d.height, data: d.data };
  }
  if (type !== 'png') throw new Error('not a PNG or JPEG image');
  const p = decodePng(bytes);
  if (p.depth !== 8) throw new Error(`unsupported PNG bit depth ${p.depth}`);
  const n = p.width * p.height;
  const out = new Uint8Array(n * 4);
  const c = p.channels;
  for (let i = 0; i < n; i++) {
    const s = p.data as Uint8Array;
    if (c >= 3) {
      out[i * 4] = s[i * c];
      out[i * 4 + 1] = s[i * c + 1];
      out[i * 4 + 2] = s[i * c + 2];
    } else {
      out[i * 4] = out[i * 4 + 1] = out[i * 4 + 2] = s[i * c];
    }
    out[i * 4 + 3] = c === 4 || c === 2 ? s[i * c + c - 1] : 255;
  }
  return { width: p.width, height: p.height, data: out };
}
