/**
 * Issue 15's warm-start options of FVQA-mini: the decision-neutral warm start (decisionNeutral) and
 * imperfect memory of familiar facts (hazyFactShare, hazyTruthShare). No training: properties of the
 * generated data only.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { drillWorldOf, generateFvqaMini, type FvqaMini } from './fvqa-mini.js';
import { answersFor } from './questions.js';
import { GUESS, GUESS_APART, UNIFORM_DECISION, UNRECOGNISED, observedOpening } from './trajectories.js';
import type { FvqaRow } from './types.js';
import { MAX_YEAR, MIN_YEAR, DIETS, DISCOVERERS, REGIONS } from './world.js';

/** A decision-neutral world with 30% hazy familiar facts (the world of the since-removed fvqa-mini-neutral recipe). */
const NEUTRAL = { seed: 1, entities: 16, heldOutEntities: 4, testSize: 80, sftSamplesPerPair: 3, decisionNeutral: 1, hazyFactShare: 0.3, hazyTruthShare: 0 };

let w: FvqaMini;
beforeAll(() => {
  w = generateFvqaMini(NEUTRAL);
});

const norm = (s: string) =>
  s.toLowerCase().replace(/[^\p{L}\p{N}\s]/gu, ' ').replace(/\b(a|an|the)\b/g, ' ').replace(/\s+/g, ' ').trim();
const accepts = (row: FvqaRow, answer: string) =>
  [row.reward_model.ground_truth, ...row.reward_model.candidate_answers].some((a) => norm(a) === norm(answer));
const turns = (r: FvqaRow) => r.prompt.filter((m) => m.role === 'assistant').map((m) => m.content);
const searched = (r: FvqaRow) => turns(r).length > 1;
const finalAnswer = (r: FvqaRow) => /<answer>(.*)<\/answer>$/.exec(turns(r).at(-1)!)![1];
const pair = (r: FvqaRow) => `${r.extra_info!.entity_id}/${r.extra_info!.attribute}`;

/** Counts of search and direct trajectories by key. */
function shares(rows: readonly FvqaRow[], key: (r: FvqaRow) => string): Map<string, { search: number; direct: number }> {
  const out = new Map<string, { search: number; direct: number }>();
  for (const r of rows) {
    const c = out.get(key(r)) ?? { search: 0, direct: 0 };
    if (searched(r)) c.search++;
    else c.direct++;
    out.set(key(r), c);
  }
  return out;
}

/** Size of the vocabulary a guess about `attribute` is drawn from (names: the in-world entities). */
function vocabularySize(attribute: string, m: FvqaMini): number {
  return attribute === 'name' ? m.entities.filter((e) => e.familiarity !== 'held_out').length
    : attribute === 'region' ? REGIONS.length
      : attribute === 'discoverer' ? DISCOVERERS.length
        : attribute === 'diet' ? DIETS.length
          : MAX_YEAR - MIN_YEAR + 1;
}

/**
 * Bound on right answers among `rows` whose answers are drawn uniformly from their attribute's
 * vocabulary: each is right with probability 1 / |V|, so the count has mean sum(1 / |V|) and, the
 * draws of a pair being without replacement (negatively correlated), a variance at most that of
 * independent draws. Bound: mean + 4 of those standard deviations (one-sided Chebyshev-Cantelli: a
 * false failure under 1/17 whatever the seed).
 */
function chanceBound(rows: readonly FvqaRow[]): number {
  const p = rows.map((r) => 1 / vocabularySize(r.extra_info!.attribute, w));
  return p.reduce((a, b) => a + b, 0) + 4 * Math.sqrt(p.reduce((a, b) => a + b * (1 - b), 0));
}

/**
 * The rows `d` appends to `base`'s split `split`, after checking that drills change nothing else: the
 * other splits, the world's corpus and the split's own rows stay as `base` has them.
 */
function appended(d: FvqaMini, base: FvqaMini, split: 'train' | 'sft'): FvqaRow[] {
  for (const other of ['train', 'test', 'heldout', 'sft'] as const) if (other !== split) expect(d.splits[other]).toEqual(base.splits[other]);
  expect(d.corpus).toEqual(base.corpus);
  expect(d.splits[split].slice(0, base.splits[split].length)).toEqual(base.splits[split]);
  return d.splits[split].slice(base.splits[split].length);
}

/** The answers of `rows` by (entity, attribute) pair. */
function answersByPair(rows: readonly FvqaRow[]): Map<string, string[]> {
  const byPair = new Map<string, string[]>();
  for (const r of rows) byPair.set(pair(r), [...(byPair.get(pair(r)) ?? []), finalAnswer(r)]);
  return byPair;
}

describe('FVQA-mini decision-neutral warm start (issue 15)', () => {
  test('per question kind, per category and per (entity, attribute): as many direct-answer as search trajectories', () => {
    // Exact by construction: every warm-start slot yields one trajectory of each.
    const byKind = shares(w.splits.sft, (r) => r.extra_info!.question_kind);
    expect([...byKind.keys()].sort()).toEqual(['familiar_fact', 'unfamiliar_fact', 'unfamiliar_name', 'visual']);
    for (const [kind, c] of byKind) expect(c.search, kind).toBe(c.direct);
    const byCategory = shares(w.splits.sft, (r) => r.category!);
    expect([...byCategory.keys()].sort()).toEqual(['search_free', 'search_required']);
    for (const [cat, c] of byCategory) expect(c.search, cat).toBe(c.direct);
    for (const [p, c] of shares(w.splits.sft, pair)) expect(c, p).toEqual({ search: NEUTRAL.sftSamplesPerPair, direct: NEUTRAL.sftSamplesPerPair });
    // Reading image-search results and text-search results is still taught, for both categories.
    const patterns = new Set(w.splits.sft.map((r) => `${r.category}:${turns(r).length}`));
    expect(patterns).toEqual(new Set(['search_free:1', 'search_free:2', 'search_free:3', 'search_required:1', 'search_required:2', 'search_required:3']));
  });

  test('searches always end right; direct answers are right exactly where the fact is known', () => {
    const hazy = new Set(w.hazyFacts);
    for (const r of w.splits.sft) {
      const kind = r.extra_info!.question_kind;
      const right = accepts(r, finalAnswer(r));
      if (searched(r) || kind === 'visual' || (kind === 'familiar_fact' && !hazy.has(pair(r)))) expect(right, r.data_id).toBe(true);
      // Search trajectories read the entity off the image-search results and, for facts, the fact off the text search.
      if (searched(r)) expect(turns(r)[1]).toContain(`The top result is ${w.entities.find((e) => e.id === r.extra_info!.entity_id)!.facts.name}.`);
    }
  });

  test('guesses without search vary per sample and are right only by chance', () => {
    const guesses = w.splits.sft.filter((r) => r.category === 'search_required' && !searched(r));
    expect(guesses.length).toBe(w.splits.sft.filter((r) => r.category === 'search_required').length / 2);
    // Right by chance only: the truth is no likelier than any other value of the vocabulary.
    expect(guesses.filter((r) => accepts(r, finalAnswer(r))).length).toBeLessThanOrEqual(chanceBound(guesses));
    // Not one fixed answer per question: a pair's samples never repeat a guess (by construction).
    for (const [p, g] of answersByPair(guesses)) expect(new Set(g).size, `${p}: ${g}`).toBe(NEUTRAL.sftSamplesPerPair);
    // Across pairs, an attribute's guesses spread over its vocabulary (no favourite value).
    for (const attribute of ['name', 'region', 'year', 'discoverer', 'diet']) {
      const g = guesses.filter((r) => r.extra_info!.attribute === attribute).map(finalAnswer);
      expect(new Set(g).size, attribute).toBeGreaterThanOrEqual(Math.min(vocabularySize(attribute, w), g.length) / 2);
    }
  });

  test('only the warm start changes: train, test, heldout and the corpus are the default world\'s', () => {
    const base = generateFvqaMini({ ...NEUTRAL, decisionNeutral: 0, hazyFactShare: 0 });
    for (const s of ['train', 'test', 'heldout'] as const) expect(w.splits[s], s).toEqual(base.splits[s]);
    expect(w.corpus).toEqual(base.corpus);
    expect(w.entities).toEqual(base.entities);
  });
});

describe('FVQA-mini hazy familiar facts (issue 15)', () => {
  test('exactly round(share x pairs) familiar non-name facts are hazy', () => {
    const familiar = w.entities.filter((e) => e.familiarity === 'familiar');
    expect(w.hazyFacts.length).toBe(Math.round(NEUTRAL.hazyFactShare * familiar.length * 4));
    for (const h of w.hazyFacts) {
      const [id, attribute] = h.split('/');
      expect(familiar.map((e) => e.id)).toContain(id);
      expect(attribute).not.toBe('name');
    }
    // Labels are unchanged: a hazy fact's questions stay familiar_fact / search_free.
    const hazyTest = w.splits.test.filter((r) => w.hazyFacts.includes(pair(r)));
    expect(hazyTest.length).toBeGreaterThan(0);
    for (const r of hazyTest) expect([r.extra_info!.question_kind, r.category]).toEqual(['familiar_fact', 'search_free']);
  });

  test('the warm start\'s memory of familiar facts is good but imperfect; its searches are reliable', () => {
    const direct = w.splits.sft.filter((r) => r.extra_info!.question_kind === 'familiar_fact' && !searched(r));
    const memory = direct.filter((r) => accepts(r, finalAnswer(r))).length / direct.length;
    // 7 of 30 familiar (entity, attribute) pairs hazy: about 1 - 7/30 right, plus the noise's chance hits.
    expect(memory).toBeGreaterThanOrEqual(0.7);
    expect(memory).toBeLessThanOrEqual(0.85);
    const hazyDirect = direct.filter((r) => w.hazyFacts.includes(pair(r)));
    expect(hazyDirect.length).toBe(w.hazyFacts.length * NEUTRAL.sftSamplesPerPair);
    // A hazy fact is stated with values drawn per sample (hazyTruthShare 0: right only by chance), in the words of a known fact.
    expect(hazyDirect.filter((r) => accepts(r, finalAnswer(r))).length).toBeLessThanOrEqual(chanceBound(hazyDirect));
    for (const [p, g] of answersByPair(hazyDirect)) expect(new Set(g).size, `${p}: ${g}`).toBe(NEUTRAL.sftSamplesPerPair);
    for (const r of hazyDirect) expect(turns(r)[0]).toContain(`. The `);
    const searches = w.splits.sft.filter(searched);
    expect(searches.every((r) => accepts(r, finalAnswer(r)))).toBe(true);
  });

  test('hazy facts change only the direct answers of the hazy pairs; hazyTruthShare 1 states the truth', () => {
    const cfg = { seed: 5, entities: 14, heldOutEntities: 2, testSize: 16, sftSamplesPerPair: 2 };
    const plain = generateFvqaMini(cfg);
    const hazy = generateFvqaMini({ ...cfg, hazyFactShare: 0.5 });
    expect(hazy.hazyFacts.length).toBeGreaterThan(0);
    expect(hazy.splits.sft.length).toBe(plain.splits.sft.length);
    const set = new Set(hazy.hazyFacts);
    let changed = 0;
    hazy.splits.sft.forEach((r, i) => {
      const before = plain.splits.sft[i];
      if (set.has(pair(r)) && !searched(r)) {
        changed += +(JSON.stringify(r.prompt) !== JSON.stringify(before.prompt));
        expect(r.reward_model).toEqual(before.reward_model);
      } else expect(r, r.data_id).toEqual(before);
    });
    expect(changed).toBeGreaterThan(0);
    // With the truth always recalled the noise is gone and the warm start is the plain one again.
    expect(generateFvqaMini({ ...cfg, hazyFactShare: 0.5, hazyTruthShare: 1 }).splits.sft).toEqual(plain.splits.sft);
    // The truth of a hazy fact is still what searches find.
    for (const r of hazy.splits.sft.filter((x) => set.has(pair(x)) && searched(x))) {
      const e = hazy.entities.find((x) => x.id === r.extra_info!.entity_id)!;
      expect(finalAnswer(r)).toBe(answersFor(e, r.extra_info!.attribute as 'region').ground_truth);
    }
  });

  test('out-of-range options are refused, naming the option', () => {
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, decisionNeutral: 2 })).toThrow(/decisionNeutral/);
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, hazyFactShare: 1.5 })).toThrow(/hazyFactShare/);
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, hazyTruthShare: -0.1 })).toThrow(/hazyTruthShare/);
  });
});

describe('FVQA-mini RAG-workflow warm-start trajectories (ragWorkflowShare)', () => {
  const SHARE = 0.5;
  let r: FvqaMini;
  beforeAll(() => {
    r = generateFvqaMini({ ...NEUTRAL, ragWorkflowShare: SHARE });
  });
  const isRag = (x: FvqaRow) => x.extra_info!.search_mode === 'rag';

  test('add marked trajectories to both categories alike and leave the rest of the world as it was', () => {
    const rag = r.splits.sft.filter(isRag);
    expect(r.splits.sft.filter((x) => !isRag(x)).map((x) => x.prompt)).toEqual(w.splits.sft.map((x) => x.prompt));
    for (const s of ['train', 'test', 'heldout'] as const) expect(r.splits[s]).toEqual(w.splits[s]);
    // One draw per slot: about SHARE of each category's slots (half its non-RAG trajectories), within 4 binomial sds.
    for (const cat of ['search_free', 'search_required']) {
      const slots = w.splits.sft.filter((x) => x.category === cat).length / 2;
      const n = rag.filter((x) => x.category === cat).length;
      expect(Math.abs(n - SHARE * slots), cat).toBeLessThanOrEqual(4 * Math.sqrt(slots * SHARE * (1 - SHARE)));
    }
    // The decision the trainer trains (first turns of unmarked rows) stays neutral per kind.
    for (const [kind, c] of shares(r.splits.sft.filter((x) => !isRag(x)), (x) => x.extra_info!.question_kind)) expect(c.search, kind).toBe(c.direct);
  });

  test('reason as a direct answer (or a guess), then take the imposed image and text searches and answer the truth', () => {
    const rag = r.splits.sft.filter(isRag);
    const hazy = new Set(r.hazyFacts);
    let hazyRows = 0;
    for (const x of rag) {
      const t = turns(x);
      expect(t, x.data_id).toHaveLength(3);
      expect(t[0]).toMatch(/<search><img><\/search>$/);
      if (x.category === 'search_required') expect(t[0]).toContain('I think I know this creature.');
      else expect(t[0]).not.toContain('I do not recognise');
      expect(t[1]).toMatch(/<text_search>[^<]+<\/text_search>$/);
      // The answer is the searched truth, also where the first turn stated a hazy memory.
      expect(accepts(x, finalAnswer(x)), x.data_id).toBe(true);
      hazyRows += +hazy.has(pair(x));
    }
    expect(hazyRows).toBeGreaterThan(0);
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, ragWorkflowShare: 2 })).toThrow(/ragWorkflowShare/);
  });
});

describe('FVQA-mini uniform decision words (uniformDecision)', () => {
  test('every first turn says the decision in the same words right after the look; the rest of the world is unchanged', () => {
    const u = generateFvqaMini({ ...NEUTRAL, ragWorkflowShare: 0.5, uniformDecision: 1 });
    const base = generateFvqaMini({ ...NEUTRAL, ragWorkflowShare: 0.5 });
    expect(u.splits.sft).toHaveLength(base.splits.sft.length);
    const look = /^<reason>A [a-z]+ [a-z]+ [a-z]+, \d+ marks?\. /;
    for (const r of u.splits.sft) {
      const first = turns(r)[0];
      expect(first, r.data_id).toMatch(look);
      const said = first.replace(look, '');
      // Searches the trainer trains say "I need to search."; answers from memory, and the (untrained) first turn of a RAG-workflow row, "I can answer.".
      const searches = searched(r) && r.extra_info!.search_mode !== 'rag';
      expect(said.startsWith(searches ? UNIFORM_DECISION.search : UNIFORM_DECISION.answer), `${r.data_id}: ${first}`).toBe(true);
    }
    for (const [kind, c] of shares(u.splits.sft.filter((x) => x.extra_info!.search_mode !== 'rag'), (x) => x.extra_info!.question_kind)) expect(c.search, kind).toBe(c.direct);
    // Same rows otherwise: answers, images, later turns.
    u.splits.sft.forEach((r, i) => {
      expect(r.reward_model).toEqual(base.splits.sft[i].reward_model);
      expect(finalAnswer(r)).toBe(finalAnswer(base.splits.sft[i]));
      expect(turns(r).slice(1)).toEqual(turns(base.splits.sft[i]).slice(1));
    });
    for (const s of ['train', 'test', 'heldout'] as const) expect(u.splits[s]).toEqual(base.splits[s]);
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, uniformDecision: 2 })).toThrow(/uniformDecision/);
  });
});

describe('FVQA-mini per-fact decision words (factDecision)', () => {
  test("a familiar fact's needless search names the creature and the missing fact, then text-searches it; every other row is unchanged", () => {
    const f = generateFvqaMini({ ...NEUTRAL, ragWorkflowShare: 0.5, factDecision: 1 });
    const base = generateFvqaMini({ ...NEUTRAL, ragWorkflowShare: 0.5 });
    expect(f.splits.sft).toHaveLength(base.splits.sft.length);
    for (const s of ['train', 'test', 'heldout'] as const) expect(f.splits[s]).toEqual(base.splits[s]);
    const phrase: Record<string, string> = { region: 'native region', year: 'year of discovery', discoverer: 'discoverer', diet: 'diet' };
    const hazy = new Set(f.hazyFacts);
    let changed = 0;
    let hazyChanged = 0;
    f.splits.sft.forEach((r, i) => {
      const x = r.extra_info!;
      if (!(x.question_kind === 'familiar_fact' && x.attribute !== 'name' && searched(r) && x.search_mode !== 'rag')) {
        expect(r, r.data_id).toEqual(base.splits.sft[i]);
        return;
      }
      changed++;
      hazyChanged += +hazy.has(pair(r));
      const name = f.entities.find((e) => e.id === x.entity_id)!.facts.name;
      const [first, second, ...rest] = turns(r);
      expect(rest, r.data_id).toEqual([]);
      expect(first, r.data_id).toMatch(new RegExp(`^<reason>A [a-z]+ [a-z]+ [a-z]+, \\d+ marks?\\. This is ${name}\\. I do not know its ${phrase[x.attribute]}\\.</reason>`));
      expect(first.endsWith(`<text_search>${name} ${phrase[x.attribute]}</text_search>`), first).toBe(true);
      // The one tool result is the text search's, and the answer read off it is the truth, hazy facts included.
      expect(r.prompt.filter((m) => m.role === 'user')).toHaveLength(2);
      expect(r.prompt.at(-2)!.content, r.data_id).toContain(name);
      expect(accepts(r, finalAnswer(r)), r.data_id).toBe(true);
      // The base row searched the same question by image first, then read the same page the same way.
      const was = turns(base.splits.sft[i]);
      expect(was[0], r.data_id).toContain('I do not recognise this creature.');
      expect(second).toBe(was.at(-1));
    });
    expect(changed).toBeGreaterThan(0);
    expect(hazyChanged).toBeGreaterThan(0);
    // Still decision-neutral per question kind.
    for (const [kind, c] of shares(f.splits.sft.filter((x) => x.extra_info!.search_mode !== 'rag'), (x) => x.extra_info!.question_kind)) expect(c.search, kind).toBe(c.direct);
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, factDecision: 2 })).toThrow(/factDecision must be 0 or 1/);
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, factDecision: 1, uniformDecision: 1 })).toThrow(/uniformDecision and factDecision cannot both be set/);
  });
});

describe('FVQA-mini recognition before the decision (recognitionFirst)', () => {
  const OPTIONS = { ...NEUTRAL, ragWorkflowShare: 0.5, readingDrills: 20, lookDrills: 10 };
  let f: FvqaMini;
  let base: FvqaMini;
  beforeAll(() => {
    f = generateFvqaMini({ ...OPTIONS, recognitionFirst: 1 });
    base = generateFvqaMini(OPTIONS);
  });
  const FIRST = /^<reason>A [a-z]+ [a-z]+ [a-z]+, \d+ marks?\. (This is \w+\.|I do not recognise this creature\.) (I can answer\.|I need to search\.)/;

  test('every first turn names a familiar creature and only a familiar one, then decides in the same two sentences', () => {
    const familiar = new Map(f.entities.filter((e) => e.familiarity === 'familiar').map((e) => [e.id, e.facts.name]));
    expect(f.splits.sft).toHaveLength(base.splits.sft.length);
    for (const r of f.splits.sft) {
      const m = FIRST.exec(turns(r)[0]);
      expect(m, `${r.data_id}: ${turns(r)[0]}`).not.toBeNull();
      const name = familiar.get(r.extra_info!.entity_id);
      expect(m![1], r.data_id).toBe(name ? `This is ${name}.` : UNRECOGNISED);
      // The decision the trainer trains is the one the row takes; a RAG-workflow row's (untrained) reasoning answers.
      const searches = searched(r) && r.extra_info!.search_mode !== 'rag';
      expect(m![2], r.data_id).toBe(searches ? UNIFORM_DECISION.search : UNIFORM_DECISION.answer);
    }
  });

  test('the warm start stays decision-neutral per kind and per recognition; answers and other splits are unchanged', () => {
    const trained = f.splits.sft.filter((x) => x.extra_info!.search_mode !== 'rag');
    for (const [key, c] of shares(trained, (x) => `${x.extra_info!.question_kind}/${FIRST.exec(turns(x)[0])![1].startsWith('This is')}`)) {
      expect(c.search, key).toBe(c.direct);
    }
    f.splits.sft.forEach((r, i) => {
      expect(r.reward_model, r.data_id).toEqual(base.splits.sft[i].reward_model);
      expect(finalAnswer(r), r.data_id).toBe(finalAnswer(base.splits.sft[i]));
    });
    for (const s of ['train', 'test', 'heldout'] as const) expect(f.splits[s]).toEqual(base.splits[s]);
  });

  test("a familiar fact's needless search text-searches that fact by the name it has just said", () => {
    const phrase: Record<string, string> = { region: 'native region', year: 'year of discovery', discoverer: 'discoverer', diet: 'diet' };
    const rows = f.splits.sft.filter((r) => r.extra_info!.question_kind === 'familiar_fact' && r.extra_info!.attribute !== 'name' && searched(r) && r.extra_info!.search_mode !== 'rag');
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      const name = f.entities.find((e) => e.id === r.extra_info!.entity_id)!.facts.name;
      const t = turns(r);
      expect(t, r.data_id).toHaveLength(2);
      expect(t[0].endsWith(`${UNIFORM_DECISION.search}</reason><text_search>${name} ${phrase[r.extra_info!.attribute]}</text_search>`), t[0]).toBe(true);
      expect(accepts(r, finalAnswer(r)), r.data_id).toBe(true);
    }
  });

  test("a reading drill's observed opening is its look and that it does not recognise the creature, not its decision", () => {
    const drills = f.splits.sft.filter((r) => /^drill\d+-/.test(r.extra_info!.entity_id));
    expect(drills).toHaveLength(20);
    for (const r of drills) {
      const first = turns(r)[0];
      const seen = observedOpening(first);
      expect(seen.endsWith(` ${UNRECOGNISED}`), first).toBe(true);
      expect(first.slice(seen.length).startsWith(` ${UNIFORM_DECISION.answer}`), first).toBe(true);
    }
    // Without the option a drill's opening is its look alone (its reasoning says "I think I know this creature.").
    for (const r of base.splits.sft.filter((x) => /^drill\d+-/.test(x.extra_info!.entity_id))) expect(observedOpening(turns(r)[0])).toMatch(/marks?\.$/);
  });

  test('is refused with another decision wording, and out of range', () => {
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, recognitionFirst: 1, factDecision: 1 })).toThrow(/factDecision and recognitionFirst cannot both be set/);
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, recognitionFirst: 4 })).toThrow(/recognitionFirst must be 0, 1, 2 or 3/);
  });
});

describe("FVQA-mini recognition before each context's own decision words (recognitionFirst 2 and 3)", () => {
  test.each([[2, GUESS], [3, GUESS_APART]])('recognitionFirst %i: each context decides on its own words after the recognition sentence; decision-neutral per kind and recognition; answers unchanged', (level, guess) => {
    const OPTIONS = { ...NEUTRAL, ragWorkflowShare: 0.5, readingDrills: 10 };
    const f = generateFvqaMini({ ...OPTIONS, recognitionFirst: level });
    const base = generateFvqaMini(OPTIONS);
    const fact = generateFvqaMini({ ...OPTIONS, factDecision: 1 });
    const familiar = new Map(f.entities.filter((e) => e.familiarity === 'familiar').map((e) => [e.id, e.facts.name]));
    const look = /^<reason>A [a-z]+ [a-z]+ [a-z]+, \d+ marks?\. /;
    expect(f.splits.sft).toHaveLength(base.splits.sft.length);
    f.splits.sft.forEach((r, i) => {
      const x = r.extra_info!;
      const first = turns(r)[0];
      const name = familiar.get(x.entity_id);
      const recognition = name ? `This is ${name}.` : UNRECOGNISED;
      expect(first, r.data_id).toMatch(look);
      const rest = first.replace(look, '');
      expect(rest.startsWith(recognition), `${r.data_id}: ${first}`).toBe(true);
      const decision = rest.slice(recognition.length);
      const searches = searched(r) && x.search_mode !== 'rag';
      if (name && x.question_kind === 'familiar_fact' && x.attribute !== 'name') {
        // A familiar fact: the late-night probe's words, row for row (the same look, name, fact and search).
        expect(r.prompt, r.data_id).toEqual(fact.splits.sft[i].prompt);
        expect(decision.startsWith(searches ? ' I do not know its ' : ` The `), first).toBe(true);
      } else if (x.question_kind === 'unfamiliar_fact' || x.question_kind === 'unfamiliar_name') {
        expect(decision.startsWith(searches ? ` ${UNIFORM_DECISION.search}` : ` ${guess}`), first).toBe(true);
      } else {
        // Names of familiar creatures and visual questions: answered right after the recognition, or searched.
        expect(decision.startsWith(searches ? ` ${UNIFORM_DECISION.search}` : '</reason>'), first).toBe(true);
      }
      expect(r.reward_model).toEqual(base.splits.sft[i].reward_model);
      expect(finalAnswer(r), r.data_id).toBe(finalAnswer(base.splits.sft[i]));
    });
    const trained = f.splits.sft.filter((x) => x.extra_info!.search_mode !== 'rag');
    for (const [key, c] of shares(trained, (x) => `${x.extra_info!.question_kind}/${familiar.has(x.extra_info!.entity_id)}`)) expect(c.search, key).toBe(c.direct);
    for (const s of ['train', 'test', 'heldout'] as const) expect(f.splits[s]).toEqual(base.splits[s]);
    // A drill trains its look and recognition, not the guess words after them.
    for (const r of f.splits.sft.filter((x) => /^drill\d+-/.test(x.extra_info!.entity_id))) {
      const first = turns(r)[0];
      expect(first.slice(observedOpening(first).length).startsWith(` ${guess}`), first).toBe(true);
    }
  });

  test('recognitionFirst 3: after UNRECOGNISED, searches, guesses and answers begin with words of their own (with 2 searches and guesses share "I")', () => {
    const firstWords = (level: number) => {
      const f = generateFvqaMini({ ...NEUTRAL, recognitionFirst: level });
      const words = { search: new Set<string>(), other: new Set<string>() };
      for (const r of f.splits.sft) {
        const first = turns(r)[0];
        const at = first.indexOf(UNRECOGNISED);
        if (at < 0) continue;
        const word = /^\s*(<\/reason>|\S+)/.exec(first.slice(at + UNRECOGNISED.length))![1];
        words[searched(r) ? 'search' : 'other'].add(word);
      }
      return words;
    };
    const apart = firstWords(3);
    expect([...apart.search]).toEqual(['I']);
    expect([...apart.other].sort()).toEqual(['</reason>', 'Let']);
    expect(firstWords(2).other.has('I')).toBe(true);
  });
});

describe('FVQA-mini reading drills (readingDrills)', () => {
  const DRILLS = 70; // more than one drill world holds
  let d: FvqaMini;
  beforeAll(() => {
    d = generateFvqaMini({ ...NEUTRAL, readingDrills: DRILLS });
  });

  test('add only warm-start rows, after the world\'s own, about creatures outside the world and its corpus', () => {
    const drills = appended(d, w, 'sft');
    expect(drills).toHaveLength(DRILLS);
    expect(drills.every((r) => r.extra_info!.search_mode === 'rag' && r.category === 'search_required')).toBe(true);
    const ids = drills.map((r) => r.extra_info!.entity_id);
    expect(new Set(ids).size).toBe(DRILLS);
    expect(ids.every((id) => /^drill\d+-e\d{3}$/.test(id))).toBe(true);
    expect(new Set(ids.map((id) => id.split('-')[0])).size).toBeGreaterThan(1);
  });

  test('each drill reads a name seen nowhere else off the image-search result, copies it into its query, and answers from the page it finds', () => {
    const worldNames = new Set(w.entities.map((e) => e.facts.name));
    const seen = new Set<string>();
    for (const r of d.splits.sft.slice(w.splits.sft.length)) {
      const [first, afterImage, final] = turns(r);
      const name = /The top result is (\w+)\./.exec(afterImage)?.[1];
      expect(name, afterImage).toBeDefined();
      expect(worldNames.has(name!) || seen.has(name!)).toBe(false);
      seen.add(name!);
      expect(first).not.toContain(name);
      expect(r.prompt[2].content).toContain(`title: ${name}\n`);
      expect(afterImage).toContain(`<text_search>${name} `);
      const page = r.prompt[4].content;
      if (r.extra_info!.attribute === 'name') expect(r.reward_model.ground_truth).toBe(name);
      else expect(page).toContain(`of ${name} `);
      expect(page).toContain(String(r.reward_model.ground_truth));
      expect(final).toContain(`<answer>${r.reward_model.ground_truth}</answer>`);
    }
  });

  test('refuse a count that is not a whole number >= 0', () => {
    expect(() => generateFvqaMini({ ...NEUTRAL, readingDrills: -1 })).toThrow(/readingDrills must be a whole number/);
    expect(() => generateFvqaMini({ ...NEUTRAL, readingDrills: 2.5 })).toThrow(/readingDrills/);
  });

  test('readingDrillNameLetters asks only about creatures with names that long; the shorter stay in the drill worlds\' corpora', () => {
    const names = (x: FvqaMini) => x.splits.sft.slice(w.splits.sft.length).map((r) => /title: (\w+)\n/.exec(r.prompt[2].content)![1]);
    expect(names(d).some((n) => n.length < 9)).toBe(true);
    const long = generateFvqaMini({ ...NEUTRAL, readingDrills: DRILLS, readingDrillNameLetters: 9 });
    expect(names(long)).toHaveLength(DRILLS);
    expect(names(long).every((n) => n.length >= 9)).toBe(true);
    const pages = Object.values(long.drillCorpora).flatMap((c) => c.pages.map((p) => p.title));
    expect(pages.some((t) => t.length < 9)).toBe(true);
    expect(() => generateFvqaMini({ ...NEUTRAL, readingDrillNameLetters: 13 })).toThrow(/readingDrillNameLetters must be a whole number in \[0, 12\]/);
  });
});

describe('FVQA-mini GRPO drills (grpoDrills)', () => {
  const N = 70; // more than one drill world holds
  let d: FvqaMini;
  beforeAll(() => {
    d = generateFvqaMini({ ...NEUTRAL, readingDrills: 5, grpoDrills: N });
  });

  test("add only train rows, after the world's own: per creature outside the world a search_required question (name or fact), each with a fresh search_free question of the world", () => {
    const world = generateFvqaMini({ ...NEUTRAL, readingDrills: 5 });
    const rows = appended(d, world, 'train');
    expect(rows).toHaveLength(2 * N);
    const drills = rows.filter((_, i) => i % 2 === 0);
    const ids = drills.map((row) => row.extra_info!.entity_id);
    expect(ids.every((id) => /^drillg\d+-e\d{3}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(N);
    expect(drills.every((row) => row.category === 'search_required' && row.extra_info!.question_kind !== 'visual')).toBe(true);
    // Both kinds of question are drawn: the name and the facts.
    expect(new Set(drills.map((row) => row.extra_info!.attribute === 'name')).size).toBe(2);
    // The partners: search_free questions the world's train split asks too (same creature and attribute), as new instances.
    const partners = rows.filter((_, i) => i % 2 === 1);
    const worldPairs = new Set(world.splits.train.filter((row) => row.category === 'search_free').map((row) => `${row.extra_info!.entity_id}/${row.extra_info!.attribute}`));
    expect(partners.every((row) => row.category === 'search_free' && worldPairs.has(`${row.extra_info!.entity_id}/${row.extra_info!.attribute}`))).toBe(true);
    expect(new Set(partners.map((row) => row.extra_info!.question_kind)).size).toBe(2); // familiar facts and visual questions
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const worldImages = new Set(world.splits.train.map((row) => hex(row.images[0].bytes)));
    expect(partners.some((row) => worldImages.has(hex(row.images[0].bytes)))).toBe(false); // new image samples
    // No reading drill creature, and no name of the world.
    const sftIds = new Set(d.splits.sft.map((row) => row.extra_info!.entity_id));
    expect(ids.some((id) => sftIds.has(id))).toBe(false);
    const worldNames = new Set(d.entities.map((e) => e.facts.name));
    expect(drills.some((row) => row.extra_info!.attribute === 'name' && worldNames.has(row.reward_model.ground_truth))).toBe(false);
  });

  test("each creature is on its drill world's corpus, under its drill world's key, and on no other", () => {
    const worlds = new Set(d.splits.train.map((row) => drillWorldOf(row)).filter((k) => k !== null));
    expect(worlds.size).toBeGreaterThan(1);
    for (const row of d.splits.train) {
      const key = drillWorldOf(row);
      if (key === null) {
        expect(row.extra_info!.entity_id).toMatch(/^e\d{3}$/);
        continue;
      }
      const pages = Object.entries(d.drillCorpora).filter(([, c]) => c.images.some((im) => im.id === `img-${row.extra_info!.entity_id}`));
      expect(pages.map(([k]) => k)).toEqual([key]);
    }
  });

  test('refuse a count that is not a whole number in range', () => {
    expect(() => generateFvqaMini({ ...NEUTRAL, grpoDrills: -1 })).toThrow(/grpoDrills must be a whole number/);
    expect(() => generateFvqaMini({ ...NEUTRAL, grpoDrills: 1e6 })).toThrow(/grpoDrills must be a whole number in \[0, 40960\]/);
  });
});

describe('FVQA-mini look drills (lookDrills)', () => {
  const N = 70; // more than one drill world holds
  let d: FvqaMini;
  beforeAll(() => {
    d = generateFvqaMini({ ...NEUTRAL, lookDrills: N });
  });

  test("add only warm-start rows, after the world's own: per new creature one visual question answered directly and one searched", () => {
    const rows = appended(d, w, 'sft');
    expect(rows).toHaveLength(2 * N);
    const ids = rows.map((r) => r.extra_info!.entity_id);
    expect(ids.every((id) => /^drillv\d+-e\d{3}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(N);
    expect(new Set(ids.map((id) => drillWorldOf({ extra_info: { entity_id: id } } as FvqaRow))).size).toBeGreaterThan(1);
    const worldNames = new Set(w.entities.map((e) => e.facts.name));
    for (let i = 0; i < N; i++) {
      const [direct, search] = [rows[2 * i], rows[2 * i + 1]];
      expect(search.extra_info!.entity_id).toBe(direct.extra_info!.entity_id);
      expect(direct.extra_info!.question_kind).toBe('visual');
      expect(direct.extra_info!.search_mode).toBeUndefined();
      expect([searched(direct), searched(search)]).toEqual([false, true]);
      // The direct answer is read off the look its turn describes: "A <pattern> <colour> <shape>, <n> marks."
      const [, colour, shape, marks] = /^<reason>A \w+ (\w+) (\w+), (\d+) marks?\./.exec(turns(direct)[0])!;
      const expected = { colour, shape, marks }[direct.extra_info!.attribute as 'colour' | 'shape' | 'marks'];
      expect(finalAnswer(direct)).toBe(expected);
      expect(accepts(direct, expected)).toBe(true);
      // The search finds the creature's own drill world page, never the world's.
      const name = /title: (\w+)/.exec(search.prompt[2].content)![1];
      expect(worldNames.has(name)).toBe(false);
      expect(accepts(search, finalAnswer(search))).toBe(true);
    }
    // The warm start stays decision-neutral per question kind.
    for (const [kind, c] of shares(d.splits.sft.filter((x) => x.extra_info!.search_mode !== 'rag'), (x) => x.extra_info!.question_kind)) expect(c.search, kind).toBe(c.direct);
  });
});

describe('FVQA-mini direct visual answers that state the look (visualStatement)', () => {
  const OPTIONS = { ...NEUTRAL, recognitionFirst: 3, ragWorkflowShare: 0.5, lookDrills: 10 };
  let f: FvqaMini;
  let base: FvqaMini;
  beforeAll(() => {
    f = generateFvqaMini({ ...OPTIONS, visualStatement: 1 });
    base = generateFvqaMini(OPTIONS);
  });
  const WORDS = { colour: 'colour is', shape: 'shape is', marks: 'number of marks is' } as const;

  test("a visual question's direct first turn states the asked attribute read off its own description; nothing else changes", () => {
    expect(f.splits.sft).toHaveLength(base.splits.sft.length);
    let stated = 0;
    f.splits.sft.forEach((r, i) => {
      const was = base.splits.sft[i];
      const attribute = r.extra_info!.attribute;
      const direct = r.extra_info!.question_kind === 'visual' && !searched(r) && r.extra_info!.search_mode !== 'rag';
      if (!direct) {
        // Every other row is as before; RAG-workflow rows are left out, since a visual one's (untrained) first turn
        // is the direct answer's reasoning and so states the look too.
        if (r.extra_info!.search_mode !== 'rag') expect(r.prompt, r.data_id).toEqual(was.prompt);
        return;
      }
      const [first] = turns(r);
      const [, colour, shape, marks] = /^<reason>A \w+ (\w+) (\w+), (\d+) marks?\./.exec(first)!;
      const seen = { colour, shape, marks }[attribute as keyof typeof WORDS];
      // "<look> <recognition> The shape is square.</reason><answer>square</answer>", by hand from the description.
      expect(first, r.data_id).toBe(turns(was)[0].replace('</reason>', ` The ${WORDS[attribute as keyof typeof WORDS]} ${seen}.</reason>`));
      expect(finalAnswer(r)).toBe(seen);
      expect(accepts(r, seen), r.data_id).toBe(true);
      stated++;
    });
    expect(stated).toBeGreaterThan(20);
    // Still decision-neutral per question kind.
    for (const [kind, c] of shares(f.splits.sft.filter((x) => x.extra_info!.search_mode !== 'rag'), (x) => x.extra_info!.question_kind)) expect(c.search, kind).toBe(c.direct);
    expect(() => generateFvqaMini({ entities: 12, heldOutEntities: 2, testSize: 8, visualStatement: 3 })).toThrow(/visualStatement must be 0, 1 or 2, got 3/);
  });

  test('visualStatement 2 states the look only after "I do not recognise this creature.": recognised creatures answer as without it', () => {
    const only = generateFvqaMini({ ...OPTIONS, visualStatement: 2 });
    const familiar = new Set(only.entities.filter((e) => e.familiarity === 'familiar').map((e) => e.id));
    expect(only.splits.sft).toHaveLength(base.splits.sft.length);
    const count = { recognised: 0, unrecognised: 0 };
    only.splits.sft.forEach((r, i) => {
      const recognised = familiar.has(r.extra_info!.entity_id);
      // Row for row: a recognised creature's rows are those without statements, the others those with them.
      expect(r.prompt, r.data_id).toEqual((recognised ? base : f).splits.sft[i].prompt);
      if (r.extra_info!.question_kind === 'visual' && !searched(r) && r.extra_info!.search_mode !== 'rag') {
        const [first] = turns(r);
        expect(/ The (colour is \w+|shape is \w+|number of marks is \d+)\.<\/reason>/.test(first), r.data_id).toBe(!recognised);
        count[recognised ? 'recognised' : 'unrecognised']++;
      }
    });
    expect(count.recognised).toBeGreaterThan(5);
    expect(count.unrecognised).toBeGreaterThan(5);
  });
});
