/**
 * The language of FVQA-mini's questions: attributes, question templates, ground truths and candidate
 * answers, question kinds and categories, and the sentences in which pages and the warm start state
 * facts and describe a creature's look. Used by the generator (./fvqa-mini.ts) and its warm-start
 * trajectories (./trajectories.ts).
 */
import { Rng } from '../engine/random.js';
import { COLOUR_NAMES, MAX_MARKS, MIN_MARKS, PATTERNS, SHAPES, type EntityLook } from './look.js';
import { renderLookPng } from './render.js';
import type { Category, QuestionKind } from './types.js';
import type { Entity } from './world.js';

export const FACT_ATTRIBUTES = ['name', 'region', 'year', 'discoverer', 'diet'] as const;
export type FactAttribute = (typeof FACT_ATTRIBUTES)[number];
export const VISUAL_ATTRIBUTES = ['colour', 'shape', 'marks'] as const;
export type Attribute = (typeof FACT_ATTRIBUTES)[number] | (typeof VISUAL_ATTRIBUTES)[number];

export const TEMPLATES: Record<Attribute, readonly string[]> = {
  colour: ['What colour is the body of this creature?', "Which colour is this creature's body?"],
  shape: ["What shape is this creature's body?", 'Which shape does this creature have?'],
  marks: ['How many dark marks are below this creature?', 'How many marks does this creature have?'],
  name: ['What is the name of this creature?', 'What is this creature called?'],
  region: ['Which region is this creature native to?', 'Where does this creature live in the wild?'],
  year: ['In which year was this creature discovered?', 'When was this creature first discovered?'],
  discoverer: ['Who discovered this creature?', 'Which naturalist discovered this creature?'],
  diet: ['What does this creature eat?', 'What is the main food of this creature?'],
};

/** Words used in text-search queries and reasoning for each fact. */
export const FACT_PHRASE: Record<FactAttribute, string> = {
  name: 'name',
  region: 'native region',
  year: 'year of discovery',
  discoverer: 'discoverer',
  diet: 'diet',
};

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/** Ground truth and candidate answers (FVQA `reward_model`) for an attribute of an entity. */
export function answersFor(e: Entity, attribute: Attribute): { ground_truth: string; candidate_answers: string[] } {
  const f = e.facts;
  switch (attribute) {
    case 'colour':
      return { ground_truth: e.look.colour, candidate_answers: e.look.colour === 'grey' ? ['grey', 'gray'] : [e.look.colour] };
    case 'shape':
      return { ground_truth: e.look.shape, candidate_answers: [e.look.shape] };
    case 'marks':
      return { ground_truth: String(e.look.marks), candidate_answers: [String(e.look.marks), NUMBER_WORDS[e.look.marks]] };
    case 'name':
      return { ground_truth: f.name, candidate_answers: [f.name] };
    case 'region':
      return { ground_truth: f.region, candidate_answers: [f.region, `the ${f.region}`] };
    case 'year':
      return { ground_truth: String(f.year), candidate_answers: [String(f.year)] };
    case 'discoverer':
      return { ground_truth: f.discoverer, candidate_answers: [f.discoverer, f.discoverer.split(' ').slice(-1)[0]] };
    case 'diet':
      return { ground_truth: f.diet, candidate_answers: [f.diet] };
  }
}

/** Kind of a question about `attribute` of `e`, and its FVQA category. */
export function kindOf(e: Entity, attribute: Attribute): { kind: QuestionKind; category: Category } {
  if ((VISUAL_ATTRIBUTES as readonly string[]).includes(attribute)) return { kind: 'visual', category: 'search_free' };
  if (e.familiarity === 'familiar') return { kind: 'familiar_fact', category: 'search_free' };
  return { kind: attribute === 'name' ? 'unfamiliar_name' : 'unfamiliar_fact', category: 'search_required' };
}

/**
 * The sentence of an entity's corpus page that states `attribute`, e.g. "The diet of Zorblax is moss".
 * Fact sentences name their attribute with the words of its text-search query (FACT_PHRASE), so a
 * question-focused summary of the page (src/search/summarise.ts) puts the asked-for sentence first, and
 * the warm start states known facts in the same form as the pages do.
 */
export function factSentence(e: Entity, attribute: FactAttribute): string {
  return factSentenceStating(e, attribute, answersFor(e, attribute).ground_truth);
}

/** factSentence with `value` stated for the attribute (true or not); the name sentence ignores `value`. */
export function factSentenceStating(e: Entity, attribute: FactAttribute, value: string): string {
  const f = e.facts;
  switch (attribute) {
    case 'name':
      return `${f.name} is a ${e.look.colour} ${e.look.shape} creature with a ${e.look.pattern} pattern and ${e.look.marks} dark marks`;
    case 'region':
      return `The native region of ${f.name} is the ${value}`;
    case 'year':
      return `The year of discovery of ${f.name} is ${value}`;
    case 'discoverer':
      return `The discoverer of ${f.name} is ${value}`;
    case 'diet':
      return `The diet of ${f.name} is ${value}`;
  }
}

/** The attributes describeLook states, in its order. */
export const LOOK_ATTRIBUTES = ['pattern', 'colour', 'shape', 'marks'] as const;

/** How many values each look attribute takes: a uniform guess reads it right 100 / n percent of the time (the chance rows of scripts/look-reading.ts and scripts/perception-probe.ts). */
export const LOOK_VALUES: Record<(typeof LOOK_ATTRIBUTES)[number], number> = { pattern: PATTERNS.length, colour: COLOUR_NAMES.length, shape: SHAPES.length, marks: MAX_MARKS - MIN_MARKS + 1 };

/** What the image shows, as the warm start says it: "A striped red star, 3 marks." */
export function describeLook(look: EntityLook): string {
  return `A ${look.pattern} ${look.colour} ${look.shape}, ${look.marks} mark${look.marks === 1 ? '' : 's'}.`;
}

/**
 * The sentence in which a direct answer to a visual question states the asked attribute off the look, e.g. "The
 * colour is orange." (FvqaMiniConfig.visualStatement). Its first word is that of a known fact's statement
 * (factSentence: "The diet of X is Y."), not a search's or a guess's, so answering from the look and from memory
 * start alike.
 */
export function lookStatement(look: EntityLook, attribute: (typeof VISUAL_ATTRIBUTES)[number]): string {
  return attribute === 'marks' ? `The number of marks is ${look.marks}.` : `The ${attribute} is ${look[attribute]}.`;
}

/** A look as a turn states it (describeLook's sentence at the start of `text`, after `<reason>`), or null; background is not said. */
export function readDescribedLook(text: string): Omit<EntityLook, 'background'> | null {
  const m = /^(?:<reason>)?A (\w+) (\w+) (\w+), (\d+) marks?\./.exec(text);
  return m ? { pattern: m[1] as EntityLook['pattern'], colour: m[2] as EntityLook['colour'], shape: m[3] as EntityLook['shape'], marks: Number(m[4]) } : null;
}

/** One generated question instance before it becomes rows. */
export interface Instance {
  entity: Entity;
  attribute: Attribute;
  question: string;
  image: Uint8Array;
  kind: QuestionKind;
  category: Category;
}

/**
 * A question instance about `attribute` of `e`: its template and image sample drawn from the world
 * seed's `question:<stream>` and `image:<stream>` streams, its kind and category.
 */
export function makeInstance(e: Entity, attribute: Attribute, stream: string, config: { seed: number; imageSize: number }): Instance {
  const rng = Rng.stream(config.seed, `question:${stream}`);
  return {
    entity: e,
    attribute,
    question: rng.pick(TEMPLATES[attribute]),
    image: renderLookPng(e.look, { seed: config.seed, stream: `image:${stream}` }, config.imageSize),
    ...kindOf(e, attribute),
  };
}
