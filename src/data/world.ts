/**
 * The FVQA-mini world: generated entities (imaginary creatures), each with a unique name, a look
 * (shape, body colour, pattern, number of marks, background) and facts drawn from fixed vocabularies.
 * A "head" of entities is familiar (facts in the warm-start data), the "tail" unfamiliar (facts only
 * in the search corpus), and a held-out set never appears in training (issue 5).
 */
import { BACKGROUNDS, COLOUR_NAMES, MAX_MARKS, MIN_MARKS, PATTERNS, SHAPES, type EntityLook } from './look.js';
import { pooledRgb, renderLook, rmsDistance } from './render.js';
import { Rng } from '../engine/random.js';

/**
 * Minimum RMS distance (0..255 scale) between two entities' canonical images pooled to 8x8 cells;
 * twice the largest distance between a jittered sample and its own canonical image (measured: ~8),
 * so the nearest canonical image of any sample is its own entity's.
 */
export const LOOK_SEPARATION = 16;

/** Any two entities' looks differ in at least this many of (shape, colour, pattern, marks, background). */
export const MIN_LOOK_DIFFERENCE = 3;

/** A look drawn uniformly from the vocabularies (shape, colour, pattern, marks, background, in that order of draws). */
export function randomLook(rng: Rng): EntityLook {
  return { shape: rng.pick(SHAPES), colour: rng.pick(COLOUR_NAMES), pattern: rng.pick(PATTERNS), marks: rng.int(MIN_MARKS, MAX_MARKS), background: rng.int(0, BACKGROUNDS.length - 1) };
}

/** Fact vocabularies. Answers are the vocabulary strings; candidates add accepted variants. */
export const REGIONS = [
  'Amber Coast', 'Misty Fen', 'Glass Desert', 'Copper Hills', 'Silent Marsh', 'Frost Steppe',
  'Ember Valley', 'Cloud Forest', 'Salt Flats', 'Moss Canyon', 'Reed Delta', 'Pine Ridge',
] as const;
export const DISCOVERERS = [
  'Ada Marsh', 'Bruno Keel', 'Clara Voss', 'Dmitri Hale', 'Elena Brook', 'Farid Stone', 'Greta Lund',
  'Hugo Fairweather', 'Ines Varga', 'Jonas Pike', 'Kira Sato', 'Luca Ferro', 'Maya Okafor', 'Nils Berg',
] as const;
export const DIETS = ['berries', 'fish', 'moss', 'insects', 'seeds', 'roots', 'algae', 'nectar'] as const;
export const MIN_YEAR = 1750;
export const MAX_YEAR = 1999;

/** The facts of an entity; `name` counts as a fact too (what image search reveals). */
export interface EntityFacts {
  name: string;
  region: string;
  year: number;
  discoverer: string;
  diet: string;
}

/** `familiar`: head (facts in warm-start data); `unfamiliar`: tail; `held_out`: never in training. */
export type Familiarity = 'familiar' | 'unfamiliar' | 'held_out';

export interface Entity {
  /** e.g. "e007": stable id, also names the corpus image and page. */
  id: string;
  familiarity: Familiarity;
  look: EntityLook;
  facts: EntityFacts;
}

export interface WorldConfig {
  seed: number;
  /** Number of entities (default 100). */
  entities: number;
  /** Share of the non-held-out entities that is familiar (default 0.5). */
  familiarShare: number;
  /** Number of held-out entities (default 16). */
  heldOutEntities: number;
}

export const DEFAULT_WORLD: WorldConfig = { seed: 1, entities: 100, familiarShare: 0.5, heldOutEntities: 16 };

const ONSETS = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'dr', 'gl', 'kr', 'pl', 'st', 'th', 'tr', 'qu'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'oa', 'ee'];
const CODAS = ['', 'n', 'r', 'l', 'x', 'm', 'k', 'th', 'nd'];

/** A creature name: 2-3 syllables of onset + vowel, the last with an optional coda, capitalised (e.g. "Zotredroand"). */
export function makeName(rng: Rng): string {
  const syllables = rng.int(2, 3);
  let s = '';
  for (let i = 0; i < syllables; i++) s += rng.pick(ONSETS) + rng.pick(VOWELS) + (i === syllables - 1 ? rng.pick(CODAS) : '');
  return s[0].toUpperCase() + s.slice(1);
}

/**
 * Generates the entities of a world, deterministically from `config.seed`.
 * Looks are unique in (shape, colour, background) and differ from every other entity's in at least
 * MIN_LOOK_DIFFERENCE of (shape, colour, pattern, marks, background), so images of different entities
 * stay distinguishable; their canonical images are at least LOOK_SEPARATION apart.
 * @throws Error when the look space cannot hold that many entities.
 */
export function generateEntities(config: WorldConfig): Entity[] {
  const { seed, entities: n, familiarShare, heldOutEntities } = config;
  const capacity = SHAPES.length * COLOUR_NAMES.length * BACKGROUNDS.length;
  if (n > capacity * 0.6) throw new Error(`at most ${Math.floor(capacity * 0.6)} entities fit the look space; asked for ${n}`);
  if (heldOutEntities >= n) throw new Error(`heldOutEntities (${heldOutEntities}) must be below entities (${n})`);
  const rng = Rng.stream(seed, 'entities');
  const looks: EntityLook[] = [];
  const descriptors: Float32Array[] = [];
  const names = new Set<string>();
  const out: Entity[] = [];
  const differ = (a: EntityLook, b: EntityLook) =>
    +(a.shape !== b.shape) + +(a.colour !== b.colour) + +(a.pattern !== b.pattern) + +(a.marks !== b.marks) + +(a.background !== b.background);
  for (let i = 0; i < n; i++) {
    let look: EntityLook;
    for (let tries = 0; ; tries++) {
      if (tries > 10_000) throw new Error('could not draw a distinct look; lower the entity count');
      look = randomLook(rng);
      const l = look;
      const clash = looks.some(
        (o) => (o.shape === l.shape && o.colour === l.colour && o.background === l.background) || differ(o, l) < MIN_LOOK_DIFFERENCE,
      );
      if (clash) continue;
      const d = pooledRgb(renderLook(l, null), 8);
      if (descriptors.every((o) => rmsDistance(o, d) >= LOOK_SEPARATION)) {
        descriptors.push(d);
        break;
      }
    }
    looks.push(look);
    let name: string;
    do name = makeName(rng);
    while (names.has(name.toLowerCase()));
    names.add(name.toLowerCase());
    out.push({
      id: `e${String(i).padStart(3, '0')}`,
      familiarity: 'unfamiliar',
      look,
      facts: {
        name,
        region: rng.pick(REGIONS),
        year: rng.int(MIN_YEAR, MAX_YEAR),
        discoverer: rng.pick(DISCOVERERS),
        diet: rng.pick(DIETS),
      },
    });
  }
  // Familiarity is drawn from its own stream so that changing the shares keeps every entity's look and facts.
  const order = Rng.stream(seed, 'familiarity').shuffle(out.map((_, i) => i));
  const heldOut = new Set(order.slice(0, heldOutEntities));
  const rest = order.slice(heldOutEntities);
  const familiar = new Set(rest.slice(0, Math.round(rest.length * familiarShare)));
  for (let i = 0; i < n; i++) out[i].familiarity = heldOut.has(i) ? 'held_out' : familiar.has(i) ? 'familiar' : 'unfamiliar';
  return out;
}
