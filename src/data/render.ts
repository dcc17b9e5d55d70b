/**
 * Procedural renderer for FVQA-mini images, pure TypeScript (Node, workers and pages alike).
 * An image shows the entity's body (shape, colour, pattern in a lighter tint) on its background with a
 * row of dark marks below it. Each sample varies a little (body and marks shifted by up to half a pixel, size within 2%,
 * a body tint up to 8 levels and a background tint up to 4 levels per channel) so image search must
 * match by similarity, not by identical bytes; entities differ far more than samples of one entity do.
 * Tints are per sample, not per pixel, so PNGs stay around a kilobyte.
 */
import { rgbaToPng, type Rgba } from './image.js';
import { Rng } from '../engine/random.js';
import { BACKGROUNDS, COLOURS, type EntityLook, type Shape } from './look.js';

/** Default image side in pixels (the tiny VLM uses 8x8 patches: 64x64 gives 8x8 = 64 patches). */
export const IMAGE_SIZE = 64;
/** The pattern is the body colour mixed half-and-half with white: a lighter tint of the same hue. */
export const PATTERN_WHITE_MIX = 0.5;
/** Colour of the marks (every channel well below any body colour's brightest channel). */
export const MARK_RGB = [35, 35, 35] as const;

function polygon(n: number, r: number, rot: number, inner?: number): [number, number][] {
  const pts: [number, number][] = [];
  const k = inner === undefined ? n : 2 * n;
  for (let i = 0; i < k; i++) {
    const rr = inner !== undefined && i % 2 === 1 ? inner * r : r;
    const a = rot + (i * 2 * Math.PI) / k;
    pts.push([rr * Math.cos(a), rr * Math.sin(a)]);
  }
  return pts;
}

function inPolygon(x: number, y: number, pts: [number, number][]): boolean {
  let inside = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i];
    const [xj, yj] = pts[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Returns a test `(dx, dy) -> inside` for a body of radius r centred at the origin. */
function shapeTest(shape: Shape, r: number): (dx: number, dy: number) => boolean {
  switch (shape) {
    case 'circle':
      return (dx, dy) => dx * dx + dy * dy <= r * r;
    case 'square':
      return (dx, dy) => Math.abs(dx) <= 0.8 * r && Math.abs(dy) <= 0.8 * r;
    case 'diamond':
      return (dx, dy) => Math.abs(dx) + Math.abs(dy) <= r;
    case 'cross':
      return (dx, dy) =>
        (Math.abs(dx) <= 0.36 * r && Math.abs(dy) <= r) || (Math.abs(dy) <= 0.36 * r && Math.abs(dx) <= r);
    case 'triangle': {
      const pts = polygon(3, r, -Math.PI / 2);
      return (dx, dy) => inPolygon(dx, dy - 0.2 * r, pts);
    }
    case 'hexagon': {
      const pts = polygon(6, r, 0);
      return (dx, dy) => inPolygon(dx, dy, pts);
    }
    case 'star': {
      const pts = polygon(5, r * 1.1, -Math.PI / 2, 0.5);
      return (dx, dy) => inPolygon(dx, dy, pts);
    }
  }
}

/** floor(v) mod k, in [0, k). */
const mod = (v: number, k: number) => ((Math.floor(v) % k) + k) % k;

function patternAt(pattern: EntityLook['pattern'], dx: number, dy: number): boolean {
  switch (pattern) {
    case 'plain':
      return false;
    case 'striped':
      return mod(dy + 64, 8) < 2;
    case 'spotted': {
      const cx = mod(dx + 64, 9) - 4;
      const cy = mod(dy + 64, 9) - 4;
      return cx * cx + cy * cy <= 3;
    }
    case 'checkered':
      return mod(dx + 64, 8) < 4 && mod(dy + 64, 8) < 4;
    case 'ringed':
      return mod(Math.sqrt(dx * dx + dy * dy), 7) < 2;
  }
}

/** Whether (px, py) lies within sqrt(r2) of one of the marks' centres (a loop, not a closure per pixel). */
function nearMark(marks: readonly (readonly [number, number])[], px: number, py: number, r2: number): boolean {
  for (const [mx, my] of marks) if ((px - mx) ** 2 + (py - my) ** 2 <= r2) return true;
  return false;
}

const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/**
 * Renders one sample of an entity's look.
 * @param look the entity's look.
 * @param sampleSeed seeds this sample's jitter (same seed, same pixels); null renders the canonical,
 *   unjittered image (the corpus image), so a question image is at most one jitter away from it.
 * @param size image side in pixels (default 64; layout scales with it).
 * @returns RGBA, size x size, uint8, alpha 255.
 */
export function renderLook(look: EntityLook, sampleSeed: { seed: number; stream: string } | null, size = IMAGE_SIZE): Rgba {
  const rng = sampleSeed ? Rng.stream(sampleSeed.seed, sampleSeed.stream) : null;
  const jitter = (lo: number, hi: number) => (rng ? rng.int(lo, hi) : 0);
  const s = size / IMAGE_SIZE;
  const shift = () => (rng ? rng.next() - 0.5 : 0);
  const cx = (32 + shift()) * s;
  const cy = (28 + shift()) * s;
  const r = 18 * s * (1 + 0.04 * ((rng ? rng.next() : 0.5) - 0.5));
  const tint = [jitter(-8, 8), jitter(-8, 8), jitter(-8, 8)];
  const body = COLOURS[look.colour].map((c, i) => c + tint[i]);
  const pattern = body.map((c) => c + (255 - c) * PATTERN_WHITE_MIX);
  const bg = BACKGROUNDS[look.background].map((c) => c + jitter(-4, 4));
  const inside = shapeTest(look.shape, r);
  const markY = (58 + shift()) * s;
  const markX0 = 32 - ((look.marks - 1) * 9) / 2 + shift();
  const marks = Array.from({ length: look.marks }, (_, i) => [(markX0 + i * 9) * s, markY] as const);
  const markR2 = (2.2 * s) ** 2;
  const data = new Uint8Array(size * size * 4);
  const reach = r * 1.25 + 1;
  const markReach = 2.2 * s + 1;
  for (let y = 0; y < size; y++) {
    const py = y + 0.5;
    const dy = py - cy;
    const nearMarks = Math.abs(py - markY) <= markReach;
    for (let x = 0; x < size; x++) {
      const px = x + 0.5;
      const dx = px - cx;
      let rgb: readonly number[] = bg;
      // Bounding checks first: the shape and mark tests are the renderer's hot path.
      if (Math.abs(dx) <= reach && Math.abs(dy) <= reach && inside(dx, dy)) {
        rgb = patternAt(look.pattern, dx / s, dy / s) ? pattern : body;
      } else if (nearMarks && nearMark(marks, px, py, markR2)) {
        rgb = MARK_RGB;
      }
      const o = (y * size + x) * 4;
      data[o] = clamp(rgb[0]);
      data[o + 1] = clamp(rgb[1]);
      data[o + 2] = clamp(rgb[2]);
      data[o + 3] = 255;
    }
  }
  return { width: size, height: size, data };
}

/** Renders a sample and encodes it as PNG bytes. */
export function renderLookPng(look: EntityLook, sampleSeed: { seed: number; stream: string } | null, size = IMAGE_SIZE): Uint8Array {
  return rgbaToPng(renderLook(look, sampleSeed, size));
}

/**
 * Box-pooled RGB descriptor: `grid` x `grid` cells, 3 floats each (mean 0..255), row-major.
 * Used to keep entities' canonical images apart and to rank corpus images in warm-start searches.
 */
export function pooledRgb(img: Rgba, grid: number): Float32Array {
  const out = new Float32Array(grid * grid * 3);
  const cw = img.width / grid;
  const ch = img.height / grid;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const o = (Math.floor(y / ch) * grid + Math.floor(x / cw)) * 3;
      const i = (y * img.width + x) * 4;
      for (let c = 0; c < 3; c++) out[o + c] += img.data[i + c] / (cw * ch);
    }
  }
  return out;
}

/** Root-mean-square difference of two equal-length descriptors. */
export function rmsDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += (a[j] - b[j]) ** 2;
  return Math.sqrt(s / a.length);
}
