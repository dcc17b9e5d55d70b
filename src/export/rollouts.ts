/**
 * Rollouts of a run as JSONL for analysis elsewhere: one record per trajectory of a GRPO step (the
 * Trainer's `rollouts` event), with the prompt, each assistant turn with its tool call and the
 * inserted result, the reward components (MMSearch-R1 reward, src/rl/reward.ts) and the advantage.
 * Images are counted, not embedded.
 */
import { scoreTrajectory, type RewardComponents, type RewardOptions } from '../rl/reward.js';
import type { Trajectory } from '../rl/rollout.js';
import type { ToolCall } from '../protocol/tools.js';

/** One assistant turn: its text, the action that closed it, and the tool result inserted after it (executed searches only). */
export interface TurnRecord {
  assistant: string;
  call: ToolCall;
  /** The inserted user turn (`<image>` for each thumbnail), null when nothing was inserted. */
  result: string | null;
  /** True when the tool failed and `result` carries the error text. */
  result_error: boolean;
}

/** One trajectory of a GRPO step. */
export interface RolloutRecord {
  step: number;
  /** Position in the step's batch; trajectories index·G .. index·G+G-1 share a prompt (`group`). */
  index: number;
  group: number;
  data_id: string;
  question: string;
  ground_truth: string;
  candidate_answers: string[];
  /** The first user turn as in the dataset row (`<image>` placeholders). */
  prompt: string;
  turns: TurnRecord[];
  tool_calls: { image_search: number; text_search: number };
  reward: number;
  reward_components: Omit<RewardComponents, 'reward'>;
  advantage: number;
  truncated: boolean;
  tokens: { prompt: number; completion: number; generated: number };
  images: number;
}

/** The Trainer's `rollouts` event (src/rl/trainer.ts TrainEvent). */
export interface RolloutsEvent {
  step: number;
  trajectories: Trajectory[];
  rewards: number[];
  advantages: number[];
}

/** Pairs each executed search with the result turn inserted after it (in order; none after the last turn). */
function turnRecords(t: Trajectory): TurnRecord[] {
  let next = 0;
  return t.turns.map((assistant, i) => {
    const call = t.calls[i];
    const searched = (call.kind === 'image_search' || call.kind === 'text_search') && i < t.turns.length - 1 && next < t.toolTurns.length;
    const info = searched ? t.toolTurns[next++] : null;
    return { assistant, call, result: info?.text ?? null, result_error: info?.error ?? false };
  });
}

/**
 * Records of one `rollouts` event. Reward components are recomputed with `reward` (the recipe's
 * grpo.reward), exactly as the trainer scores (empty trajectories score as one empty turn).
 * @param groupSize num_generations (G)
 * @throws when rewards or advantages do not have one value per trajectory
 */
export function rolloutRecords(e: RolloutsEvent, reward: RewardOptions, groupSize: number): RolloutRecord[] {
  const n = e.trajectories.length;
  if (e.rewards.length !== n || e.advantages.length !== n) throw new Error(`rolloutRecords: ${n} trajectories, ${e.rewards.length} rewards, ${e.advantages.length} advantages`);
  return e.trajectories.map((t, index) => {
    const { reward: _, ...components } = scoreTrajectory(t, reward);
    const generated = t.tool_mask.reduce((a, m, i) => a + m * t.completion_mask[i], 0);
    return {
      step: e.step, index, group: Math.floor(index / groupSize), data_id: t.row.data_id, question: t.question,
      ground_truth: t.row.reward_model.ground_truth, candidate_answers: t.row.reward_model.candidate_answers,
      prompt: t.row.prompt[0].content, turns: turnRecords(t),
      tool_calls: { image_search: components.imageSearches, text_search: components.textSearches },
      reward: e.rewards[index], reward_components: components, advantage: e.advantages[index], truncated: t.truncated,
      tokens: { prompt: t.promptLength, completion: t.tokens.length - t.promptLength, generated }, images: t.images.length,
    };
  });
}

/** JSONL text: one record per line, newline-terminated. */
export function toJsonl(records: readonly unknown[]): string {
  return records.map((r) => JSON.stringify(r) + '\n').join('');
}
