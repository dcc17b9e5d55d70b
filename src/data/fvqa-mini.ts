/**
 * FVQA-mini: a generated FactualVQA world small enough for a ~1M-parameter policy (issue 5).
 * From one seed it produces the entities, question rows in the FVQA schema for train / test /
 * held-out splits, warm-start (SFT) trajectories in the MMSearch-R1 tool protocol, and the search
 * corpus (format of src/search/corpus.ts) that the `local` search backend serves.
 *
 * Question kinds and FVQA `category` labels:
 *   visual           colour / shape / number of marks, answerable from pixels        search_free
 *   familiar_fact    name or fact of a familiar (head) entity, in the warm-start data search_free
 *   unfamiliar_name  name of an unfamiliar (tail) entity: needs image search           search_required
 *   unfamiliar_fact  fact of a tail entity: image search, then text search on the name search_required
 *
 * Two warm-start designs (issue 15). The default one is category-aligned: search_free pairs are
 * answered directly (a `needlessSearchShare` of them also searched), search_required pairs searched (a
 * `guessWithoutSearchShare` of them also guessed), so imitation alone already decides when to search.
 * With `decisionNeutral: 1` every warm-start slot of every question kind yields one direct-answer and
 * one search trajectory, so whether a trajectory searches does not depend on whether the answer is
 * known, and a direct answer without the knowledge is a guess that varies from sample to sample over
 * the attribute's whole vocabulary. `hazyFactShare` makes the memory of familiar facts imperfect: the
 * direct answers of that share of familiar (entity, fact) pairs state noisy values, while search stays
 * reliable.
 */
import type { CorpusImage, CorpusPage, SearchCorpus } from '../search/corpus.js';
import { decodeImage } from './image.js';
import {
  IMAGE_SEARCH_ACTION, answerAction, assistantTurn, firstUserTurn, formatImageSearchResults,
  formatTextSearchResults, textSearchAction, toolResultTurn,
} from '../protocol/prompts.js';
import { RESULTS_PER_SEARCH } from '../protocol/tools.js';
import type { EntityLook } from './look.js';
import { IMAGE_SIZE, pooledRgb, renderLookPng } from './render.js';
import { Rng } from '../engine/random.js';
import type { Category, ChatMessage, FvqaImage, FvqaRow, ProgressCallback, QuestionKind } from './types.js';
import {
  DEFAULT_WORLD, DIETS, DISCOVERERS, REGIONS, generateEntities, MIN_YEAR, MAX_YEAR, type Entity, type WorldConfig,
} from './world.js';

/** Generator settings; every size is configurable, defaults keep CPU tests to about a second. */
export interface FvqaMiniConfig extends WorldConfig {
  /** Image side in pixels (default 64). */
  imageSize: number;
  /** Train question instances per (entity, fact) for non-held-out entities (default 2). */
  trainSamplesPerFact: number;
  /** Train visual questions per non-held-out entity (default 1). */
  trainVisualPerEntity: number;
  /** Test rows (default 160), drawn from non-held-out entities. */
  testSize: number;
  /** Share of test rows about familiar entities; the rest are about unfamiliar ones (default 0.5). */
  testFamiliarShare: number;
  /** Warm-start instances per (entity, attribute) of the train entities, each with its own image sample and template (default 1). */
  sftSamplesPerPair: number;
  /** Share of familiar/visual warm-start pairs that also get a needless image-search trajectory (default 0.25). */
  needlessSearchShare: number;
  /** Share of unfamiliar warm-start pairs that also get a (wrong) answer without search (default 0.25). */
  guessWithoutSearchShare: number;
  /** Distractor pages in the corpus: regions, naturalists, foods (default 24, at most 34). */
  distractorPages: number;
  /**
   * 1: decision-neutral warm start (issue 15): every (entity, attribute, sample) slot of every question
   * kind gets one direct-answer and one search trajectory (each its own image sample and template),
   * so per kind and category exactly half the warm-start trajectories search; a direct answer about an
   * unfamiliar entity is a guess, uniform over the attribute's vocabulary (truth included, so the truth
   * is not stated more often than any other value) and different for each sample of a pair (see
   * pairGuesses); needlessSearchShare and guessWithoutSearchShare are then unused. 0 (default): the
   * category-aligned warm start.
   */
  decisionNeutral: number;
  /**
   * Share of the familiar entities' (entity, fact) pairs, names excepted, whose direct-answer warm-start
   * trajectories state a noisy value: memory of familiar facts that is good but imperfect, while search
   * stays reliable (default 0: every familiar fact stated correctly). The pairs are drawn exactly
   * (round(share x pairs)) from their own stream; their question rows keep kind familiar_fact and
   * category search_free.
   */
  hazyFactShare: number;
  /** Probability that a hazy pair's direct answer states the truth; else noise drawn as a guess is (pairGuesses; default 0). */
  hazyTruthShare: number;
  /**
   * Share of the search trajectories of name and visual questions that go on, after the image search,
   * to a text search about the recognised entity (`<name> creature`, whose page's first sentence
   * states the name and the look) before answering, as the RAG workflow (paper Table 1) always does.
   * The warm start then teaches reading retrieval the question did not need, for every question kind
   * (issue 15: RAG within 10 points of on-demand). Drawn per trajectory from its own stream; default 0.
   */
  ragChainShare: number;
  /**
   * Probability that a warm-start slot (entity, attribute, sample) also gets a RAG-workflow trajectory
   * (paper Table 1's baseline): the reasoning of a direct answer (or of a guess, for search_required),
   * an imposed image search, the recognised entity, an imposed text search whose query the policy
   * writes, and the answer read off the results (the truth, also where memory is hazy). Its rows carry
   * `extra_info.search_mode` 'rag' and the trainer does not train their first assistant turn (the
   * reasoning and the imposed search), so the share of trajectories whose trained first turn searches
   * stays the same per category: the warm start learns to read retrieval it did not ask for (issue 15:
   * RAG within 10 points of on-demand) without learning when to ask. Default 0.
   */
  ragWorkflowShare: number;
}

export const DEFAULT_FVQA_MINI: FvqaMiniConfig = {
  ...DEFAULT_WORLD,
  imageSize: IMAGE_SIZE,
  trainSamplesPerFact: 2,
  trainVisualPerEntity: 1,
  testSize: 160,
  testFamiliarShare: 0.5,
  sftSamplesPerPair: 1,
  needlessSearchShare: 0.25,
  guessWithoutSearchShare: 0.25,
  distractorPages: 24,
  decisionNeutral: 0,
  hazyFactShare: 0,
  hazyTruthShare: 0,
  ragChainShare: 0,
  ragWorkflowShare: 0,
};

export const FACT_ATTRIBUTES = ['name', 'region', 'year', 'discoverer', 'diet'] as const;
type FactAttribute = (typeof FACT_ATTRIBUTES)[number];
export const VISUAL_ATTRIBUTES = ['colour', 'shape', 'marks'] as const;
export type Attribute = (typeof FACT_ATTRIBUTES)[number] | (typeof VISUAL_ATTRIBUTES)[number];

const TEMPLATES: Record<Attribute, readonly string[]> = {
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
const FACT_PHRASE: Record<FactAttribute, string> = {
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
function factSentence(e: Entity, attribute: FactAttribute): string {
  return factSentenceStating(e, attribute, answersFor(e, attribute).ground_truth);
}

/** factSentence with `value` stated for the attribute (true or not); the name sentence ignores `value`. */
function factSentenceStating(e: Entity, attribute: FactAttribute, value: string): string {
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

/** What the image shows, as the warm start says it: "A striped red star, 3 marks." */
function describeLook(look: EntityLook): string {
  return `A ${look.pattern} ${look.colour} ${look.shape}, ${look.marks} mark${look.marks === 1 ? '' : 's'}.`;
}

/** URL of an entity's page; stable identifier, never fetched. */
export const pageUrl = (title: string) => `https://fvqa-mini.example/wiki/${encodeURIComponent(title.replace(/ /g, '_'))}`;

/** Builds the corpus: one page and one image per entity (held-out ones included), plus distractor pages. */
export function buildCorpus(entities: readonly Entity[], config: FvqaMiniConfig): SearchCorpus {
  const pages: CorpusPage[] = entities.map((e) => ({
    id: `page-${e.id}`,
    title: e.facts.name,
    url: pageUrl(e.facts.name),
    text: FACT_ATTRIBUTES.map((a) => factSentence(e, a)).join('. ') + '.',
  }));
  const distractors: { title: string; text: string }[] = [
    ...REGIONS.map((r) => ({
      title: r,
      text: `The ${r} is a region of the FVQA-mini world. Naturalists have surveyed the ${r} for many years. Travel to the ${r} is easiest in spring`,
    })),
    ...DISCOVERERS.map((d) => ({
      title: d,
      text: `${d} was a naturalist of the FVQA-mini world. ${d} kept detailed field notebooks. ${d} wrote letters about travel and weather`,
    })),
    ...DIETS.map((d) => ({
      title: `${d[0].toUpperCase()}${d.slice(1)} (food)`,
      text: `Many creatures of the FVQA-mini world eat ${d}. Supplies of ${d} change with the seasons`,
    })),
  ];
  const rng = Rng.stream(config.seed, 'distractors');
  for (const [i, d] of rng.shuffle(distractors).slice(0, config.distractorPages).entries()) {
    pages.push({ id: `page-d${String(i).padStart(3, '0')}`, title: d.title, url: pageUrl(d.title), text: `${d.text}.` });
  }
  const images: CorpusImage[] = entities.map((e) => ({
    id: `img-${e.id}`,
    title: e.facts.name,
    url: pageUrl(e.facts.name),
    file: `images/${e.id}.png`,
    pageId: `page-${e.id}`,
    png: renderLookPng(e.look, null, config.imageSize),
  }));
  return { pages, images };
}

/** 16x16 pooled RGB descriptor of PNG bytes, for ranking corpus images in warm-start image searches. */
const pooled = (png: Uint8Array) => pooledRgb(decodeImage(png), 16);

/** One generated question instance before it becomes rows. */
interface Instance {
  entity: Entity;
  attribute: Attribute;
  question: string;
  image: Uint8Array;
  kind: QuestionKind;
  category: Category;
}

/** Everything FVQA-mini generates. Splits are FVQA rows; `sft` rows hold whole trajectories in `prompt`. */
export interface FvqaMini {
  config: FvqaMiniConfig;
  entities: Entity[];
  splits: { train: FvqaRow[]; test: FvqaRow[]; heldout: FvqaRow[]; sft: FvqaRow[] };
  corpus: SearchCorpus;
  /** The hazy familiar facts (see FvqaMiniConfig.hazyFactShare) as `entity_id/attribute`, in entity order; empty by default. */
  hazyFacts: string[];
}

/** Split names in output order. */
export const SPLITS = ['train', 'test', 'heldout', 'sft'] as const;
export type SplitName = (typeof SPLITS)[number];

function makeInstance(e: Entity, attribute: Attribute, stream: string, config: FvqaMiniConfig): Instance {
  const rng = Rng.stream(config.seed, `question:${stream}`);
  return {
    entity: e,
    attribute,
    question: rng.pick(TEMPLATES[attribute]),
    image: renderLookPng(e.look, { seed: config.seed, stream: `image:${stream}` }, config.imageSize),
    ...kindOf(e, attribute),
  };
}

function toRow(inst: Instance, split: SplitName, index: number, prompt: ChatMessage[], images: FvqaImage[]): FvqaRow {
  return {
    data_id: `fvqa_mini_${split}_${index}`,
    data_source: `fvqa_mini/${split}`,
    prompt,
    images,
    reward_model: { ...answersFor(inst.entity, inst.attribute), style: 'rule' },
    category: inst.category,
    image_urls: null,
    extra_info: {
      split,
      index,
      question: inst.question,
      question_kind: inst.kind,
      entity_id: inst.entity.id,
      attribute: inst.attribute,
    },
  };
}

/** A question row: a single user turn (instructions, `<image>`, question) and the question image. */
function questionRow(inst: Instance, split: SplitName, index: number): FvqaRow {
  return toRow(inst, split, index, [{ role: 'user', content: firstUserTurn(inst.question) }], [{ bytes: inst.image, path: null }]);
}

/** Simulated search tools over the corpus, used to write the warm-start trajectories. */
class CorpusSearch {
  private readonly descriptors: Float32Array[];
  constructor(private readonly corpus: SearchCorpus) {
    this.descriptors = corpus.images.map((im) => pooled(im.png));
  }

  /** Top-k corpus images by L2 distance of pooled pixels; ties by id. */
  image(png: Uint8Array, k = RESULTS_PER_SEARCH): CorpusImage[] {
    const q = pooled(png);
    const scored = this.corpus.images.map((im, i) => {
      let d = 0;
      const v = this.descriptors[i];
      for (let j = 0; j < q.length; j++) d += (q[j] - v[j]) ** 2;
      return { im, d };
    });
    scored.sort((a, b) => a.d - b.d || (a.im.id < b.im.id ? -1 : 1));
    return scored.slice(0, k).map((s) => s.im);
  }

  /** Top-k pages by query-term hits (title hits count triple); the page text is the summary (<= 5 sentences). */
  text(query: string, k = RESULTS_PER_SEARCH): CorpusPage[] {
    const terms = query.toLowerCase().split(/[^a-z0-9]+/).filter((t) => t.length > 2);
    const scored = this.corpus.pages.map((p) => {
      const title = p.title.toLowerCase().split(/[^a-z0-9]+/);
      const text = p.text.toLowerCase().split(/[^a-z0-9]+/);
      const score = terms.reduce((s, t) => s + 3 * +title.includes(t) + +text.includes(t), 0);
      return { p, score };
    });
    scored.sort((a, b) => b.score - a.score || (a.p.id < b.p.id ? -1 : 1));
    return scored.slice(0, k).map((s) => s.p);
  }
}

type Behaviour = 'direct' | 'needless_search' | 'search_chain' | 'guess' | 'rag_workflow';

/**
 * Builds one warm-start trajectory (user/assistant turns, images in placeholder order).
 * @param stated the answer of a 'direct' or 'guess' trajectory: the truth for a known fact, a noisy
 *   value for a hazy one, a guess without the knowledge (unused by the search behaviours)
 */
function trajectory(inst: Instance, behaviour: Behaviour, search: CorpusSearch, stated: string, ragChain: boolean): {
  prompt: ChatMessage[];
  images: FvqaImage[];
} {
  const e = inst.entity;
  const name = e.facts.name;
  const truth = answersFor(e, inst.attribute).ground_truth;
  const prompt: ChatMessage[] = [{ role: 'user', content: firstUserTurn(inst.question) }];
  const images: FvqaImage[] = [{ bytes: inst.image, path: null }];
  const say = (content: string) => prompt.push({ role: 'assistant', content });
  const visual = inst.kind === 'visual';
  // Reasoning is short on purpose: every token is compute on a CPU, and rollouts generate it token by token.
  // Every first turn starts by describing the image: dense visual supervision in every trajectory (a
  // from-scratch vision tower learns little from one answer token per visual question) and the look
  // that recognition rests on. Visual questions are answered from the description.
  const look = describeLook(e.look);

  const knownReasoning = () => visual ? look
    : inst.attribute === 'name' ? `${look} This is ${name}.`
      : `${look} This is ${name}. ${factSentenceStating(e, inst.attribute as FactAttribute, stated)}.`;
  const guessReasoning = `${look} I think I know this creature.`;
  if (behaviour === 'direct') {
    say(assistantTurn(knownReasoning(), answerAction(stated)));
    return { prompt, images };
  }
  if (behaviour === 'guess') {
    say(assistantTurn(guessReasoning, answerAction(stated)));
    return { prompt, images };
  }
  // The other behaviours start with an image search: asked for by the policy, or imposed by the RAG
  // workflow after the reasoning the policy writes when it answers from memory.
  const opening = behaviour !== 'rag_workflow' ? `${look} I do not recognise this creature.`
    : inst.category === 'search_free' ? knownReasoning() : guessReasoning;
  say(assistantTurn(opening, IMAGE_SEARCH_ACTION));
  const hits = search.image(inst.image);
  prompt.push({ role: 'user', content: toolResultTurn('image_search', formatImageSearchResults(hits), inst.question) });
  for (const h of hits) images.push({ bytes: h.png, path: null });
  const seen = `The top result is ${name}.`;
  // A needless search on a fact question goes on to the text search, as an unsure policy would: the
  // warm start then holds the whole chain for familiar entities too, and GRPO can find it redundant.
  if ((inst.attribute === 'name' || visual) && !ragChain) {
    say(assistantTurn(seen, answerAction(truth)));
    return { prompt, images };
  }
  // Fact questions search the asked-for fact; name and visual ones (ragChain) the entity's page, whose
  // first sentence states the name and the look, as the RAG workflow's forced text search would.
  const attr: FactAttribute = inst.attribute === 'name' || visual ? 'name' : (inst.attribute as FactAttribute);
  const need = attr === 'name' ? 'creature' : FACT_PHRASE[attr];
  const query = `${name} ${need}`;
  say(assistantTurn(`${seen} I need its ${attr === 'name' ? 'page' : need}.`, textSearchAction(query)));
  const pages = search.text(query);
  const results = formatTextSearchResults(pages.map((p) => ({ url: p.url, summary: p.text })));
  prompt.push({ role: 'user', content: toolResultTurn('text_search', results, inst.question) });
  say(assistantTurn(`${factSentence(e, attr)}.`, answerAction(truth)));
  return { prompt, images };
}

/**
 * Every answer a guess or a noisy memory may give for `attribute`: the fact vocabularies, the years
 * MIN_YEAR..MAX_YEAR, and for names `names`. Empty for visual attributes (answered from pixels).
 */
function answerVocabulary(attribute: Attribute, names: readonly string[]): readonly string[] {
  return attribute === 'name' ? names
    : attribute === 'region' ? REGIONS
      : attribute === 'discoverer' ? DISCOVERERS
        : attribute === 'diet' ? DIETS
          : attribute === 'year' ? Array.from({ length: MAX_YEAR - MIN_YEAR + 1 }, (_, i) => String(MIN_YEAR + i))
            : [];
}

/** A plausible wrong answer from the same vocabulary (a hallucination, for the guess trajectories). */
function wrongAnswer(e: Entity, attribute: Attribute, entities: readonly Entity[], rng: Rng): string {
  const truth = answersFor(e, attribute).ground_truth;
  const pool = answerVocabulary(attribute, entities.filter((o) => o.familiarity === 'familiar').map((o) => o.facts.name));
  const options = pool.filter((x) => x !== truth);
  if (options.length === 0) throw new Error(`no wrong answer available for ${attribute}`);
  return rng.pick(options);
}

/**
 * Answers without the knowledge for the samples of one (entity, attribute) pair: sample k gets the
 * k-th value of a shuffle of the attribute's whole vocabulary, the truth included (the stream is the
 * pair's, `purpose:entity:attribute`). Each sample is uniform over the vocabulary, so a guess (or a
 * noisy memory) is right only by chance and the truth is never more often stated than any other value;
 * and a pair's samples never repeat a value (while there are fewer samples than values), so no fixed
 * answer per question can be memorised. Names are drawn from `names` (the in-world entities').
 */
export function pairGuesses(seed: number, purpose: string, e: Entity, attribute: Attribute, names: readonly string[]): readonly string[] {
  const pool = answerVocabulary(attribute, names);
  if (pool.length === 0) throw new Error(`no guess vocabulary for ${attribute}`);
  return Rng.stream(seed, `${purpose}:${e.id}:${attribute}`).shuffle(pool);
}

/**
 * The hazy familiar facts: exactly round(hazyFactShare x pairs) of the familiar entities' (entity,
 * fact) pairs, names excepted, drawn from the 'hazy' stream, as `entity_id/attribute` in entity order.
 */
function hazyPairs(entities: readonly Entity[], config: FvqaMiniConfig): string[] {
  if (config.hazyFactShare === 0) return [];
  const pairs = entities
    .filter((e) => e.familiarity === 'familiar')
    .flatMap((e) => FACT_ATTRIBUTES.filter((a) => a !== 'name').map((a) => `${e.id}/${a}`));
  const chosen = new Set(Rng.stream(config.seed, 'hazy').shuffle(pairs).slice(0, Math.round(config.hazyFactShare * pairs.length)));
  return pairs.filter((p) => chosen.has(p));
}

/** @throws Error naming an issue-15 option whose value is out of range. */
function checkWarmStartOptions(config: FvqaMiniConfig): void {
  if (config.decisionNeutral !== 0 && config.decisionNeutral !== 1) throw new Error(`decisionNeutral must be 0 or 1, got ${config.decisionNeutral}`);
  if (!(Number.isInteger(config.extraTailEntities) && config.extraTailEntities >= 0)) throw new Error(`extraTailEntities must be a whole number >= 0, got ${config.extraTailEntities}`);
  for (const k of ['hazyFactShare', 'hazyTruthShare', 'ragChainShare', 'ragWorkflowShare'] as const) {
    const v = config[k];
    if (!(v >= 0 && v <= 1)) throw new Error(`${k} must be in [0, 1], got ${v}`);
  }
}

/**
 * Generates FVQA-mini deterministically: same config, same rows, same image bytes.
 * Splits: train (all non-held-out entities: every fact x `trainSamplesPerFact`, plus visual questions),
 * test (`testSize` rows, `testFamiliarShare` of them about familiar entities, fresh image samples and
 * instances disjoint from train), heldout (held-out entities: every fact and visual attribute), and sft
 * (warm-start trajectories on train entities with their own image samples).
 * @param onProgress called after each phase and every 64 rows.
 * @throws Error when the configuration is impossible (too many entities, test larger than its pool).
 */
export function generateFvqaMini(overrides: Partial<FvqaMiniConfig> = {}, onProgress?: ProgressCallback): FvqaMini {
  const config: FvqaMiniConfig = { ...DEFAULT_FVQA_MINI, ...overrides };
  checkWarmStartOptions(config);
  const entities = generateEntities(config);
  onProgress?.({ phase: 'entities', done: entities.length, total: entities.length, unit: 'entities' });
  const corpus = buildCorpus(entities, config);
  onProgress?.({ phase: 'corpus', done: corpus.images.length, total: corpus.images.length, unit: 'images' });
  const search = new CorpusSearch(corpus);
  // Train and test entities; the extra tail entities (warm_start_tail) only appear in warm-start search chains.
  const inWorld = entities.filter((e) => e.familiarity === 'familiar' || e.familiarity === 'unfamiliar');
  const heldOut = entities.filter((e) => e.familiarity === 'held_out');
  let made = 0;
  const tick = (phase: string) => {
    if (++made % 64 === 0) onProgress?.({ phase, done: made, total: null, unit: 'rows' });
  };

  const train: FvqaRow[] = [];
  const vrng = Rng.stream(config.seed, 'train-visual');
  for (const e of inWorld) {
    for (const a of FACT_ATTRIBUTES) {
      for (let k = 0; k < config.trainSamplesPerFact; k++) {
        train.push(questionRow(makeInstance(e, a, `train:${e.id}:${a}:${k}`, config), 'train', train.length));
        tick('train');
      }
    }
    for (const a of vrng.shuffle(VISUAL_ATTRIBUTES).slice(0, config.trainVisualPerEntity)) {
      train.push(questionRow(makeInstance(e, a, `train:${e.id}:${a}:0`, config), 'train', train.length));
      tick('train');
    }
  }
  // Extra tail entities: the name and fact of their warm-start chains (search_required) and two visual
  // questions (search_free), so GRPO sees many more entities it must search for than it can memorise.
  const tails = entities.filter((x) => x.familiarity === 'warm_start_tail');
  const tailFact = (e: Entity) => Rng.stream(config.seed, `tail:${e.id}`).pick(FACT_ATTRIBUTES.filter((a) => a !== 'name'));
  for (const e of tails) {
    for (const a of ['name', tailFact(e), ...Rng.stream(config.seed, `tail-visual:${e.id}`).shuffle(VISUAL_ATTRIBUTES).slice(0, 2)] as const) {
      train.push(questionRow(makeInstance(e, a, `train:${e.id}:${a}:0`, config), 'train', train.length));
      tick('train');
    }
  }

  const trng = Rng.stream(config.seed, 'test');
  const attrs: Attribute[] = [...FACT_ATTRIBUTES, ...VISUAL_ATTRIBUTES];
  const pool = (fam: boolean) =>
    trng.shuffle(inWorld.filter((e) => (e.familiarity === 'familiar') === fam).flatMap((e) => attrs.map((a) => [e, a] as const)));
  const nFamiliar = Math.round(config.testSize * config.testFamiliarShare);
  const famPool = pool(true);
  const unfPool = pool(false);
  if (nFamiliar > famPool.length || config.testSize - nFamiliar > unfPool.length) {
    throw new Error(`testSize ${config.testSize} exceeds the ${famPool.length} familiar / ${unfPool.length} unfamiliar test questions available`);
  }
  const test: FvqaRow[] = [];
  for (const [e, a] of [...famPool.slice(0, nFamiliar), ...unfPool.slice(0, config.testSize - nFamiliar)]) {
    test.push(questionRow(makeInstance(e, a, `test:${e.id}:${a}`, config), 'test', test.length));
    tick('test');
  }

  const heldout: FvqaRow[] = [];
  for (const e of heldOut) {
    for (const a of attrs) {
      heldout.push(questionRow(makeInstance(e, a, `heldout:${e.id}:${a}`, config), 'heldout', heldout.length));
      tick('heldout');
    }
  }

  // Warm-start: every familiar fact and every visual attribute answered directly at least once, every
  // unfamiliar fact by a correct search chain; extras make the policy's search rate middling (default),
  // or give every slot both a direct answer and a search (decisionNeutral).
  const sft: FvqaRow[] = [];
  const srng = Rng.stream(config.seed, 'sft');
  const hazyFacts = hazyPairs(entities, config);
  const hazy = new Set(hazyFacts);
  const names = inWorld.map((e) => e.facts.name);
  const neutral = config.decisionNeutral === 1;
  const guessCache = new Map<string, readonly string[]>();
  /** The k-th sample's answer without knowledge of `inst`'s fact (see pairGuesses). */
  const guessAt = (purpose: string, inst: Instance, k: number) => {
    const key = `${purpose}:${inst.entity.id}:${inst.attribute}`;
    let g = guessCache.get(key);
    if (!g) guessCache.set(key, (g = pairGuesses(config.seed, purpose, inst.entity, inst.attribute, names)));
    return g[k % g.length];
  };
  /** What the k-th direct answer of `inst` states: the truth, or for a hazy fact noise (the truth with probability hazyTruthShare). */
  const recalled = (inst: Instance, k: number, stream: string) => {
    const truth = answersFor(inst.entity, inst.attribute).ground_truth;
    if (!hazy.has(`${inst.entity.id}/${inst.attribute}`)) return truth;
    return Rng.stream(config.seed, `hazy:${stream}`).next() < config.hazyTruthShare ? truth : guessAt('hazy', inst, k);
  };
  const add = (inst: Instance, b: Behaviour, k: number, stream: string) => {
    // The default guess draws from the shared 'sft' stream (as it always did); the neutral one per pair and sample.
    const stated = b === 'direct' || b === 'rag_workflow' ? recalled(inst, k, stream)
      : b !== 'guess' ? ''
        : neutral ? guessAt('guess', inst, k)
          : wrongAnswer(inst.entity, inst.attribute, entities, srng);
    const searches = b === 'needless_search' || b === 'search_chain';
    const ragChain = b === 'rag_workflow' || (searches && config.ragChainShare > 0 && (inst.attribute === 'name' || inst.kind === 'visual')
      && Rng.stream(config.seed, `rag:${stream}`).next() < config.ragChainShare);
    const t = trajectory(inst, b, search, stated, ragChain);
    const row = toRow(inst, 'sft', sft.length, t.prompt, t.images);
    if (b === 'rag_workflow') row.extra_info!.search_mode = 'rag';
    sft.push(row);
    tick('sft');
  };
  /** The warm-start trajectories of one (entity, attribute, sample k) slot. */
  const slot = (e: Entity, a: Attribute, k: number, stream: string) => {
    const inst = makeInstance(e, a, stream, config);
    const extra = () => makeInstance(e, a, `${stream}:extra`, config);
    if (inst.category === 'search_free') {
      add(inst, 'direct', k, stream);
      if (neutral || srng.next() < config.needlessSearchShare) add(extra(), 'needless_search', k, `${stream}:extra`);
    } else {
      add(inst, 'search_chain', k, stream);
      if (neutral || srng.next() < config.guessWithoutSearchShare) add(extra(), 'guess', k, `${stream}:extra`);
    }
    if (config.ragWorkflowShare > 0 && Rng.stream(config.seed, `ragwf:${stream}`).next() < config.ragWorkflowShare) {
      add(makeInstance(e, a, `${stream}:rag`, config), 'rag_workflow', k, `${stream}:rag`);
    }
  };
  for (let k = 0; k < config.sftSamplesPerPair; k++) {
    // Sample 0 keeps the stream names of a single-sample world, so that its rows do not change.
    const tag = k === 0 ? '' : `:${k}`;
    for (const e of inWorld) for (const a of attrs) slot(e, a, k, `sft:${e.id}:${a}${tag}`);
  }
  // Each extra tail entity once: its name and one fact drawn from its own stream.
  for (const e of tails) for (const a of ['name', tailFact(e)] as const) slot(e, a, 0, `sft:${e.id}:${a}`);
  onProgress?.({ phase: 'done', done: made, total: made, unit: 'rows' });
  return { config, entities, splits: { train, test, heldout, sft }, corpus, hazyFacts };
}
