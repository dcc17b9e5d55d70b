/**
 * The agent loop's live reports (what Chat streams): for every trajectory of a batch, the text
 * streamed per turn is the turn's text, one call report per turn and one tool report per inserted
 * search result. A micro VLM on the float64 CPU backend in the RAG workflow, so that both searches run
 * and the workflow's inserted actions stream too.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { generateFvqaMini } from '../data/fvqa-mini.js';
import { createModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { loadTokenizer } from '../models/tokenizer.js';
import { DEFAULT_LIMITS, type ToolCall } from '../protocol/tools.js';
import { LocalSearchIndex } from '../search/local-index.js';
import { rollout } from './rollout.js';

test('rollout callbacks: streamed text, calls and tool results match each trajectory', async () => {
  const root = new URL('../../', import.meta.url);
  const json = (f: string) => JSON.parse(readFileSync(new URL(f, root), 'utf8'));
  const tok = loadTokenizer(json('models/tiny-vlm/tokenizer.json'), json('models/tiny-vlm/tokenizer_config.json'));
  const tiny = json('models/tiny-vlm/config.json');
  const micro = {
    ...tiny,
    vision_config: { ...tiny.vision_config, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 },
    text_config: { ...tiny.text_config, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2 },
  };
  const model = createModel(parseConfig(micro), new E.CpuBackend(), 1);
  const world = generateFvqaMini({ seed: 3, entities: 16, heldOutEntities: 2, testSize: 8 });
  const tools = await LocalSearchIndex.build(world.corpus);
  const rows = world.splits.test.slice(0, 2);
  const text = rows.map(() => [] as string[]);
  const turns = rows.map(() => [] as number[]);
  const calls = rows.map(() => [] as ToolCall[]);
  const toolReports = rows.map(() => 0);
  const { trajectories } = await rollout(model, tok, rows, tools, {
    sampling: { temperature: 1, rng: new E.Rng(7) }, limits: DEFAULT_LIMITS, maxTurnTokens: 6, maxCompletionLength: 600,
    resultsPerSearch: 1, imageSize: tiny.vision_config.image_size, withThumbnails: true, compactInstructions: true, mode: 'rag',
    callbacks: {
      onTurn: (r, turn) => (turns[r].push(turn), text[r].push('')),
      onToken: (r, turn, piece) => (text[r][turn] += piece),
      onCall: (r, _turn, call) => calls[r].push(call),
      onTool: (r) => toolReports[r]++,
    },
  });
  trajectories.forEach((t, r) => {
    expect(turns[r]).toEqual(t.turns.map((_, k) => k));
    expect(text[r]).toEqual(t.turns);
    expect(calls[r]).toEqual(t.calls);
    expect(toolReports[r]).toBe(t.toolTurns.length);
  });
  // The workflow searched in both trajectories: its inserted actions were streamed with the policy's text.
  expect(trajectories.every((t) => t.toolTurns.length >= 1 && t.turns[0].includes('<search><img></search>'))).toBe(true);
  model.dispose();
}, 300_000);
