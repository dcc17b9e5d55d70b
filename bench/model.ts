/**
 * The model benchmark suite: prefill tokens/s, batched decode tokens/s (B = 1, 8, 64) with the KV
 * cache, training forward+backward tokens/s, and peak bytes, for tiny-vlm and for SmolLM2-135M- and
 * SmolVLM-256M-shaped models with random weights (their published config.json sizes). `quick`
 * keeps 2 decoder layers of the large models (the row says so) for software adapters.
 */
import * as E from '../src/engine/index.js';
import { createModel } from '../src/models/checkpoint.js';
import { parseConfig } from '../src/models/config.js';
import { DecodeSession } from '../src/models/generate.js';
import type { BenchRow } from './engine.js';

const smolLM2 = {
  architectures: ['LlamaForCausalLM'], hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9,
  num_key_value_heads: 3, vocab_size: 49152, tie_word_embeddings: true, rope_theta: 100000, rms_norm_eps: 1e-5, max_position_embeddings: 8192,
};
const smolVLM = {
  architectures: ['Idefics3ForConditionalGeneration'], image_token_id: 49190, scale_factor: 4, tie_word_embeddings: false,
  vision_config: { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, image_size: 512, patch_size: 16 },
  text_config: { ...smolLM2, architectures: undefined, vocab_size: 49280, tie_word_embeddings: false },
};

/** Runs the model suite. `tinyConfig` is models/tiny-vlm/config.json. */
export async function modelSuite(be: E.Backend, tinyConfig: Record<string, unknown>, opts: { quick?: boolean; log?: (r: BenchRow) => void } = {}): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const push = (r: BenchRow) => (rows.push(r), opts.log?.(r));
  const shrink = (c: Record<string, unknown>): Record<string, unknown> => {
    if (!opts.quick) return c;
    if ('text_config' in c) return { ...c, text_config: { ...(c.text_config as object), num_hidden_layers: 2 }, vision_config: { ...(c.vision_config as object), num_hidden_layers: 2 } };
    return { ...c, num_hidden_layers: 2 };
  };
  const models: [string, Record<string, unknown>][] = [
    ['tiny-vlm', tinyConfig],
    [opts.quick ? 'SmolLM2-135M shape (2 of 30 layers)' : 'SmolLM2-135M shape', shrink(smolLM2)],
    [opts.quick ? 'SmolVLM-256M shape (2 of 30+12 layers)' : 'SmolVLM-256M shape', shrink(smolVLM)],
  ];
  for (const [name, raw] of models) {
    const model = createModel(parseConfig(raw), be, 0);
    const vocab = model.text.vocab_size;
    const rng = new E.Rng(1);
    const prompt = (b: number, t: number) => ({ ids: Int32Array.from({ length: b * t }, () => rng.int(Math.min(vocab, 1000))), batch: b, length: t });
    const row = (what: string, ms: number, tokens: number) => push({ suite: 'model', name: `${name}: ${what}`, adapter: be.description, ms, tokensPerS: tokens / (ms / 1000), peakBytes: be.memory().peakBytes });

    const T = opts.quick ? 64 : 256;
    be.resetPeak();
    let t0 = performance.now();
    E.noGrad(() => E.scope(() => void model.forward(prompt(1, T))));
    await be.sync();
    row(`prefill B1 T${T}`, performance.now() - t0, T);

    for (const B of opts.quick ? [1, 8] : [1, 8, 64]) {
      const s = new DecodeSession(model, B, 16 + 8);
      await s.append(Array.from({ length: B }, () => ({ ids: Array.from({ length: 16 }, () => rng.int(Math.min(vocab, 1000))) })));
      be.resetPeak();
      t0 = performance.now();
      await s.generate({ maxNewTokens: 8, sampling: { temperature: 1, rng } });
      row(`decode B${B} (8 tokens, KV cache)`, performance.now() - t0, B * 8);
      s.dispose();
    }

    const B = opts.quick ? 1 : 8;
    const params = model.parameters();
    be.resetPeak();
    t0 = performance.now();
    E.scope(() => {
      const b = prompt(B, T);
      const h = model.forward(b);
      const { logprobs } = E.tokenLogprobs(h.reshape([B * T, model.text.hidden_size]), model.lmHeadWeight(), E.fromArray(be, b.ids, [B * T], 'i32'));
      E.mean(logprobs).backward();
    });
    await be.sync();
    row(`train fwd+bwd B${B} T${T}`, performance.now() - t0, B * T);
    E.zeroGrad(params);
    model.dispose();
  }
  return rows;
}
