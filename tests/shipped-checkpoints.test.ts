/**
 * The checkpoints that ship with the lab (checkpoints/fvqa-mini/*, written by scripts/ship-checkpoint.ts):
 * every file matches the sha256 its manifest records, and the weights, loaded as the lab and
 * `npm run eval -- --checkpoint` load them (WebAssembly backend, greedy on-demand decoding), give the
 * answers and search calls the manifest records on its fixed test rows.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { WasmBackend } from '../src/engine/wasm/backend.js';
import { loadStoredRecipe } from '../src/rl/recipe.js';
import { FsCheckpointStore } from '../src/storage/fs-checkpoint-store.js';
import { Trainer } from '../src/rl/trainer.js';

const root = new URL('../', import.meta.url).pathname;
const shipped = join(root, 'checkpoints/fvqa-mini');
const folders = existsSync(shipped) ? readdirSync(shipped).filter((d) => existsSync(join(shipped, d, 'manifest.json'))) : [];
let backend: WasmBackend | undefined;
afterAll(() => backend?.destroy());

test('the lab ships the warm start and the GRPO-trained policy of the main recipe', () => {
  expect(folders.sort()).toEqual(['grpo', 'warm-start']);
});

describe.each(folders)('checkpoints/fvqa-mini/%s', (folder) => {
  const dir = join(shipped, folder);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));

  test('every file matches its manifest sha256; the manifest says how it was made', () => {
    for (const [file, sha] of Object.entries(manifest.files as Record<string, string>))
      expect(createHash('sha256').update(readFileSync(join(dir, file))).digest('hex'), file).toBe(sha);
    expect(manifest.recipe).toBe('fvqa-mini');
    expect(manifest.command).toMatch(/npm run train -- --recipe fvqa-mini/);
    expect(manifest.evaluation.map((s: { split: string; mode: string }) => `${s.split}/${s.mode}`)).toEqual(
      ['test/direct', 'test/rag', 'test/on_demand', 'heldout/direct', 'heldout/rag', 'heldout/on_demand'],
    );
  });

  test('greedy on-demand answers and search calls on the fixed test rows are the recorded ones', async () => {
    backend ??= await WasmBackend.create();
    const recipe = loadStoredRecipe(readFileSync(join(dir, 'recipe.json'), 'utf8'));
    const source = new FsCheckpointStore(dir);
    const t = new Trainer(
      { ...recipe, eval: { ...recipe.eval, split: 'test', modes: ['on_demand'], max_rows: manifest.checks.rows.length } },
      { backend, readFile: async (p) => new Uint8Array(readFileSync(join(root, p))), store: { load: () => source.load(), save: async () => {} } },
    );
    await t.setup();
    t.state.phase = 'eval';
    await t.run();
    t.model.dispose();
    const got = t.evalResult!.records.map((x) => ({
      data_id: x.data_id, question: x.question, answer: x.answer, correct: x.correct, image_searches: x.imageSearches, text_searches: x.textSearches,
    }));
    expect(got).toEqual(manifest.checks.rows);
  }, 300_000);
});
