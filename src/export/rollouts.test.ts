/**
 * Rollout records from hand-built trajectories: turns paired with the inserted results, tool-call
 * counts, and reward components with the paper's values (correct after searching 0.91, wrong but well
 * formed 0.1, MMSearch-R1 section 3.2), the advantage carried through, JSONL parsing back.
 */
import { describe, expect, test } from 'vitest';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import type { FvqaRow } from '../data/types.js';
import type { Trajectory } from '../rl/rollout.js';
import { parseToolCall, type InformationTurn } from '../protocol/tools.js';
import { rolloutRecords, toJsonl, type RolloutRecord } from './rollouts.js';

const row: FvqaRow = generateFvqaMini({ seed: 1, entities: 16, heldOutEntities: 2, testSize: 8 }).splits.test[0];
const info = (text: string): InformationTurn => ({ parts: [{ type: 'text', text }], text, images: [], error: false });

function traj(turns: string[], toolTurns: InformationTurn[], lossMask: number[]): Trajectory {
  return {
    // Tokens before promptLength are the prompt; the rest follow lossMask (0 = inserted by a tool).
    row, question: 'q?', tokens: lossMask.map((_, i) => i), completion_mask: lossMask.map((_, i) => +(i >= 3)), tool_mask: lossMask.map((m, i) => (i >= 3 ? m : 1)), sampling_per_token_logps: lossMask.map(() => 0), promptLength: 3,
    images: [row.images[0].bytes], turns, calls: turns.map(parseToolCall), toolTurns, truncated: false,
  };
}

describe('rollout records', () => {
  const gt = row.reward_model.ground_truth;
  const chain = traj(
    ['<reason>a</reason><search><img></search>', '<reason>b</reason><text_search>who</text_search>', `<reason>c</reason><answer>${gt}</answer>`],
    [info('Searched results: <information>image hits</information>'), info('Searched results: <information>text hits</information>')],
    [0, 0, 0, 1, 1, 0, 1, 0, 1, 1],
  );
  const wrong = traj(['<reason>a</reason><answer>definitely not it</answer>'], [], [0, 0, 0, 1, 1]);
  const unanswered = traj(['<reason>a</reason><search><img></search>'], [], [0, 0, 0, 1]);
  const event = { step: 7, trajectories: [chain, wrong, unanswered, wrong], rewards: [0.91, 0.1, 0, 0.1], advantages: [1.5, -0.5, -1, 0] };
  const recs = rolloutRecords(event, { format_penalty: 0.1, search_penalty: 0.1 }, 2);

  test('turns carry their tool call and the result inserted after them', () => {
    expect(recs[0].turns.map((t) => [t.call.kind, t.result])).toEqual([
      ['image_search', 'Searched results: <information>image hits</information>'],
      ['text_search', 'Searched results: <information>text hits</information>'],
      ['answer', null],
    ]);
    expect(recs[0].tool_calls).toEqual({ image_search: 1, text_search: 1 });
    expect(recs[2].turns[0]).toMatchObject({ call: { kind: 'image_search' }, result: null });
    expect(recs[0].prompt).toBe(row.prompt[0].content);
    expect(recs.map((r) => [r.step, r.index, r.group])).toEqual([[7, 0, 0], [7, 1, 0], [7, 2, 1], [7, 3, 1]]);
  });

  test('reward components agree with the paper\'s values and the event\'s rewards; advantages carried', () => {
    expect(recs[0].reward_components).toMatchObject({ accuracy: 1, format: 1, searched: true, penalty: 0.9, answer: gt });
    expect(recs[1].reward_components).toMatchObject({ accuracy: 0, format: 1, searched: false, penalty: 1 });
    expect(recs[2].reward_components).toMatchObject({ accuracy: 0, format: 0 });
    expect(recs.map((r) => r.reward)).toEqual([0.91, 0.1, 0, 0.1]);
    expect(recs.map((r) => r.advantage)).toEqual([1.5, -0.5, -1, 0]);
    expect(recs[0].tokens).toEqual({ prompt: 3, completion: 7, generated: 5 });
  });

  test('JSONL parses back to the records', () => {
    const lines = toJsonl(recs).trimEnd().split('\n').map((l) => JSON.parse(l) as RolloutRecord);
    expect(lines).toEqual(JSON.parse(JSON.stringify(recs)));
  });

  test('mismatched lengths are an error', () => {
    expect(() => rolloutRecords({ ...event, rewards: [1] }, {}, 2)).toThrow(/4 trajectories, 1 rewards/);
  });
});
