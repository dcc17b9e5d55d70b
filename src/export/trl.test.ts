/**
 * The TRL export (issue 18 item 2), run with the test Python environment (trl 1.13, transformers, peft):
 *  - the project's protocol and reward against the lab's: the Python rollout's tool-result turns render
 *    to the lab's text and token ids (src/protocol, TurnEncoder.userTurn), its MMSearch-R1 reward equals
 *    the lab's computeScore on turn sequences that cover every format rule, and PEFT's LoraConfig with
 *    the paper recipe's settings adapts the same modules as the lab's applyLora;
 *  - TRL's loss: on one fixed batch of the lab's rollouts (a group of RAG-workflow trajectories, so
 *    tool-result tokens are in it), trl.GRPOTrainer._compute_loss for grpo, bnpo, dr_grpo and dapo
 *    equals the lab's grpoLoss within 1e-5 (python/check_trl_loss.py);
 *  - two GRPO steps of the exported project (train.py: GRPOTrainer with the rollout_func hook, under
 *    accelerate launch with two processes) on the CPU from the shipped tiny-vlm GRPO policy against
 *    the lab's search proxy on a local port (RAG workflow, so every trajectory searches through it):
 *    rewards and a gradient, weights that moved, and the trained model loaded back into the lab,
 *    whose logits transformers reproduces (check_hf_compat.py).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { startProxy } from '../../proxy/server.js';
import { runPython, runPythonAsync } from '../../scripts/python-env.js';
import * as E from '../engine/index.js';
import { openSafetensorsBuffer } from '../io/safetensors.js';
import { applyLora, createModel, loadPretrained, saveModel } from '../models/checkpoint.js';
import { parseConfig } from '../models/config.js';
import { compactInstructions } from '../protocol/prompts.js';
import { renderImageResults, renderTextResults } from '../protocol/tools.js';
import { TurnEncoder } from '../rl/conversation.js';
import { localSearchTools, worldOf } from '../rl/environment.js';
import { computeAdvantages, grpoLoss, LOSS_TYPES } from '../rl/grpo.js';
import { loadStoredRecipe, parseRecipe, type Recipe } from '../rl/recipe.js';
import { computeScore } from '../rl/reward.js';
import { rollout } from '../rl/rollout.js';
import { packBatch, sequenceLogprobs } from '../rl/steps.js';
import { exportModelFolder, goldenOutput, goldenRow } from './model.js';
import { writeFiles } from './node.js';
import { dec, read, root, tempDirs, tok, tokenizerOf, tokFiles } from './testing.js';
import { writeTrlExport } from './trl-node.js';

const tmp = tempDirs('mmsearch-trl-');
const tinyConfig = dec(read(join(root, 'models/tiny-vlm/config.json')));

/** fvqa-mini on a small world, compact instructions, with the given GRPO overrides. */
function recipe(grpo: Record<string, unknown> = {}): Recipe {
  const base = JSON.parse(readFileSync(join(root, 'recipes/fvqa-mini.json'), 'utf8'));
  return parseRecipe({ ...base, data: { source: 'fvqa-mini', fvqa_mini: { entities: 16, held_out_entities: 2, test_size: 8 } }, grpo: { ...base.grpo, ...grpo } });
}

describe('TRL export', () => {
  const r = recipe();
  const dir = tmp();
  let exported = false;
  const ensureExport = async () => {
    if (!exported) await writeTrlExport(r, dir, { tokenizer: tokFiles, proxyUrl: 'http://127.0.0.1:1' });
    exported = true;
  };

  test('the Python rollout renders tool-result turns as the lab does (text and token ids); its reward is the lab\'s computeScore', async () => {
    await ensureExport();
    const question = 'Which river flows through this city?';
    const imageHits = [{ title: 'Page one', url: 'https://a', thumbnail: 'data:image/png;base64,AA==' }, { title: 'Second page', url: 'https://b', thumbnail: 'data:image/png;base64,AA==' }];
    const textHits = [{ title: 't', url: 'https://x/1', summary: 'The Rhine flows through it.' }];
    const enc = new TurnEncoder(tok, 16, true);
    const lab = {
      image: compactInstructions(renderImageResults(imageHits, question, false).text),
      text: compactInstructions(renderTextResults(textHits, question).text),
      empty: compactInstructions(renderTextResults([], question).text),
      image_ids: enc.userTurn(renderImageResults(imageHits, question, false).text),
      text_ids: enc.userTurn(renderTextResults(textHits, question).text),
    };
    const turnSets: string[][] = [
      ['<reason>I know it.</reason><answer>Rhine</answer>'],
      ['<reason>x</reason><search><img></search>', '<reason>y</reason><answer>the rhine</answer>'],
      ['<reason>x</reason><search> <img> </search>', '<reason>q</reason><text_search>river city</text_search>', '<reason>z</reason><answer>Rhine!</answer>'],
      ['<reason>x</reason><text_search>q</text_search>', '<reason>z</reason><answer>Danube</answer>'],
      ['<reason>x</reason><answer>Rhine</answer> trailing'],
      ['no reason <answer>Rhine</answer>'],
      ['<reason>a</reason><reason>b</reason><answer>Rhine</answer>'],
      ['<reason>x</reason><text_search></text_search>'],
      [''],
    ];
    // The paper recipe's LoRA settings (smolvlm-256m-lora), which the TRL export hands to peft.LoraConfig:
    // the lab's applyLora and PEFT pick the same modules of the tiny-vlm (SmolVLM's module names).
    const smolLora = JSON.parse(readFileSync(join(root, 'recipes/smolvlm-256m-lora.json'), 'utf8')).model.lora;
    const labModel = createModel(parseConfig(tinyConfig), new E.CpuBackend(), 1);
    const labTargets = applyLora(labModel, smolLora).sort();
    labModel.dispose();
    const answers = ['Rhine', 'Rhein'];
    const labScores = turnSets.map((t) => computeScore(t, { ground_truth: answers[0], candidate_answers: answers.slice(1) }, { search_penalty: 0.1, format_penalty: 0.1 }));
    const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(dir)})
from mmsearch_trl import Protocol, compute_score
from transformers import AutoTokenizer
p = Protocol.load(${JSON.stringify(join(dir, 'protocol.json'))})
tok = AutoTokenizer.from_pretrained(${JSON.stringify(join(dir, 'model'))})
q = ${JSON.stringify(question)}
image = p.image_results(${JSON.stringify(imageHits)}, q)
text = p.text_results(${JSON.stringify(textHits)}, q)
ids = lambda s: tok(p.user_turn_text(s), add_special_tokens=False)["input_ids"]
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForImageTextToText
lora = ${JSON.stringify(smolLora)}
peft_model = get_peft_model(AutoModelForImageTextToText.from_pretrained(${JSON.stringify(join(dir, 'model'))}), LoraConfig(r=lora["r"], lora_alpha=lora["lora_alpha"], lora_dropout=lora["lora_dropout"], target_modules=lora["target_modules"]))
targets = sorted(n[len("base_model.model."):-len(".lora_A")] for n, _ in peft_model.named_modules() if n.endswith(".lora_A"))
print(json.dumps({"image": image, "text": text, "empty": p.text_results([], q), "image_ids": ids(image), "text_ids": ids(text), "lora_targets": targets,
  "scores": [compute_score(t, ${JSON.stringify(answers)}, 0.1, 0.1) for t in ${JSON.stringify(turnSets)}]}))`;
    const res = runPython(['-c', script]);
    expect(res.status, res.stderr.slice(-2000)).toBe(0);
    const py = JSON.parse(res.stdout);
    expect(py.lora_targets).toEqual(labTargets);
    expect(labTargets.length).toBe(4 * 7); // q, k, v, o, gate, up, down of tiny-vlm's 4 text layers; no vision module
    expect(py.image).toBe(lab.image);
    expect(py.text).toBe(lab.text);
    expect(py.empty).toBe(lab.empty);
    expect(py.image_ids).toEqual(lab.image_ids);
    expect(py.text_ids).toEqual(lab.text_ids);
    expect(py.scores.map((s: { reward: number }) => s.reward)).toEqual(labScores.map((s) => s.reward));
    expect(py.scores.map((s: { format: number; accuracy: number; searches: number }) => [s.format, s.accuracy, s.searches])).toEqual(labScores.map((s) => [s.format, s.accuracy, s.searchCount]));
    // The cases are not all alike: full, search-penalised, format-only and zero rewards all occur.
    expect(new Set(labScores.map((s) => s.reward.toFixed(2)))).toEqual(new Set(['1.00', '0.91', '0.10', '0.90', '0.00']));
  }, 120_000);

  test('on one fixed batch of the lab\'s rollouts, TRL\'s _compute_loss equals the lab\'s grpoLoss for every loss_type within 1e-5', async () => {
    const be = new E.CpuBackend();
    const rr = recipe({ temperature: 0.7 });
    const world = worldOf(rr);
    // The policy as the export writes it (F32 weights), so that both sides compute with identical weights.
    const seeded = createModel(parseConfig(tinyConfig), be, 21);
    const weights = (await saveModel(seeded)).get('model.safetensors')!;
    seeded.dispose();
    const model = await loadPretrained(tinyConfig, await openSafetensorsBuffer(weights), be);
    const G = 6;
    const row = world.splits.train[0];
    const tools = await localSearchTools(rr, world.corpus);
    // The RAG workflow always searches, so every trajectory carries inserted (tool_mask 0) turns.
    const { trajectories } = await rollout(model, tok, Array(G).fill(row), tools, {
      sampling: { temperature: 0.7, rng: new E.Rng(5) }, limits: { maxTurns: 3, imageSearch: 1, textSearch: 2 }, maxTurnTokens: 12, maxCompletionLength: 160,
      resultsPerSearch: 1, imageSize: 64, withThumbnails: false, compactInstructions: true, mode: 'rag',
    });
    const P = trajectories[0].promptLength;
    expect(trajectories.every((t) => t.promptLength === P && t.tool_mask.includes(0))).toBe(true);
    // An untrained policy fills every turn, so all completions are equally long; cutting trajectory b's
    // last 9·b tokens (as max_completion_length would) makes grpo, bnpo and dapo aggregate differently.
    trajectories.forEach((t, b) => {
      const n = t.tokens.length - 9 * b;
      for (const k of ['tokens', 'completion_mask', 'tool_mask'] as const) t[k] = t[k].slice(0, n);
    });
    expect(trajectories.every((t) => t.tool_mask.slice(P).includes(0))).toBe(true);
    const C = Math.max(...trajectories.map((t) => t.tokens.length - P));
    const pad = tok.specialIds.endOfUtterance;
    const comp = trajectories.map((t) => t.tokens.slice(P));
    const completionIds = comp.map((c) => [...c, ...Array(C - c.length).fill(pad)]);
    const completionMask = comp.map((c) => [...c.map(() => 1), ...Array(C - c.length).fill(0)]);
    const toolMask = trajectories.map((t) => [...t.tool_mask.slice(P), ...Array(C - (t.tokens.length - P)).fill(1)]);
    // The lab's per-token log-probs of each completion token (position t predicts token t + 1).
    const packed = packBatch(trajectories.map((t) => ({ tokens: t.tokens, completion_mask: t.completion_mask, tool_mask: t.tool_mask, images: t.images })), pad, 64);
    const full = E.noGrad(() => sequenceLogprobs(model, packed, 0.7, 64).logprobs);
    const fullData = (await full.data()) as ArrayLike<number>;
    const T = packed.batch.length;
    const labLogps = trajectories.map((_, b) => Array.from({ length: C }, (_, j) => (j < comp[b].length ? fullData[b * T + P - 1 + j] : 0)));
    // Old and reference log-probs offset from the current ones so that ratios cross both clip bounds and the KL term is non-zero.
    const old = labLogps.map((row, b) => row.map((v, j) => v + 0.35 * Math.sin(1.3 * j + b)));
    const ref = labLogps.map((row, b) => row.map((v, j) => v + 0.2 * Math.cos(0.7 * j + 2 * b)));
    const advantages = Array.from(computeAdvantages([1, 0.1, 0.91, 0, 0.1, 1], G, 'group').advantages);
    // use_bias_correction_kl False: the lab's k3 term is not weighted by the ratio (TRL 1.13's default True is; the export sets False).
    const settings = { beta: 0.04, epsilon: 0.2, epsilon_high: 0.28, temperature: 0.7, max_completion_length: 160, use_bias_correction_kl: false };
    const t2 = (x: number[][]) => E.fromArray(be, Float64Array.from(x.flat()), [G, C]);
    const maskT = t2(completionMask), toolT = t2(toolMask);
    // dapo divides by the loss tokens of the whole generation batch: this micro-batch's and, say, 37 of another one.
    const items = completionMask.flat().reduce((s, m, i) => s + m * toolMask.flat()[i], 0) + 37;
    const labLoss: Record<string, number> = {};
    for (const lt of LOSS_TYPES) {
      const out = grpoLoss(
        { per_token_logps: t2(labLogps), old_per_token_logps: t2(old), ref_per_token_logps: t2(ref), advantages, completion_mask: maskT, tool_mask: toolT },
        { loss_type: lt, beta: settings.beta, epsilon: settings.epsilon, epsilon_high: settings.epsilon_high, max_completion_length: settings.max_completion_length, num_items_in_batch: items },
      );
      labLoss[lt] = await out.loss.item();
    }
    const work = tmp();
    await writeFiles(join(work, 'model'), await exportModelFolder(tinyConfig, await openSafetensorsBuffer(weights), tokFiles, be));
    model.dispose();
    const pixels = Array.from(packed.pixels!.subarray(0, 3 * 64 * 64));
    writeFileSync(join(work, 'batch.json'), JSON.stringify({
      prompt_ids: trajectories.map((t) => t.tokens.slice(0, P)), completion_ids: completionIds, completion_mask: completionMask, tool_mask: toolMask,
      pixel_values: { shape: [G, 1, 3, 64, 64], data: Array(G).fill(pixels).flat() }, advantages, old_per_token_logps: old, ref_per_token_logps: ref,
      lab_per_token_logps: labLogps, num_items_in_batch: items, lab_loss: labLoss, ...settings,
    }));
    const res = runPython(['python/check_trl_loss.py', '--model', join(work, 'model'), '--batch', join(work, 'batch.json')]);
    const report = JSON.parse(res.stdout || '{}');
    console.info(JSON.stringify(report.losses));
    expect(Object.keys(report.losses ?? {}), res.stderr.slice(-3000)).toEqual([...LOSS_TYPES]);
    for (const lt of LOSS_TYPES) {
      expect(report.losses[lt].abs_diff, lt).toBeLessThan(1e-5);
      expect(report.losses[lt].per_token_logps_max_abs_diff, lt).toBeLessThan(1e-6);
    }
    // The four aggregations give four different numbers on this batch (so each is checked, not one four times).
    expect(new Set(LOSS_TYPES.map((lt) => labLoss[lt].toFixed(8))).size).toBe(4);
    expect(res.status).toBe(0);
  }, 300_000);

  test('two GRPO steps of the exported project (accelerate launch, 2 processes) on the CPU from the shipped tiny-vlm against a local proxy; the result loads back into the lab', async () => {
    // The shipped GRPO policy (checkpoints/fvqa-mini/grpo): a trained tiny-vlm, so rewards vary and the steps move the weights.
    const shipped = join(root, 'checkpoints/fvqa-mini/grpo');
    const sr = loadStoredRecipe(readFileSync(join(shipped, 'recipe.json'), 'utf8'), 'checkpoints/fvqa-mini/grpo/recipe.json');
    const ckpt = new Map(['config.json', 'model.safetensors'].map((f) => [f, read(join(shipped, 'checkpoint', f))] as const));
    const world = worldOf(sr);
    const proxy = await startProxy({ host: '127.0.0.1', port: 0, imageBackend: 'local', textBackend: 'local', cacheDir: join(tmp(), 'cache') }, { corpus: world.corpus });
    // Python's urllib must reach the loopback proxy directly.
    process.env.NO_PROXY = `127.0.0.1,localhost${process.env.NO_PROXY ? `,${process.env.NO_PROXY}` : ''}`;
    const project = tmp();
    try {
      // The tokenizer the shipped policy was trained with (its recipe's model source).
      const shippedTok = tokenizerOf(sr.model.source);
      await writeTrlExport(sr, project, { checkpoint: ckpt, tokenizer: shippedTok.files, proxyUrl: proxy.url });
      const out = join(project, 'out');
      // Through accelerate launch with two processes (gloo on the CPU), as a multi-GPU run is launched; the RAG
      // workflow makes every trajectory search (an image search after the first reasoning, then a text search).
      const launch = ['-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no'];
      const res = await runPythonAsync([...launch, 'train.py', '--output-dir', out, '--max-steps', '2', '--cpu', '--rollout-mode', 'rag',
        '--set', 'per_device_train_batch_size=4', '--set', 'gradient_accumulation_steps=1', '--set', 'num_generations=2', '--set', 'save_steps=1000'], { cwd: project, timeoutMs: 900_000 });
      expect(res.status, res.stderr.slice(-4000)).toBe(0);
      expect(JSON.parse(readFileSync(join(out, 'run_info.json'), 'utf8'))).toEqual({ num_processes: 2, global_step: 2 });
      const history = JSON.parse(readFileSync(join(out, 'log_history.json'), 'utf8')) as Record<string, number>[];
      const steps = history.filter((h) => 'reward' in h);
      expect(steps.map((h) => h.step)).toEqual([1, 2]);
      for (const h of steps) for (const k of ['reward', 'reward_std', 'frac_reward_zero_std', 'rewards/accuracy/mean', 'rewards/format/mean', 'search_ratio', 'completions/mean_length', 'entropy', 'grad_norm']) expect(Number.isFinite(h[k]), k).toBe(true);
      // Trajectories searched through the proxy (all but those whose first turn sampled end-of-utterance,
      // which ends them as in the lab); the trained policy earns rewards, so the steps have a gradient.
      for (const h of steps) expect(h.search_ratio).toBeGreaterThan(0);
      const { hits, misses } = proxy.cache.stats();
      expect(hits + misses).toBeGreaterThan(0);
      expect(steps.some((h) => h.reward > 0 && h.grad_norm > 0)).toBe(true);
      console.info(JSON.stringify({ proxy: { hits, misses }, steps: steps.map((h) => ({ step: h.step, reward: h.reward, accuracy: h['rewards/accuracy/mean'], format: h['rewards/format/mean'], search_ratio: h.search_ratio, mean_length: h['completions/mean_length'], loss: h.loss, grad_norm: h.grad_norm })) }));

      // Back into the lab: its loader reads the trained files, the weights moved from the shipped ones, and
      // transformers reproduces the lab's logits on them.
      const be = new E.CpuBackend();
      const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      const m = await loadPretrained(config, await openSafetensorsBuffer(read(join(out, 'model.safetensors'))), be);
      const before = await loadPretrained(JSON.parse(new TextDecoder().decode(ckpt.get('config.json')!)), await openSafetensorsBuffer(ckpt.get('model.safetensors')!), be);
      const name = 'model.text_model.layers.0.self_attn.q_proj.weight';
      const [w1, w0] = await Promise.all([m, before].map(async (x) => Array.from((await x.namedParameters().find(([n]) => n === name)![1].data()) as ArrayLike<number>)));
      expect(w1.some((v, i) => v !== w0[i])).toBe(true);
      before.dispose();
      writeFileSync(join(out, 'golden.json'), JSON.stringify(await goldenOutput(sr, m, shippedTok.tok, goldenRow(sr), 8)));
      m.dispose();
      const check = runPython(['scripts/check_hf_compat.py', '--model', out, '--golden', join(out, 'golden.json')]);
      const report = JSON.parse(check.stdout);
      expect(report.checks.from_pretrained.max_abs_logit_diff).toBeLessThan(1e-4);
      expect(report.ok, check.stdout.slice(0, 3000)).toBe(true);
    } finally {
      await proxy.close();
    }
  }, 900_000);
});
