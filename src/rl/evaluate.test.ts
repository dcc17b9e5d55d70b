/** Evaluation helpers that need no model: the round-robin subset and the Table-1 markdown. */
import { expect, test } from 'vitest';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { evalSubset, summarise, table1, type EvalRecord } from './evaluate.js';

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
});
