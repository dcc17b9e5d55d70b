/**
 * Image embeddings for the `local` image-search backend. The default is deterministic and
 * dependency-free, enough to find the synthetic world's images again from a (re-encoded, slightly
 * changed) copy: an 8x8 colour layout (like MPEG-7's colour layout descriptor, without the DCT) plus a
 * 64-bit difference hash (dHash, N. Krawetz, "Kind of like that", 2013).
 */
import { resizeBox, type RgbaImage } from './image.js';

/** Turns an image into a vector and compares two vectors; higher similarity = closer. */
export interface ImageEmbedder {
  /** Short name reported in /api/health, e.g. "layout+dhash" or "clip:<model>". */
  readonly name: string;
  embed(img: RgbaImage): Promise<Float32Array>;
  /** Similarity of two embeddings from this embedder, in [0, 1] for the default one. */
  similarity(a: Float32Array, b: Float32Array): number;
}

/** Side of the colour layout grid: 8x8 cells x RGB = 192 values. */
export const LAYOUT_SIDE = 8;
const LAYOUT_DIMS = LAYOUT_SIDE * LAYOUT_SIDE * 3;

/**
 * Colour layout: the image box-averaged to 8x8, RGB scaled to [0, 1], row-major (r, g, b per cell).
 * Alpha is ignored (the synthetic world's images are opaque).
 */
export function colourLayout(img: RgbaImage): Float32Array {
  const small = resizeBox(img, LAYOUT_SIDE, LAYOUT_SIDE);
  const out = new Float32Array(LAYOUT_DIMS);
  for (let i = 0; i < LAYOUT_SIDE * LAYOUT_SIDE; i++) {
    for (let c = 0; c < 3; c++) out[i * 3 + c] = small.data[i * 4 + c] / 255;
  }
  return out;
}

/**
 * dHash: the image box-averaged to 9x8 grey (ITU-R BT.601 luma), bit (y*8+x) = 1 when pixel (x, y)
 * is darker than its right neighbour (x+1, y). Returned as 64 values in {0, 1}.
 */
export function differenceHash(img: RgbaImage): Float32Array {
  const small = resizeBox(img, 9, 8);
  const luma = (x: number, y: number) => {
    const o = (y * 9 + x) * 4;
    return 0.299 * small.data[o] + 0.587 * small.data[o + 1] + 0.114 * small.data[o + 2];
  };
  const bits = new Float32Array(64);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) bits[y * 8 + x] = luma(x, y) < luma(x + 1, y) ? 1 : 0;
  return bits;
}

/**
 * The default embedder: [colour layout (192) | dHash bits (64)]. Similarity is
 * 0.5 * (1 - mean |layout difference|) + 0.5 * (1 - hamming / 64), so identical images score 1.
 */
export class LayoutHashEmbedder implements ImageEmbedder {
  readonly name = 'layout+dhash';

  async embed(img: RgbaImage): Promise<Float32Array> {
    const v = new Float32Array(LAYOUT_DIMS + 64);
    v.set(colourLayout(img), 0);
    v.set(differenceHash(img), LAYOUT_DIMS);
    return v;
  }

  similarity(a: Float32Array, b: Float32Array): number {
    let layout = 0;
    for (let i = 0; i < LAYOUT_DIMS; i++) layout += Math.abs(a[i] - b[i]);
    let hamming = 0;
    for (let i = LAYOUT_DIMS; i < LAYOUT_DIMS + 64; i++) hamming += a[i] !== b[i] ? 1 : 0;
    return 0.5 * (1 - layout / LAYOUT_DIMS) + 0.5 * (1 - hamming / 64);
  }
}

/** Cosine similarity, for learned embedders (CLIP) whose vectors are compared by angle. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
