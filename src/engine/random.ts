/**
 * The lab's one seeded random number generator, identical in every JS engine, so that weight
 * initialisation, sampling, shuffles and the generated datasets are reproducible across runs, backends
 * and browsers. Two streams, each kept bit for bit from where it was first used:
 *
 * - `new Rng(seed)`: SplitMix32 seeding + xoshiro128** (Blackman & Vigna 2018), 128 bits of state;
 *   the engine's (weight init, sampling, the trainer's shuffles; its state goes into checkpoints).
 * - `Rng.stream(seed, name)`: mulberry32 seeded by the FNV-1a hash of `seed:name`, 32 bits of state;
 *   the dataset generator's and the fixtures' (every draw of FVQA-mini comes from a stream named by
 *   its purpose, so changing one part of the world does not reshuffle another).
 */
export class Rng {
  private readonly s: Uint32Array;

  /** @param seed any integer; equal seeds give equal streams (xoshiro128**). */
  constructor(seed: number);
  constructor(seed: number, core: 'mulberry32');
  constructor(seed: number, core?: 'mulberry32') {
    if (core === 'mulberry32') {
      this.s = new Uint32Array([seed >>> 0]);
      return;
    }
    this.s = new Uint32Array(4);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** The named stream `name` of `seed` (mulberry32; the dataset generator's and the fixtures'). */
  static stream(seed: number, name = ''): Rng {
    return new Rng(fnv1a(`${seed}:${name}`) || 1, 'mulberry32');
  }

  /** Next uint32. */
  nextU32(): number {
    const s = this.s;
    if (s.length === 1) {
      s[0] = s[0] + 0x6d2b79f5;
      let t = s[0];
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (t ^ (t >>> 14)) >>> 0;
    }
    const r = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Standard normal sample (Box-Muller: two draws). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** `int(n)`: uniform integer in [0, n); `int(lo, hi)`: uniform integer in [lo, hi], both inclusive. */
  int(n: number): number;
  int(lo: number, hi: number): number;
  int(a: number, b?: number): number {
    return b === undefined ? Math.floor(this.next() * a) : a + Math.floor(this.next() * (b - a + 1));
  }

  /** One element of a non-empty array. @throws Error for an empty one */
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

  /** Generator state, for checkpoints (resume must reproduce the stream). */
  state(): number[] {
    return [...this.s];
  }
  /** @throws Error when `st` is not a state of this generator's kind (4 words, or 1 for a named stream) */
  setState(st: readonly number[]): void {
    if (st.length !== this.s.length) throw new Error(`Rng state must have ${this.s.length} words, got ${st.length}`);
    this.s.set(st);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** 32-bit FNV-1a hash of a string: turns (seed, name) into a stream's seed. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
