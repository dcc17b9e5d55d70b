/**
 * FVQA-mini's warm-start (SFT) trajectories in the MMSearch-R1 tool protocol: direct answers, guesses,
 * search chains and RAG-workflow trajectories (see FvqaMiniConfig in ./fvqa-mini.ts for when each is
 * made), written against simulated search tools over the world's corpus, and the guesses and noisy
 * memories a direct answer without the knowledge states.
 */
import type { CorpusImage, CorpusPage, SearchCorpus } from '../search/corpus.js';
import { Rng } from '../engine/random.js';
import {
  IMAGE_SEARCH_ACTION, answerAction, assistantTurn, firstUserTurn, formatImageSearchResults,
  formatTextSearchResults, textSearchAction, toolResultTurn,
} from '../protocol/prompts.js';
import { RESULTS_PER_SEARCH } from '../protocol/tools.js';
import { decodeImage } from './image.js';
import {
  FACT_PHRASE, VISUAL_ATTRIBUTES, answersFor, describeLook, factSentence, factSentenceStating, lookStatement, type Attribute, type FactAttribute, type Instance,
} from './questions.js';
import { pooledRgb } from './render.js';
import type { ChatMessage, FvqaImage } from './types.js';
import { DIETS, DISCOVERERS, MAX_YEAR, MIN_YEAR, REGIONS, type Entity } from './world.js';

/** 16x16 pooled RGB descriptor of PNG bytes, for ranking corpus images in warm-start image searches. */
const pooled = (png: Uint8Array) => pooledRgb(decodeImage(png), 16);

/** Simulated search tools over the corpus, used to write the warm-start trajectories. */
export class CorpusSearch {
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

export type Behaviour = 'direct' | 'needless_search' | 'search_chain' | 'guess' | 'rag_workflow';

/**
 * The words of the search decision in a first turn, after the look (FvqaMiniConfig.uniformDecision): by
 * default each behaviour has its own ("This is X." / "I think I know this creature." / "I do not
 * recognise this creature."; a visual direct answer none; with factDecision a familiar fact's needless
 * search says "This is X. I do not know its <fact>."); uniform: every answer from memory (direct or
 * guess) says `answer`, every search `search`, so the decision is one token pair in every context; with
 * recognitionFirst 1 the same pair follows the recognition sentence ("This is X." or UNRECOGNISED).
 */
export const UNIFORM_DECISION = { answer: 'I can answer.', search: 'I need to search.' } as const;

/** The recognition sentence of a creature the policy has not memorised (FvqaMiniConfig.recognitionFirst). */
export const UNRECOGNISED = 'I do not recognise this creature.';

/** A first turn's look, and UNRECOGNISED where it follows (see observedOpening). */
const OPENING = new RegExp(`^<reason>A [^.<]*, \\d+ marks?\\.(?: ${UNRECOGNISED.replace('.', '\\.')})?`);

/** What a guess says after UNRECOGNISED with recognitionFirst 2 (a search says UNIFORM_DECISION.search). */
export const GUESS = 'I will guess.';

/** What a guess says after UNRECOGNISED with recognitionFirst 3: its first word is no search's ("I") and no answer's. */
export const GUESS_APART = 'Let me guess.';

/**
 * What the policy observed at the start of a warm-start first turn: `<reason>`, describeLook's sentence
 * and, where it follows, UNRECOGNISED (recognitionFirst: a statement about the creature, not yet the
 * decision); '' when `turn` does not open with a look. Trained even where the rest of the turn is not (a
 * reading drill's imposed search). A first turn without recognitionFirst never follows its look with
 * UNRECOGNISED unless it searches, and those turns are trained whole.
 */
export function observedOpening(turn: string): string {
  return OPENING.exec(turn)?.[0] ?? '';
}

/** How a warm-start trajectory is written, besides its behaviour. */
export interface TrajectoryOptions {
  /** The answer of a 'direct', 'guess' or 'rag_workflow' trajectory's first turn: the truth for a known fact, a
   *  noisy value for a hazy one, a guess without the knowledge (unused by the other behaviours). */
  stated: string;
  /** Name and visual searches go on to a text search about the entity's page, as the RAG workflow does. */
  ragChain: boolean;
  /** Every first turn states its decision in the words of UNIFORM_DECISION. */
  uniformDecision: boolean;
  /** A needless search of a fact names the creature first and says which fact it lacks, then text-searches it
   *  (FvqaMiniConfig.factDecision). */
  factDecision: boolean;
  /** 1, 2 or 3: every first turn says whether it recognises the creature, then decides in UNIFORM_DECISION's
   *  words (1) or in words of each context's own (2; 3 with GUESS_APART); 0: no recognition sentence
   *  (FvqaMiniConfig.recognitionFirst). */
  recognitionFirst: number;
  /** A direct answer to a visual question states the asked attribute off the look first (questions.ts
   *  lookStatement; FvqaMiniConfig.visualStatement). */
  visualStatement?: boolean;
}

/**
 * Builds one warm-start trajectory (user/assistant turns, images in placeholder order) of `inst`
 * answered with `behaviour`; its image and text searches are run on `search`.
 */
export function trajectory(inst: Instance, behaviour: Behaviour, search: CorpusSearch, { stated, ragChain, uniformDecision, factDecision, recognitionFirst, visualStatement }: TrajectoryOptions): {
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

  // recognitionFirst: the look, then what the policy knows of the creature, then the decision.
  const recognised = e.familiarity === 'familiar';
  const opening = recognitionFirst ? `${look} ${recognised ? `This is ${name}.` : UNRECOGNISED}` : look;
  const decides = uniformDecision || recognitionFirst === 1;
  const said = decides ? `${opening} ${UNIFORM_DECISION.answer}` : opening;
  const stating = () => `${factSentenceStating(e, inst.attribute as FactAttribute, stated)}.`;
  const knownReasoning = () => visual ? (visualStatement ? `${said} ${lookStatement(e.look, inst.attribute as (typeof VISUAL_ATTRIBUTES)[number])}` : said)
    : recognitionFirst ? (inst.attribute === 'name' ? said : `${said} ${stating()}`)
      : inst.attribute === 'name' ? `${said} This is ${name}.` : `${said} This is ${name}. ${stating()}`;
  const guessReasoning = decides ? said : recognitionFirst ? `${opening} ${recognitionFirst === 3 ? GUESS_APART : GUESS}` : `${look} I think I know this creature.`;
  if (behaviour === 'direct') {
    say(assistantTurn(knownReasoning(), answerAction(stated)));
    return { prompt, images };
  }
  if (behaviour === 'guess') {
    say(assistantTurn(guessReasoning, answerAction(stated)));
    return { prompt, images };
  }
  /** A turn that text-searches `attr`'s page with `reasoning` before it, and the answer read off the results. */
  const readText = (reasoning: string, attr: FactAttribute) => {
    const query = textQuery(name, attr);
    say(assistantTurn(reasoning, textSearchAction(query)));
    const pages = search.text(query);
    const results = formatTextSearchResults(pages.map((p) => ({ url: p.url, summary: p.text })));
    prompt.push({ role: 'user', content: toolResultTurn('text_search', results, inst.question) });
    say(assistantTurn(`${factSentence(e, attr)}.`, answerAction(truth)));
    return { prompt, images };
  };
  // A familiar creature recognised, one of its facts not known: the decision follows the fact, and the
  // name it has just written is the query (no image search needed).
  if ((factDecision || recognitionFirst) && behaviour === 'needless_search' && !visual && inst.attribute !== 'name') {
    const attr = inst.attribute as FactAttribute;
    return readText(recognitionFirst === 1 ? `${opening} ${UNIFORM_DECISION.search}` : `${look} This is ${name}. I do not know its ${FACT_PHRASE[attr]}.`, attr);
  }
  // The other behaviours start with an image search: asked for by the policy, or imposed by the RAG
  // workflow after the reasoning the policy writes when it answers from memory.
  const first = behaviour !== 'rag_workflow' ? (decides || recognitionFirst ? `${opening} ${UNIFORM_DECISION.search}` : `${look} ${UNRECOGNISED}`)
    : inst.category === 'search_free' ? knownReasoning() : guessReasoning;
  say(assistantTurn(first, IMAGE_SEARCH_ACTION));
  const hits = search.image(inst.image);
  prompt.push({ role: 'user', content: toolResultTurn('image_search', formatImageSearchResults(hits), inst.question) });
  for (const h of hits) images.push({ bytes: h.png, path: null });
  const seen = topResult(name);
  // A needless search on a fact question goes on to the text search, as an unsure policy would: the
  // warm start then holds the whole chain for familiar entities too, and GRPO can find it redundant.
  if ((inst.attribute === 'name' || visual) && !ragChain) {
    say(assistantTurn(seen, answerAction(truth)));
    return { prompt, images };
  }
  // Fact questions search the asked-for fact; name and visual ones (ragChain) the entity's page, whose
  // first sentence states the name and the look, as the RAG workflow's forced text search would.
  const attr: FactAttribute = inst.attribute === 'name' || visual ? 'name' : (inst.attribute as FactAttribute);
  return readText(readingReasoning(name, attr), attr);
}

/** The sentence that reads an image search's top result, titled `name`. */
export const topResult = (name: string): string => `The top result is ${name}.`;

/** The text query for `attr` of the creature `name` (for 'name': its page). */
export const textQuery = (name: string, attr: FactAttribute): string => `${name} ${attr === 'name' ? 'creature' : FACT_PHRASE[attr]}`;

/** The reasoning after an image search whose top result is `name`, before text-searching `attr` of it. */
export const readingReasoning = (name: string, attr: FactAttribute): string => `${topResult(name)} I need its ${attr === 'name' ? 'page' : FACT_PHRASE[attr]}.`;

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
export function wrongAnswer(e: Entity, attribute: Attribute, entities: readonly Entity[], rng: Rng): string {
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
