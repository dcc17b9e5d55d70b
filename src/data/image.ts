/** Image bytes <-> RGBA for the data layer (PNG via fast-png, JPEG via jpeg-js); runs in Node, pages and workers. */
import { encode as encodePng } from 'fast-png';
import { decodeImage as decodeAny, sniffImage } from '../search/image.js';

/** RGBA pixels, row-major, 4 bytes per pixel (uint8, non-premultiplied). */
export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

/** 'png' or 'jpeg' from the file header, else null. */
export function imageType(bytes: Uint8Array): 'png' | 'jpeg' | null {
  return sniffImage(bytes)?.type ?? null;
}

/** Encodes RGBA as an 8-bit RGBA PNG (deterministic: same pixels, same bytes). */
export function rgbaToPng(img: Rgba): Uint8Array {
  return encodePng({ width: img.width, height: img.height, data: img.data, channels: 4, depth: 8 });
}

/**
 * Decodes PNG (any bit depth, palette, grey or colour) or baseline JPEG bytes to 8-bit RGBA; the
 * search layer's decoder, so that datasets and search results read images the same way.
 * @throws Error saying why (unknown format, corrupt data).
 */
export function decodeImage(bytes: Uint8Array): Rgba {
  return decodeAny(bytes);
}
