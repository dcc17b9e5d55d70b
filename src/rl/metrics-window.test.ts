/** logging_steps: metrics logged every N steps as the mean over the interval (transformers / TRL). */
import { expect, test } from 'vitest';
import { MetricsWindow } from './metrics-window.js';

test('logging_steps 3: logs at global steps 3 and 6 only, means over the interval, learning_rate and grad_norm of the last step', () => {
  const w = new MetricsWindow(3);
  const steps = [
    { reward: 0.1, learning_rate: 1, grad_norm: 5, 'search_ratio/search_free': NaN },
    { reward: 0.4, learning_rate: 0.9, grad_norm: 6, 'search_ratio/search_free': 0.5 },
    { reward: 0.7, learning_rate: 0.8, grad_norm: 7, 'search_ratio/search_free': NaN },
    { reward: 1, learning_rate: 0.7, grad_norm: 8, 'search_ratio/search_free': NaN },
    { reward: 0, learning_rate: 0.6, grad_norm: 9, 'search_ratio/search_free': NaN },
    { reward: 0.5, learning_rate: 0.5, grad_norm: 10, 'search_ratio/search_free': NaN },
    { reward: 0.2, learning_rate: 0.4, grad_norm: 11, 'search_ratio/search_free': 1 },
  ];
  const logged = steps.map((m, i) => w.add(i + 1, m));
  expect(logged.map((x) => x !== null)).toEqual([false, false, true, false, false, true, false]);
  // (0.1 + 0.4 + 0.7) / 3 = 0.4; the NaN rate is skipped: 0.5 / 1.
  expect(logged[2]!.reward).toBeCloseTo(0.4, 15);
  expect(logged[2]).toMatchObject({ learning_rate: 0.8, grad_norm: 7, 'search_ratio/search_free': 0.5 });
  // (1 + 0 + 0.5) / 3 = 0.5; a rate NaN at every step of the interval stays NaN.
  expect(logged[5]!.reward).toBeCloseTo(0.5, 15);
  expect(logged[5]!.learning_rate).toBe(0.5);
  expect(logged[5]!['search_ratio/search_free']).toBeNaN();
  // Key order is the steps' own.
  expect(Object.keys(logged[5]!)).toEqual(['reward', 'learning_rate', 'grad_norm', 'search_ratio/search_free']);
});

test('logging_steps 1 returns every step unchanged', () => {
  const w = new MetricsWindow(1);
  const m = { reward: 0.3, 'search_ratio/search_required': NaN, learning_rate: 2e-6 };
  const out = w.add(1, m)!;
  expect(out.reward).toBe(0.3);
  expect(out.learning_rate).toBe(2e-6);
  expect(out['search_ratio/search_required']).toBeNaN();
  expect(w.add(2, { reward: 0.9 })).toEqual({ reward: 0.9 });
});

test('a logging_steps that is not a positive integer is an error', () => {
  expect(() => new MetricsWindow(0)).toThrow(/logging_steps must be a positive integer/);
});
