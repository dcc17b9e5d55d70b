/** Evaluation helpers that need no model: the round-robin subset, the Table-1 markdown, the search-chain counts and the look reading. */
import { expect, test } from 'vitest';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { describeLook } from '../data/questions.js';
import { evalSubset, lookReading, searchChainStats, summarise, table1, type EvalRecord } from './evaluate.js';

test('evalSubset takes every question kind in turn, each in split order', () => {
  const test = generateFvqaMini({ seed: 2, entities: 24, heldOutEntities: 4, testSize: 40 }).splits.test;
  const kinds = (rows: typeof test) => rows.map((r) => r.extra_info!.question_kind);
  // FVQA-mini's test split lists familiar-entity rows first: a prefix would miss search_required.
  expect(test.slice(0, 8).every((r) => r.category === 'search_free')).toBe(true);
  const sub = evalSubset(test, 8);
  expect(sub).toHaveLength(8);
  expect(new Set(kinds(sub))).toEqual(new Set(kinds(test)));
  for (const k of new Set(kinds(sub))) {
    const inSplit = test.filter((r) => r.extra_info!.question_kind === k);
    const picked = sub.filter((r) => r.extra_info!.question_kind === k);
    expect(picked).toEqual(inSplit.slice(0, picked.length));
  }
  expect(evalSubset(test, 999)).toEqual(test);
});

test('summaries and the Table-1 markdown match hand-counted records', () => {
  const rec = (category: string, correct: boolean, searched: boolean) => ({ category, correct, searched } as EvalRecord);
  const s = summarise('on_demand', [rec('search_free', true, false), rec('search_free', false, true), rec('search_required', true, true), rec('search_required', true, true)]);
  expect(s).toMatchObject({ rows: 4, accuracy: 75, searchRatio: 75 });
  expect(s.byCategory.search_free).toEqual({ rows: 2, accuracy: 50, searchRatio: 50 });
  expect(table1([s]).split('\n')[2]).toBe('| On-demand search (policy) | 75.0 | 75.0 | 50.0 | 50.0 | 100.0 | 100.0 |');
  expect(s.byKind).toBeUndefined();
  // With question kinds: the same counts per kind (two kinds share search_free here).
  const kinded = (kind: string, category: string, correct: boolean, searched: boolean) => ({ ...rec(category, correct, searched), question_kind: kind });
  const k = summarise('on_demand', [kinded('visual', 'search_free', true, false), kinded('familiar_fact', 'search_free', false, true), kinded('familiar_fact', 'search_free', true, true), kinded('unfamiliar_fact', 'search_required', true, false)]);
  expect(k.byKind).toEqual({ visual: { rows: 1, accuracy: 100, searchRatio: 0 }, familiar_fact: { rows: 2, accuracy: 50, searchRatio: 100 }, unfamiliar_fact: { rows: 1, accuracy: 100, searchRatio: 0 } });
  expect(k.byCategory.search_free).toEqual({ rows: 3, accuracy: 200 / 3, searchRatio: 200 / 3 });
});

test('searchChainStats counts each link of the search chain, by hand on three transcripts', () => {
  const img = (title: string) => ({ role: 'tool' as const, text: `<information>1. image: <image>\ntitle: ${title}</information>` });
  const txt = (page: string, sentence: string) => ({ role: 'tool' as const, text: `<information>1. (https://fvqa-mini.example/wiki/${page}) ${sentence}</information>` });
  const say = (text: string) => ({ role: 'assistant' as const, text });
  const rec = (mode: 'rag' | 'on_demand', question: string, correct: boolean, transcript: EvalRecord['transcript'], category = 'search_required'): EvalRecord => ({
    data_id: 'x', category, mode, question, ground_truth: '', answer: null, correct, searched: true, imageSearches: 1, textSearches: 1, transcript,
  });
  const records = [
    // The title copied, its page found, the fact read: every link holds.
    rec('rag', 'Where?', true, [say('<search><img></search>'), img('Poaque'), say('<text_search>Poaque native region</text_search>'), txt('Poaque', 'The native region of Poaque is the Reed Delta.'), say('<answer>Reed Delta</answer>')]),
    // The title restated right, then miscopied into the query: another page comes back, the answer is wrong.
    rec('rag', 'Where?', false, [say('<search><img></search>'), img('Zotredroand'), say('<reason>The top result is Zotredroand.</reason><text_search>Zotrodand native region</text_search>'), txt('Brida', 'The native region of Brida is the Glass Desert.'), say('<answer>Glass Desert</answer>')]),
    // A name question answered without a text search; and a search_free row, which is skipped.
    rec('on_demand', 'What is this creature called?', true, [say('<search><img></search>'), img('Zuquuk'), say('<answer>Zuquuk</answer>')]),
    rec('rag', 'Where?', true, [say('<answer>x</answer>')], 'search_free'),
  ];
  expect(searchChainStats(records, ['What is this creature called?'])).toEqual([
    { mode: 'on_demand', question: 'name', rows: 1, imageSearched: 1, titleInReasoning: 0, titleInQuery: 0, rightPage: 0, correctGivenPage: 0, correct: 1 },
    { mode: 'rag', question: 'fact', rows: 2, imageSearched: 2, titleInReasoning: 1, titleInQuery: 1, rightPage: 1, correctGivenPage: 1, correct: 1 },
  ]);
});

test('lookReading compares each described look with the row creature\'s, by hand on four transcripts', () => {
  const world = generateFvqaMini({ seed: 3, entities: 12, heldOutEntities: 2, testSize: 12, grpoDrills: 4 });
  const train = world.splits.train;
  const creature = (id: string) => [...world.entities, ...world.grpoDrillCreatures].find((e) => e.id === id)!;
  const rowOf = (pick: (id: string) => boolean) => train.find((r) => pick(r.extra_info!.entity_id))!;
  const drillRow = rowOf((id) => id.startsWith('drillg'));
  const famRow = rowOf((id) => creature(id).familiarity === 'familiar');
  const unfRow = rowOf((id) => creature(id).familiarity === 'unfamiliar');
  const drill = creature(drillRow.extra_info!.entity_id);
  const fam = creature(famRow.extra_info!.entity_id);
  const heldRow = world.splits.heldout.find((r) => r.category === 'search_required')!;
  const held = creature(heldRow.extra_info!.entity_id);
  const rec = (row: typeof drillRow, text: string) => ({ data_id: row.data_id, category: row.category, transcript: [{ role: 'assistant', text }] }) as EvalRecord;
  // The drill creature: its own look, but one mark more (6 wraps to 1) and taken for the familiar creature.
  const marks = (drill.look.marks % 6) + 1;
  const records = [
    rec(drillRow, `<reason>${describeLook({ ...drill.look, marks })} This is ${fam.facts.name}. I will answer.</reason>`),
    rec(famRow, `<reason>${describeLook(fam.look)} This is ${fam.facts.name}.</reason>`),
    rec(unfRow, '<answer>red</answer>'),
    // A heldout creature (search_required question), seen right but taken for the familiar creature.
    rec(heldRow, `<reason>${describeLook(held.look)} This is ${fam.facts.name}. I need to search.</reason>`),
  ];
  const base = { described: 1, pattern: 1, colour: 1, shape: 1, recognised: 1 };
  const asked = (row: typeof drillRow, recognised: number) => ({ searchRequired: Number(row.category === 'search_required'), searchRequiredRecognised: row.category === 'search_required' ? recognised : 0 });
  expect(drillRow.category).toBe('search_required');
  expect(famRow.category).toBe('search_free');
  expect(lookReading(records, world)).toEqual([
    { creatures: 'new', rows: 1, ...base, marks: 0, recognisedRight: 0, ...asked(drillRow, 1) },
    { creatures: 'familiar', rows: 1, ...base, marks: 1, recognisedRight: 1, ...asked(famRow, 1) },
    { creatures: 'unfamiliar', rows: 1, described: 0, pattern: 0, colour: 0, shape: 0, marks: 0, recognised: 0, recognisedRight: 0, ...asked(unfRow, 0) },
    { creatures: 'held_out', rows: 1, ...base, marks: 1, recognisedRight: 0, searchRequired: 1, searchRequiredRecognised: 1 },
  ]);
  expect(() => lookReading([{ ...records[0], data_id: 'fvqa_mini_train_99999' }], world)).toThrow(/fvqa_mini_train_99999 is not a row of the world's train or heldout split/);
});
