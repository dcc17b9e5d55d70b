/**
 * The workloads of the side-by-side benchmark (full shapes, or `quick` ones sized for software
 * adapters), and their host data: seeded inputs and model weights by Hugging Face name, generated
 * once per page and uploaded by every engine, so that all engines compute on identical numbers.
 */
import tinyVlm from '../models/tiny-vlm/config.json';
import { Rng } from '../src/engine/random.js';
import type { SuiteName, TextSpec, VisionSpec, Workload, WorkloadSpec } from './harness.js';

/** SmolLM2-135M's published config.json sizes (random weights here). */
export const SMOLLM2_135M: TextSpec = {
  hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3,
  vocab_size: 49152, rope_theta: 100000, rms_norm_eps: 1e-5, max_position_embeddings: 8192,
};

/** tiny-vlm (models/tiny-vlm/config.json): its text decoder and vision tower. */
const { text_config: tt, vision_config: tv } = tinyVlm;
export const TINY_TEXT: TextSpec = {
  hidden_size: tt.hidden_size, intermediate_size: tt.intermediate_size, num_hidden_layers: tt.num_hidden_layers, num_attention_heads: tt.num_attention_heads,
  num_key_value_heads: tt.num_key_value_heads, vocab_size: tt.vocab_size, rope_theta: tt.rope_theta, rms_norm_eps: tt.rms_norm_eps, max_position_embeddings: tt.max_position_embeddings,
};
export const TINY_VISION: VisionSpec = {
  hidden_size: tv.hidden_size, intermediate_size: tv.intermediate_size, num_hidden_layers: tv.num_hidden_layers, num_attention_heads: tv.num_attention_heads,
  image_size: tv.image_size, patch_size: tv.patch_size, layer_norm_eps: tv.layer_norm_eps, scale_factor: tinyVlm.scale_factor, image_token_id: tinyVlm.image_token_id,
};

/** Forward+backward FLOPs of the parameters' matmuls for `tokens` tokens (6·N·tokens) plus causal attention. */
function trainFlops(t: TextSpec, layers: number, batch: number, seq: number, head: boolean): number {
  const hd = t.hidden_size / t.num_attention_heads;
  const perLayer = t.hidden_size * hd * (2 * t.num_attention_heads + 2 * t.num_key_value_heads) + 3 * t.hidden_size * t.intermediate_size;
  const attn = 4 * t.num_attention_heads * hd * ((seq * (seq + 1)) / 2) * 3.5 * batch;
  return 6 * batch * seq * (layers * perLayer + (head ? t.vocab_size * t.hidden_size : 0)) + layers * attn;
}

/** Every workload of the chosen suites; `quick` shrinks the shapes (software adapters run at CPU speed). */
export function workloads(suites: readonly SuiteName[], quick: boolean): Workload[] {
  const out: Workload[] = [];
  const add = (suite: SuiteName, id: string, name: string, spec: WorkloadSpec, tol: number, flops?: number, tokens?: number) =>
    suites.includes(suite) && out.push({ suite, id, name, spec, tol, flops, tokens });

  const mm: [number, number, number][] = quick ? [[256, 512, 512], [256, 576, 1536], [256, 1536, 576]] : [[256, 512, 512], [2048, 576, 1536], [2048, 1536, 576], [2048, 576, 576]];
  for (const dtype of ['f32', 'f16'] as const)
    for (const [m, k, n] of mm) add('matmul', `matmul-${dtype}-${m}x${k}x${n}`, `matmul ${dtype} [${m}x${k}]·[${n}x${k}]ᵀ`, { kind: 'matmul', m, k, n, dtype }, dtype === 'f16' ? 2e-2 : 1e-4, 2 * m * k * n);

  for (const t of quick ? [64, 128, 256] : [128, 512, 2048])
    for (const backward of [false, true]) {
      const fwd = 4 * 9 * 64 * ((t * (t + 1)) / 2);
      add('attention', `attention-${backward ? 'fwdbwd' : 'fwd'}-${t}`, `attention ${backward ? 'fwd+bwd' : 'fwd'} B1 T${t} 9/3 heads d64 causal`,
        { kind: 'attention', b: 1, t, hq: 9, hkv: 3, d: 64, backward }, 2e-4, backward ? 3.5 * fwd : fwd);
    }

  add('train', 'train-linear', 'train step: linear [256x512]·[512x512], AdamW', { kind: 'linear-train', m: 256, k: 512, n: 512 }, 2e-3, 6 * 256 * 512 * 512);
  const block: TextSpec = { ...SMOLLM2_135M, num_hidden_layers: 1 };
  const [bb, bt] = quick ? [1, 128] : [8, 256];
  add('train', 'train-block', `train step: Llama decoder block (576/1536, 9/3 heads) B${bb} T${bt}`, { kind: 'lm-train', text: block, batch: bb, seq: bt, head: false }, 5e-3,
    trainFlops(block, 1, bb, bt, false), bb * bt);
  const smolLayers = quick ? 2 : 30;
  const smol: TextSpec = { ...SMOLLM2_135M, num_hidden_layers: smolLayers };
  const [sb, st] = quick ? [1, 64] : [8, 256];
  add('train', 'train-smollm2', `train step: SmolLM2-135M shape${quick ? ' (2 of 30 layers)' : ''} B${sb} T${st}, LM head + CE`, { kind: 'lm-train', text: smol, batch: sb, seq: st, head: true }, 5e-3,
    trainFlops(smol, smolLayers, sb, st, true), sb * st);

  const decodeModel = quick ? TINY_TEXT : SMOLLM2_135M;
  const newTokens = quick ? 16 : 8;
  for (const batch of [1, 8, 64])
    add('decode', `decode-b${batch}`, `decode ${quick ? 'tiny-vlm text' : 'SmolLM2-135M shape'} B${batch}, ${newTokens} tokens, KV cache`,
      { kind: 'decode', text: decodeModel, batch, prompt: 16, newTokens }, 2e-3, undefined, batch * newTokens);

  const imageTokens = (TINY_VISION.image_size / TINY_VISION.patch_size) ** 2 / TINY_VISION.scale_factor ** 2;
  // The fvqa-mini recipe's SFT batch: 8 warm-start trajectories of about 160 tokens.
  const [sftBatch, sftSeq] = quick ? [4, 96] : [8, 160];
  add('train', 'sft-tiny-vlm', `warm-start SFT step tiny-vlm B${sftBatch} T${sftSeq} (image + text, CE, AdamW)`,
    { kind: 'sft', text: TINY_TEXT, vision: TINY_VISION, batch: sftBatch, seq: sftSeq }, 5e-3, undefined, sftBatch * sftSeq);
  const [rollouts, gNew] = quick ? [4, 8] : [8, 16];
  add('grpo', 'grpo-tiny-vlm', `GRPO step tiny-vlm: ${rollouts} rollouts x ${gNew} tokens + update`,
    { kind: 'grpo', text: TINY_TEXT, vision: TINY_VISION, rollouts, prompt: imageTokens + 8, newTokens: gNew }, 5e-3, undefined, rollouts * gNew);
  return out;
}

/** Normal(0, std²) values from a seeded stream. */
export function randn(n: number, rng: Rng, std = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return a;
}

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Parameter shapes of a Llama text model by Hugging Face name under `prefix` (`model.` or `model.text_model.`). */
export function textShapes(t: TextSpec, prefix: string, embeddings: boolean): [string, number[]][] {
  const hd = t.hidden_size / t.num_attention_heads, d = t.hidden_size;
  const out: [string, number[]][] = embeddings ? [[`${prefix}embed_tokens.weight`, [t.vocab_size, d]]] : [];
  for (let l = 0; l < t.num_hidden_layers; l++) {
    const p = `${prefix}layers.${l}.`;
    out.push(
      [p + 'input_layernorm.weight', [d]],
      [p + 'self_attn.q_proj.weight', [t.num_attention_heads * hd, d]],
      [p + 'self_attn.k_proj.weight', [t.num_key_value_heads * hd, d]],
      [p + 'self_attn.v_proj.weight', [t.num_key_value_heads * hd, d]],
      [p + 'self_attn.o_proj.weight', [d, t.num_attention_heads * hd]],
      [p + 'post_attention_layernorm.weight', [d]],
      [p + 'mlp.gate_proj.weight', [t.intermediate_size, d]],
      [p + 'mlp.up_proj.weight', [t.intermediate_size, d]],
      [p + 'mlp.down_proj.weight', [d, t.intermediate_size]],
    );
  }
  if (embeddings) out.push([`${prefix}norm.weight`, [d]]);
  return out;
}

/** Parameter shapes of tiny-vlm's vision tower and connector (Idefics3 names). */
export function visionShapes(v: VisionSpec, textHidden: number): [string, number[]][] {
  const d = v.hidden_size, p = 'model.vision_model.';
  const out: [string, number[]][] = [
    [p + 'embeddings.patch_embedding.weight', [d, 3, v.patch_size, v.patch_size]],
    [p + 'embeddings.patch_embedding.bias', [d]],
    [p + 'embeddings.position_embedding.weight', [(v.image_size / v.patch_size) ** 2, d]],
  ];
  for (let l = 0; l < v.num_hidden_layers; l++) {
    const q = `${p}encoder.layers.${l}.`;
    out.push([q + 'layer_norm1.weight', [d]], [q + 'layer_norm1.bias', [d]]);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) out.push([`${q}self_attn.${proj}.weight`, [d, d]], [`${q}self_attn.${proj}.bias`, [d]]);
    out.push([q + 'layer_norm2.weight', [d]], [q + 'layer_norm2.bias', [d]]);
    out.push([q + 'mlp.fc1.weight', [v.intermediate_size, d]], [q + 'mlp.fc1.bias', [v.intermediate_size]]);
    out.push([q + 'mlp.fc2.weight', [d, v.intermediate_size]], [q + 'mlp.fc2.bias', [d]]);
  }
  out.push([p + 'post_layernorm.weight', [d]], [p + 'post_layernorm.bias', [d]]);
  out.push(['model.connector.modality_projection.proj.weight', [textHidden, d * v.scale_factor ** 2]]);
  return out;
}

/** Weights as Hugging Face initialises them: N(0, 0.02²) matrices, ones for norm weights, zeros for biases. */
export function initWeights(shapes: [string, number[]][], seed: number): Map<string, HostTensor> {
  const rng = new Rng(seed);
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of shapes) {
    const n = prod(shape);
    let data: Float32Array;
    if (/norm[12]?\.weight$|layernorm\.weight$/.test(name)) data = new Float32Array(n).fill(1);
    else if (name.endsWith('.bias')) data = new Float32Array(n);
    else data = randn(n, rng, 0.02);
    out.set(name, { shape, data });
  }
  return out;
}

/** The RoPE cos/sin table [maxPos, D/2, 2] of the engine's ropeTable (float64 on the host, then f32). */
export function ropeTable(theta: number, headDim: number, maxPositions: number): Float32Array {
  const half = headDim / 2;
  const a = new Float32Array(maxPositions * half * 2);
  for (let p = 0; p < maxPositions; p++)
    for (let i = 0; i < half; i++) {
      const ang = p * theta ** ((-2 * i) / headDim);
      a[(p * half + i) * 2] = Math.cos(ang);
      a[(p * half + i) * 2 + 1] = Math.sin(ang);
    }
  return a;
}

/**
 * cos and sin rows of `positions` from a {@link ropeTable}: two f32 arrays [positions.length, D/2],
 * row-major (the peers reshape them to [rows, T, 1, D/2]).
 */
export function ropeRows(table: Float32Array, headDim: number, positions: Int32Array): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(positions.length * half), sin = new Float32Array(positions.length * half);
  positions.forEach((p, i) => {
    for (let j = 0; j < half; j++) {
      cos[i * half + j] = table[(p * half + j) * 2];
      sin[i * half + j] = table[(p * half + j) * 2 + 1];
    }
  });
  return { cos, sin };
}

/** Host inputs of a workload, by name (shapes are implied by the spec). */
export type HostData = {
  tensors: Record<string, Float32Array>;
  ints: Record<string, Int32Array>;
  weights: Map<string, HostTensor>;
};

const cache = new Map<string, HostData>();

/**
 * The workload's inputs, generated once per page from seed 1 (every engine uploads these):
 * - matmul: a [m, k], b [n, k]; attention: q, k, v, and r (the upstream gradient, shaped as q);
 * - linear-train: x [m, k], w [k, n]; lm-train: weights, and x [B, T, D] (block) or ids [B, T+1] (head);
 * - sft: weights, pixels [B, 3, S, S], ids [B, T+1] (image tokens first);
 * - decode: weights, prompt ids [B, prompt]; grpo: weights, pixels [1, 3, S, S], prompt ids [prompt]
 *   (image tokens first), completion ids [rollouts, newTokens] for the check, advantages [rollouts].
 */
export function hostData(w: Workload): HostData {
  const hit = cache.get(w.id);
  if (hit) return hit;
  const rng = new Rng(1);
  const s = w.spec;
  const d: HostData = { tensors: {}, ints: {}, weights: new Map() };
  const ids = (n: number, vocab: number) => Int32Array.from({ length: n }, () => 5 + rng.int(Math.min(vocab, 1000) - 5));
  if (s.kind === 'matmul') {
    d.tensors.a = randn(s.m * s.k, rng);
    d.tensors.b = randn(s.n * s.k, rng);
  } else if (s.kind === 'attention') {
    for (const [name, h] of [['q', s.hq], ['k', s.hkv], ['v', s.hkv], ['r', s.hq]] as const) d.tensors[name] = randn(s.b * s.t * h * s.d, rng);
  } else if (s.kind === 'linear-train') {
    d.tensors.x = randn(s.m * s.k, rng);
    d.tensors.w = randn(s.k * s.n, rng, 0.05);
  } else if (s.kind === 'lm-train') {
    d.weights = initWeights(textShapes(s.text, 'model.', s.head), 2);
    if (s.head) d.ints.ids = ids(s.batch * (s.seq + 1), s.text.vocab_size);
    else d.tensors.x = randn(s.batch * s.seq * s.text.hidden_size, rng);
  } else if (s.kind === 'decode') {
    d.weights = initWeights(textShapes(s.text, 'model.', true), 2);
    d.ints.prompt = ids(s.batch * s.prompt, s.text.vocab_size);
  } else if (s.kind === 'sft') {
    d.weights = initWeights([...visionShapes(s.vision, s.text.hidden_size), ...textShapes(s.text, 'model.text_model.', true)], 2);
    d.tensors.pixels = Float32Array.from({ length: s.batch * 3 * s.vision.image_size ** 2 }, () => rng.next() * 2 - 1);
    const imageTokens = (s.vision.image_size / s.vision.patch_size) ** 2 / s.vision.scale_factor ** 2;
    d.ints.ids = ids(s.batch * (s.seq + 1), s.text.vocab_size);
    for (let r = 0; r < s.batch; r++) d.ints.ids.fill(s.vision.image_token_id, r * (s.seq + 1), r * (s.seq + 1) + imageTokens);
  } else {
    d.weights = initWeights([...visionShapes(s.vision, s.text.hidden_size), ...textShapes(s.text, 'model.text_model.', true)], 2);
    d.tensors.pixels = Float32Array.from({ length: 3 * s.vision.image_size ** 2 }, () => rng.next() * 2 - 1);
    const imageTokens = (s.vision.image_size / s.vision.patch_size) ** 2 / s.vision.scale_factor ** 2;
    const prompt = ids(s.prompt, s.text.vocab_size);
    prompt.fill(s.vision.image_token_id, 0, imageTokens);
    d.ints.prompt = prompt;
    d.ints.completions = ids(s.rollouts * s.newTokens, s.text.vocab_size);
    d.tensors.advantages = Float32Array.from({ length: s.rollouts }, (_, i) => (i % 2 ? 1 : -1) * (0.5 + i / s.rollouts));
  }
  cache.set(w.id, d);
  return d;
}

/** Frees a workload's host data (large models hold hundreds of MB). */
export function dropHostData(w: Workload): void {
  cache.delete(w.id);
}
