/**
 * Seeded pseudo-random numbers for the dataset generator. Every draw in FVQA-mini comes from a
 * stream named by (seed, purpose), so changing one part of the world (say, the question templates)
 * does not reshuffle another (the entities), and the same seed gives the same bytes on every runtime.
 */

/** 32-bit FNV-1a hash of a string; used to turn (seed, purpose) into a stream seed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32 generator: uniform floats in [0, 1), 2^32 period; fast and identical in every JS engine. */
export class Rng {
  private state: number;

  /** @param seed integer seed; @param stream name of the sub-stream (e.g. 'entities'). */
  constructor(seed: number, stream = '') {
    this.state = hashString(`${seed}:${stream}`) || 1;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** One element of a non-empty array. */
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('Rng.pick: empty array');
    return xs[Math.floor(this.next() * xs.length)];
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(xs: readonly T[]): T[] {
    const out = xs.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
