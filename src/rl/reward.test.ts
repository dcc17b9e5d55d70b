/**
 * The MMSearch-R1 reward against the notes' values (1.0 / 0.91 / 0.1), the reference's format rules
 * (mmsearch_r1_score.py) and SQuAD-style normalisation.
 */
import { describe, expect, test } from 'vitest';
import { computeScore, exactMatch, extractAnswer, formatScore, normalizeAnswer, subExactMatch, turnAction } from './reward.js';

const R = '<reason>I think about it.</reason>';
const answer = (a: string) => `${R}<answer>${a}</answer>`;
const IMG = `${R}<search><img></search>`;
const text = (q: string) => `${R}<text_search>${q}</text_search>`;
const GT = { ground_truth: 'Eiffel Tower', candidate_answers: ['La Tour Eiffel'] };

describe('normalizeAnswer', () => {
  test.each([
    ['The Eiffel Tower', 'eiffel tower'],
    ['  eiffel\n\ttower.  ', 'eiffel tower'],
    ["Tom's  A-Team!", 'toms ateam'],
    ['an apple a day', 'apple day'],
    ['Theatre', 'theatre'], // "the" inside a word stays
    ['café a', 'café'],
    ['déa', 'déa'], // é is a word character (Python's Unicode \b), so "a" is not an article here
    ['1,024', '1024'],
    ['', ''],
  ])('%j -> %j', (input, want) => {
    expect(normalizeAnswer(input)).toBe(want);
  });
});

describe('EM and SubEM', () => {
  test('EM matches ground truth or any candidate after normalisation', () => {
    expect(exactMatch('the eiffel tower.', ['Eiffel Tower'])).toBe(true);
    expect(exactMatch('la tour eiffel', ['Eiffel Tower', 'La Tour Eiffel'])).toBe(true);
    expect(exactMatch('Eiffel Tower in Paris', 'Eiffel Tower')).toBe(false);
  });
  test('SubEM accepts a prediction containing the answer', () => {
    expect(subExactMatch('Eiffel Tower in Paris', 'Eiffel Tower')).toBe(true);
    expect(subExactMatch('Tower', 'Eiffel Tower')).toBe(false);
  });
});

describe('extractAnswer', () => {
  test('last answer of the turn, trimmed; null without one', () => {
    expect(extractAnswer('<answer> a </answer> x <answer>\nb\n</answer>')).toBe('b');
    expect(extractAnswer(`${R} no tag`)).toBeNull();
  });
});

describe('the notes examples', () => {
  test('correct without search: 1.0', () => {
    const r = computeScore([answer('Eiffel Tower')], GT);
    expect(r).toMatchObject({ accuracy: 1, format: 1, searched: false, searchCount: 0, penalty: 1 });
    // (1 - 0.1)·1·1 + 0.1·1 = 1
    expect(r.reward).toBeCloseTo(1, 12);
  });
  test('correct with search: 0.91 for each search pattern', () => {
    for (const turns of [
      [IMG, answer('la tour eiffel')],
      [text('tallest tower paris'), answer('Eiffel Tower')],
      [IMG, text('tower'), answer('eiffel tower')],
    ]) {
      const r = computeScore(turns, GT);
      expect(r).toMatchObject({ accuracy: 1, format: 1, searched: true, penalty: 0.9 });
      // (1 - 0.1)·1·0.9 + 0.1·1 = 0.81 + 0.1 = 0.91
      expect(r.reward).toBeCloseTo(0.91, 12);
    }
  });
  test('wrong but well formed: 0.1, with or without search', () => {
    // (1 - 0.1)·0·P + 0.1·1 = 0.1
    expect(computeScore([answer('Big Ben')], GT).reward).toBeCloseTo(0.1, 12);
    expect(computeScore([IMG, text('x'), answer('Big Ben')], GT).reward).toBeCloseTo(0.1, 12);
  });
  test('counts searches by kind', () => {
    const r = computeScore([IMG, text('q'), answer('Big Ben')], GT);
    expect([r.searchCount, r.imageSearches, r.textSearches]).toEqual([2, 1, 1]);
  });
});

describe('bad format', () => {
  const bad: [string, string[]][] = [
    ['missing <reason>', ['<answer>Eiffel Tower</answer>']],
    ['<reason> not first', ['Well. <reason>r</reason><answer>Eiffel Tower</answer>']],
    ['unclosed reason', ['<reason>r<answer>Eiffel Tower</answer>']],
    ['two reasons', [`${R}${R}<answer>Eiffel Tower</answer>`]],
    ['two answer tags', [`${R}<answer>x</answer><answer>Eiffel Tower</answer>`]],
    ['a search tag and an answer', [`${R}<text_search>q</text_search><answer>Eiffel Tower</answer>`]],
    ['text after the answer', [`${answer('Eiffel Tower')} Hope this helps.`]],
    ['action inside the reason', ['<reason>r <answer>x</answer></reason> <answer>Eiffel Tower</answer>']],
    ['four turns', [IMG, text('a'), text('b'), answer('Eiffel Tower')]],
    ['search after answer', [answer('Eiffel Tower'), IMG]],
    ['text search then image search', [text('q'), IMG, answer('Eiffel Tower')]],
    ['two text searches', [text('a'), text('b'), answer('Eiffel Tower')]],
    ['search without answer', [IMG]],
    ['malformed second turn', [IMG, '<answer>Eiffel Tower</answer>']],
  ];
  test.each(bad)('%s -> format 0', (_name, turns) => {
    expect(formatScore(turns)).toBe(0);
  });
  test('a correct answer with text after it keeps acc but loses format: 0.9', () => {
    const r = computeScore([`${answer('Eiffel Tower')} Hope this helps.`], GT);
    // (1 - 0.1)·1·1 + 0.1·0 = 0.9 (the reference extracts the answer anywhere in the last turn)
    expect(r).toMatchObject({ accuracy: 1, format: 0 });
    expect(r.reward).toBeCloseTo(0.9, 12);
  });
  test('surrounding whitespace and whitespace inside the image tag are fine', () => {
    expect(turnAction(`\n ${R}\n<search> <img> </search>\n`)).toBe('image_search');
    expect(turnAction(`${R} so I answer: <answer>x</answer>`)).toBe('answer');
  });
  test('no turns is an error', () => {
    expect(() => formatScore([])).toThrow(/at least one/);
  });
});

describe('constants', () => {
  test('every constant is configurable', () => {
    const turns = [IMG, text('q'), answer('Eiffel Tower')];
    // a = 0.2, search penalty 0.5 per search, 2 searches: P = 0.5² = 0.25; 0.8·1·0.25 + 0.2·1 = 0.4
    const r = computeScore(turns, GT, { format_penalty: 0.2, search_penalty: 0.5, use_search_count_penalty: true });
    expect(r.penalty).toBeCloseTo(0.25, 12);
    expect(r.reward).toBeCloseTo(0.4, 12);
  });
  test('SubEM mode', () => {
    // 0.9·1·1 + 0.1·1 = 1 with SubEM; EM gives 0.1
    expect(computeScore([answer('the Eiffel Tower in Paris')], GT, { reward_mode: 'SubEM' }).reward).toBeCloseTo(1, 12);
    expect(computeScore([answer('the Eiffel Tower in Paris')], GT).reward).toBeCloseTo(0.1, 12);
  });
  test('candidate answers as the parquet JSON string', () => {
    expect(computeScore([answer('La Tour Eiffel')], { ground_truth: 'Eiffel Tower', candidate_answers: '["La Tour Eiffel"]' }).accuracy).toBe(1);
    expect(() => computeScore([answer('x')], { ground_truth: 'x', candidate_answers: '{"a": 1}' })).toThrow(/candidate_answers/);
  });
  test('out-of-range constants are errors', () => {
    expect(() => computeScore([answer('x')], GT, { search_penalty: 1.5 })).toThrow(/search_penalty/);
  });
});
