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
 * reliable. `ragWorkflowShare` adds RAG-workflow trajectories whose imposed first turn is not trained.
 *
 * This file holds the settings, the corpus and the assembly of the splits; the questions' language
 * (templates, answers, kinds, sentences) is in ./questions.ts, the warm-start trajectories in
 * ./trajectories.ts.
 */
import type { CorpusImage, CorpusPage, SearchCorpus } from '../search/corpus.js';
import { firstUserTurn } from '../protocol/prompts.js';
import { IMAGE_SIZE, renderLookPng } from './render.js';
import { Rng } from '../engine/random.js';
import { FACT_ATTRIBUTES, VISUAL_ATTRIBUTES, answersFor, factSentence, makeInstance, type Attribute, type Instance } from './questions.js';
import { CorpusSearch, pairGuesses, trajectory, wrongAnswer, type Behaviour } from './trajectories.js';
import type { ChatMessage, FvqaImage, FvqaRow, ProgressCallback } from './types.js';
import { DEFAULT_WORLD, DIETS, DISCOVERERS, REGIONS, generateEntities, type Entity, type WorldConfig } from './world.js';

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
  /**
   * 1: every warm-start first turn states its decision in the same words after the look
   * (trajectories.ts UNIFORM_DECISION: "I can answer." before a direct answer or a guess, "I need to
   * search." before a search), so the decision is one token pair in every context instead of a
   * different pair per question kind, which a network fits unevenly (issue 15: the sampled warm start
   * leaned on some seeds though its data is neutral). 0 (default): each behaviour's own words.
   */
  uniformDecision: number;
  /**
   * 1: a needless search of a familiar creature's fact names the creature and the fact it lacks ("This is
   * X. I do not know its diet.") and text-searches that fact, where by default it opens "I do not recognise
   * this creature." and image-searches first. The decision to search then comes after the creature is named,
   * per (creature, fact), so GRPO can learn to search the hazy facts and answer the sure ones from memory
   * rather than one rule per question kind (issue 15: search_free's search ratio). Name and visual
   * questions, and search_required ones, are unchanged. Excludes uniformDecision. 0 (default): off.
   */
  factDecision: number;
  /**
   * 1: every warm-start first turn says, after the look, whether the policy recognises the creature ("This
   * is X." for a familiar one, trajectories.ts UNRECOGNISED for any other: unfamiliar, held out, drill),
   * then decides in UNIFORM_DECISION's words; a familiar fact's needless search text-searches it by name.
   * Recognition is knowledge, not the decision: it is the same in a trajectory's direct and search
   * variants, so the warm start stays decision-neutral per kind, and a reading drill's first turn trains
   * it (observedOpening) while its decision stays untrained. Meant to make a new creature (heldout split)
   * one the policy says it does not recognise, and to let GRPO tie the decision to recognition (issue 15);
   * probed on seeds 1 and 2 (docs/fvqa-mini-warm-start.md), the first held where perception did, the second
   * did not: with one pair of decision words GRPO moved search alike for every question. 2: the same
   * recognition sentence, then each context decides on a token of its own: a familiar fact states it or says
   * "I do not know its <fact>." (factDecision's words), a guess says trajectories.ts GUESS and a search of an
   * unrecognised creature "I need to search.", a name or visual question answers right after the
   * recognition sentence or says "I need to search.". 3: as 2, but a guess says trajectories.ts GUESS_APART,
   * whose first word no other first turn has there: with 2, "I will guess." and "I need to search." share
   * their first token, so a policy that does not tell the question kinds apart after UNRECOGNISED (the one
   * context all of them share) learns "I" from every search and every guess and searches about 70% of such
   * questions though the data is neutral (docs/fvqa-mini-warm-start.md, 2026-12-06). Excludes uniformDecision
   * and factDecision. 0 (default): off.
   */
  recognitionFirst: number;
  /**
   * Number of reading drills in the warm start (default 0): RAG-workflow trajectories (first turn
   * untrained, as for ragWorkflowShare) about creatures of small drill worlds of their own (own seeds,
   * looks and corpora; never in this world's corpus, splits or search engine), each creature once, its
   * name or one fact asked. Every drill names a creature the policy has never met, so the only way to
   * write its query and answer is to copy the title off the image-search result: what the heldout split
   * needs, and what a dozen memorised names never teach (issue 15). The trainer replays a drill's searches
   * on its drill world's index (drillCorpora) and also trains the look its first turn describes; SFT
   * deals the drills out over its epochs, so each is seen once (src/rl/sft-plan.ts sftEpochPlan).
   */
  readingDrills: number;
  /**
   * Fewest letters in a reading-drill creature's name (default 0: any): drill creatures with shorter names
   * are skipped. The heldout split's failures are copies of long new names (8-13 letters) off the
   * image-search result, while names have two or three syllables (docs/fvqa-mini-warm-start.md,
   * 2026-12-06, fourth session); this gives the drills only the long ones to copy. Probed on one seed, it
   * did not help (the same miscopies), so no recipe sets it.
   */
  readingDrillNameLetters: number;
  /**
   * Number of GRPO drill creatures (default 0): creatures of drill worlds of their own (as the reading
   * drills', but other worlds), never in the warm start, that the train split asks one search_required
   * question about (the name or a fact). The world's tails teach GRPO to search only for the half-dozen
   * creatures it has memorised as unknown; drill creatures are new, as the held-out split's are, so what
   * GRPO rewards is searching for any creature it has never met (issue 15's heldout target). No visual
   * question: a drill creature's page states its look, so where perception of new creatures is weak GRPO
   * would reward searching on visual questions, and that spills over to the familiar ones (search_free).
   * Instead each drill question comes with a fresh instance of one of the world's search_free train
   * questions, so the prompts stay as balanced between the categories as the world's (the paper's data
   * balancing). Their searches run on their drill world's index (drillWorldOf).
   */
  grpoDrills: number;
  /**
   * Number of look drills in the warm start (default 0): visual questions about creatures of drill worlds
   * of their own, each creature once, each answered directly (the look described, the answer read off the
   * description) and after a needless image search, so the warm start stays decision-neutral per kind.
   * With a dozen memorised creatures a visual answer can be recalled per creature, whatever the
   * description says; on a new creature every time it has to follow the description (the heldout split's
   * visual questions, issue 15). Their searches are replayed on their drill world's index.
   */
  lookDrills: number;
  /**
   * 1: a direct answer to a visual question states the asked attribute off the look before it answers ("A
   * ringed orange square, 2 marks. I do not recognise this creature. The shape is square." then `square`;
   * questions.ts lookStatement). Without it, the only direct answer that follows "I do not recognise this
   * creature." with no words of its own is a visual one, beside guesses of every fact; GRPO then drew guesses
   * from the fact vocabularies on visual questions about unrecognised creatures (13% of sampled direct answers
   * wrong, e.g. "Cloud Forest" for a shape), answering from the look stopped paying more than searching, and
   * the policy searched half of those search_free questions (docs/fvqa-mini-warm-start.md, 2026-12-06, seventh
   * session). The shares of direct and search trajectories are unchanged. 2: only after "I do not recognise this
   * creature." (the case above): a recognised creature's visual answer keeps "This is NAME." alone, so no look
   * statement sits where its fact answers state a fact (with 1, seed 277721's warm start wrote "This is Tokran. The
   * colour is diamond." into fact answers; docs/fvqa-mini-warm-start.md, 2026-12-07). 0 (default): off.
   */
  visualStatement: number;
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
  uniformDecision: 0,
  factDecision: 0,
  recognitionFirst: 0,
  readingDrills: 0,
  readingDrillNameLetters: 0,
  grpoDrills: 0,
  lookDrills: 0,
  visualStatement: 0,
};

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

/** Everything FVQA-mini generates. Splits are FVQA rows; `sft` rows hold whole trajectories in `prompt`. */
export interface FvqaMini {
  config: FvqaMiniConfig;
  entities: Entity[];
  splits: { train: FvqaRow[]; test: FvqaRow[]; heldout: FvqaRow[]; sft: FvqaRow[] };
  corpus: SearchCorpus;
  /** The hazy familiar facts (see FvqaMiniConfig.hazyFactShare) as `entity_id/attribute`, in entity order; empty by default. */
  hazyFacts: string[];
  /**
   * The corpora of the drill worlds (FvqaMiniConfig.readingDrills, grpoDrills and lookDrills), by drill
   * world id: a drill row's searches run on the corpus named by drillWorldOf(row); empty by default.
   */
  drillCorpora: Record<string, SearchCorpus>;
  /**
   * The GRPO drills' creatures (FvqaMiniConfig.grpoDrills), ids as their train rows' entity_id: new to
   * the warm start, so what it says of their looks measures its perception; empty by default.
   */
  grpoDrillCreatures: Entity[];
}

/**
 * The drill world whose corpus a row's searches run on (a key of FvqaMini.drillCorpora: `drill<j>` for a
 * reading drill, `drillg<j>` for a GRPO drill, `drillv<j>` for a look drill), or null for the world's own.
 */
export function drillWorldOf(row: FvqaRow): string | null {
  return /^(drill[gv]?\d+)-/.exec(row.extra_info?.entity_id ?? '')?.[1] ?? null;
}

/** Split names in output order. */
export const SPLITS = ['train', 'test', 'heldout', 'sft'] as const;
export type SplitName = (typeof SPLITS)[number];

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
  const words = ['uniformDecision', 'factDecision', 'recognitionFirst'] as const;
  for (const k of ['uniformDecision', 'factDecision'] as const) {
    if (config[k] !== 0 && config[k] !== 1) throw new Error(`${k} must be 0 or 1, got ${config[k]}`);
  }
  if (![0, 1, 2].includes(config.visualStatement)) throw new Error(`visualStatement must be 0, 1 or 2, got ${config.visualStatement}`);
  if (![0, 1, 2, 3].includes(config.recognitionFirst)) throw new Error(`recognitionFirst must be 0, 1, 2 or 3, got ${config.recognitionFirst}`);
  const set = words.filter((k) => config[k]);
  if (set.length > 1) throw new Error(`${set.join(' and ')} cannot both be set: each sets the words of the search decision`);
  for (const [k, kind] of [['readingDrills', 'reading'], ['grpoDrills', 'grpo'], ['lookDrills', 'look']] as const) {
    const v = config[k];
    if (!(Number.isInteger(v) && v >= 0 && v <= maxDrills(kind))) throw new Error(`${k} must be a whole number in [0, ${maxDrills(kind)}], got ${v}`);
  }
  if (!(Number.isInteger(config.readingDrillNameLetters) && config.readingDrillNameLetters >= 0 && config.readingDrillNameLetters <= 12)) {
    throw new Error(`readingDrillNameLetters must be a whole number in [0, 12], got ${config.readingDrillNameLetters}`);
  }
  for (const k of ['hazyFactShare', 'hazyTruthShare', 'ragChainShare', 'ragWorkflowShare'] as const) {
    const v = config[k];
    if (!(v >= 0 && v <= 1)) throw new Error(`${k} must be in [0, 1], got ${v}`);
  }
}

/** Creatures per drill world: well inside the look space, so drill worlds draw their looks quickly. */
const DRILL_WORLD_SIZE = 60;
/**
 * Where each kind of drill draws its worlds: drill world j of a kind has seed -(seed x 4096 + first + j + 1)
 * for j < worlds (recipes' seeds are >= 0), so the kinds, and the seeds, never share a drill world.
 */
const DRILL_KINDS = {
  reading: { prefix: 'drill', first: 0, worlds: 2048 },
  grpo: { prefix: 'drillg', first: 2048, worlds: 1024 },
  look: { prefix: 'drillv', first: 3072, worlds: 1024 },
} as const;
/** Creatures a drill world keeps at least (it loses at most 16 to clashes with the world). */
const DRILL_WORLD_MIN = 40;
/** Most drills of a kind (FvqaMiniConfig field), so that they fit the kind's drill worlds. */
const maxDrills = (kind: keyof typeof DRILL_KINDS) => DRILL_KINDS[kind].worlds * DRILL_WORLD_MIN;

/**
 * `count` creatures of drill worlds outside `world`, each with the search engine of its drill world.
 * Each drill world (DRILL_KINDS) has its own corpus; its creatures keep their facts, get ids
 * `<prefix><j>-<id>` and are skipped where their name or (shape, colour, background) is one of
 * `world`'s, so no drill contradicts what the world's search engine returns.
 */
function drillCreatures(world: readonly Entity[], config: FvqaMiniConfig, count: number, kind: keyof typeof DRILL_KINDS, onProgress?: ProgressCallback): { creatures: { e: Entity; engine: CorpusSearch }[]; corpora: Record<string, SearchCorpus> } {
  const names = new Set(world.map((e) => e.facts.name.toLowerCase()));
  const lookKey = (e: Entity) => `${e.look.shape}/${e.look.colour}/${e.look.background}`;
  const looks = new Set(world.map(lookKey));
  const { prefix, first, worlds } = DRILL_KINDS[kind];
  const minLetters = kind === 'reading' ? config.readingDrillNameLetters : 0;
  const out: { e: Entity; engine: CorpusSearch }[] = [];
  const corpora: Record<string, SearchCorpus> = {};
  for (let j = 0; out.length < count; j++) {
    // Past its own worlds a kind would reuse another kind's seeds.
    if (j === worlds) throw new Error(`${kind} drills: ${worlds} drill worlds hold only ${out.length} of the ${count} creatures asked for${minLetters ? ` with names of ${minLetters} letters or more (readingDrillNameLetters)` : ''}`);
    const drillWorld: WorldConfig = { seed: -(config.seed * 4096 + first + j + 1), entities: DRILL_WORLD_SIZE, familiarShare: 0, heldOutEntities: 0 };
    const creatures = generateEntities(drillWorld)
      .filter((e) => !names.has(e.facts.name.toLowerCase()) && !looks.has(lookKey(e)))
      .map((e) => ({ ...e, id: `${prefix}${j}-${e.id}` }));
    const corpus = (corpora[`${prefix}${j}`] = buildCorpus(creatures, config));
    const engine = new CorpusSearch(corpus);
    for (const e of creatures.filter((c) => c.facts.name.length >= minLetters).slice(0, count - out.length)) out.push({ e, engine });
    onProgress?.({ phase: `${kind} drill creatures`, done: out.length, total: count, unit: 'entities' });
  }
  return { creatures: out, corpora };
}

/** The instances of FvqaMiniConfig.readingDrills: one fact (or the name) asked of each drill creature, with its engine. */
function readingDrills(world: readonly Entity[], config: FvqaMiniConfig, onProgress?: ProgressCallback): { drills: { inst: Instance; engine: CorpusSearch; stream: string }[]; corpora: Record<string, SearchCorpus> } {
  const { creatures, corpora } = drillCreatures(world, config, config.readingDrills, 'reading', onProgress);
  const drills = creatures.map(({ e, engine }) => {
    const stream = `drill:${e.id}`;
    return { inst: makeInstance(e, Rng.stream(config.seed, stream).pick(FACT_ATTRIBUTES), stream, config), engine, stream };
  });
  return { drills, corpora };
}

/** The train questions of FvqaMiniConfig.grpoDrills: per creature one fact (or the name). */
function grpoDrills(world: readonly Entity[], config: FvqaMiniConfig, onProgress?: ProgressCallback): { questions: Instance[]; corpora: Record<string, SearchCorpus>; creatures: Entity[] } {
  const { creatures, corpora } = drillCreatures(world, config, config.grpoDrills, 'grpo', onProgress);
  const questions = creatures.map(({ e }) => {
    const a = Rng.stream(config.seed, `grpo-drill:${e.id}`).pick(FACT_ATTRIBUTES);
    return makeInstance(e, a, `grpo-drill:${e.id}:${a}`, config);
  });
  return { questions, corpora, creatures: creatures.map(({ e }) => e) };
}

/**
 * Generates FVQA-mini deterministically: same config, same rows, same image bytes.
 * Splits: train (all non-held-out entities: every fact x `trainSamplesPerFact`, plus visual questions),
 * test (`testSize` rows, `testFamiliarShare` of them about familiar entities, fresh image samples and
 * instances disjoint from train), heldout (held-out entities: every fact and visual attribute), and sft
 * (warm-start trajectories on train entities with their own image samples).
 * @param onProgress called after each phase, every 64 rows and, with a total, every drill world and 64 drills.
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
  const add = (inst: Instance, b: Behaviour, k: number, stream: string, engine = search) => {
    // The default guess draws from the shared 'sft' stream (as it always did); the neutral one per pair and sample.
    const stated = b === 'direct' || b === 'rag_workflow' ? recalled(inst, k, stream)
      : b !== 'guess' ? ''
        : neutral ? guessAt('guess', inst, k)
          : wrongAnswer(inst.entity, inst.attribute, entities, srng);
    const searches = b === 'needless_search' || b === 'search_chain';
    const ragChain = b === 'rag_workflow' || (searches && config.ragChainShare > 0 && (inst.attribute === 'name' || inst.kind === 'visual')
      && Rng.stream(config.seed, `rag:${stream}`).next() < config.ragChainShare);
    const t = trajectory(inst, b, engine, { stated, ragChain, uniformDecision: config.uniformDecision === 1, factDecision: config.factDecision === 1, recognitionFirst: config.recognitionFirst, visualStatement: config.visualStatement === 1 || (config.visualStatement === 2 && inst.entity.familiarity !== 'familiar') });
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
  // Drills are most of a drilled world's rows: their progress has a total.
  const drillTick = (phase: string, i: number, total: number) => (i % 64 === 63 || i === total - 1) && onProgress?.({ phase, done: i + 1, total, unit: 'rows' });
  const { drills, corpora: readingCorpora } = readingDrills(entities, config, onProgress);
  drills.forEach(({ inst, engine, stream }, i) => {
    add(inst, 'rag_workflow', 0, stream, engine);
    drillTick('reading drills', i, drills.length);
  });
  // Look drills: a direct answer and a needless search each, so every kind stays decision-neutral.
  const { creatures: lookCreatures, corpora: lookCorpora } = drillCreatures(entities, config, config.lookDrills, 'look', onProgress);
  lookCreatures.forEach(({ e, engine }, i) => {
    const stream = `look-drill:${e.id}`;
    const a = Rng.stream(config.seed, stream).pick(VISUAL_ATTRIBUTES);
    add(makeInstance(e, a, stream, config), 'direct', 0, stream, engine);
    add(makeInstance(e, a, `${stream}:extra`, config), 'needless_search', 0, `${stream}:extra`, engine);
    drillTick('look drills', i, lookCreatures.length);
  });
  // GRPO drills go after the world's rows, so that a world without them keeps its train split. Each
  // drill question (search_required) comes with a fresh instance of one of the world's own search_free
  // train questions, drawn from them uniformly: the prompt mix stays as balanced as the world's.
  const { questions, corpora: grpoCorpora, creatures: grpoDrillCreatures } = grpoDrills(entities, config, onProgress);
  const searchFree = train.filter((row) => row.category === 'search_free');
  const brng = Rng.stream(config.seed, 'grpo-drill-balance');
  questions.forEach((inst, i) => {
    train.push(questionRow(inst, 'train', train.length));
    const { entity_id, attribute } = brng.pick(searchFree).extra_info!;
    const e = entities.find((x) => x.id === entity_id)!;
    train.push(questionRow(makeInstance(e, attribute as Attribute, `grpo-balance:${i}`, config), 'train', train.length));
  });
  onProgress?.({ phase: 'done', done: made, total: made, unit: 'rows' });
  return { config, entities, splits: { train, test, heldout, sft }, corpus, hazyFacts, drillCorpora: { ...readingCorpora, ...lookCorpora, ...grpoCorpora }, grpoDrillCreatures };
}
