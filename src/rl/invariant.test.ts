/**
 * The refactoring invariant (issue 17): a short seeded run on the float64 CPU backend (a micro VLM,
 * a tiny FVQA-mini world, a few warm-start SFT steps, a few GRPO steps, evaluation) must give the same
 * metrics, rollouts and checkpoint bytes, bit for bit, as it did when the digests below were recorded.
 * A change of behaviour (the numbers of a run, or the checkpoint format) fails this test: if the change
 * is meant, record the new digests (the failure message prints them) in the same commit and say why.
 *
 * The recipe is written out here (not read from recipes/), and the time-dependent metrics (time/*,
 * tokens_per_second) are left out of the digest. Of the rollouts, the tokens and turns count (the
 * masks shape the loss, which the metrics and the checkpoint cover).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { parseRecipe } from './recipe.js';
import type { CheckpointStore } from '../storage/checkpoint-store.js';
import { microModelFiles } from './testing.js';
import { Trainer, type TrainEvent } from './trainer.js';

/** sha256 of the run's metrics events, rollouts events and every checkpoint saved, in order. */
const RECORDED = {
  metrics: '6fe98d45e7f3146ac9b7086a49c154de86d32d744f526436303549b069f38748',
  rollouts: '6571ef93ece6b0b4de2d4bd16a11c52b8fb989003e10a9e897cb44eda8a65756',
  checkpoints: '38bfae55852c91857a96069c54a3705e7b7e5f232b8a4beceea6950a985d62f7',
};

const root = new URL('../../', import.meta.url).pathname;
const readFile = microModelFiles(32);

const recipe = parseRecipe({
  name: 'invariant',
  seed: 3,
  model: { source: 'models/micro', init: 'scratch', compact_instructions: true },
  data: { source: 'fvqa-mini', fvqa_mini: { entities: 8, held_out_entities: 2, test_size: 8, sft_samples_per_pair: 1 } },
  search: { backend: 'local', summary_sentences: 1 },
  sft: { num_train_epochs: 0.25, learning_rate: 0.003, per_device_train_batch_size: 2, gradient_accumulation_steps: 2, group_by_length: true, warmup_ratio: 0.5, weight_decay: 0.01, max_grad_norm: 1 },
  grpo: {
    learning_rate: 0.0005, num_generations: 2, per_device_train_batch_size: 2, gradient_accumulation_steps: 2, max_steps: 3,
    beta: 0.04, epsilon: 0.2, loss_type: 'dapo', temperature: 0.9, max_completion_length: 96, lr_scheduler_type: 'linear', warmup_ratio: 0.34,
    num_iterations: 2, max_grad_norm: 1, weight_decay: 0.01, search: { max_turns: 3, image_search_limit: 1, text_search_limit: 2, results_per_search: 1 },
  },
  rollout: { max_turn_tokens: 24 },
  eval: { split: 'test', max_rows: 2, modes: ['direct', 'rag', 'on_demand'], batch_size: 8, after_sft: true },
  checkpoint_steps: 2,
});

const sha = (h: ReturnType<typeof createHash>) => h.digest('hex');

test('a seeded CPU run gives the recorded metrics, rollouts and checkpoint bytes', async () => {
  const metrics = createHash('sha256'), rollouts = createHash('sha256'), checkpoints = createHash('sha256');
  let saves = 0;
  const store: CheckpointStore = {
    async load() {
      return null;
    },
    async save(files) {
      saves++;
      for (const name of [...files.keys()].sort()) checkpoints.update(`${name}\n`).update(files.get(name)!);
    },
  };
  const onEvent = (e: TrainEvent) => {
    if (e.type === 'metrics') {
      const kept = Object.entries(e.metrics).filter(([k]) => !k.startsWith('time/') && k !== 'tokens_per_second');
      metrics.update(JSON.stringify([e.phase, e.step, kept]) + '\n');
    } else if (e.type === 'rollouts') {
      rollouts.update(JSON.stringify([e.step, e.trajectories.map((t) => [t.tokens, t.turns]), e.rewards, e.advantages]) + '\n');
    }
  };
  const t = new Trainer(recipe, { backend: new E.CpuBackend(), readFile, store, onEvent });
  await t.setup();
  await t.run();
  expect(t.state.phase).toBe('done');
  expect(saves).toBeGreaterThan(3);
  const got = { metrics: sha(metrics), rollouts: sha(rollouts), checkpoints: sha(checkpoints) };
  expect(got, `digests now: ${JSON.stringify(got, null, 2)}`).toEqual(RECORDED);
}, 600_000);
