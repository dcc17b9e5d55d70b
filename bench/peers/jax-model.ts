/**
 * tiny-vlm in jax-js for the jax-js engine (./jax.ts): the array helpers, the Llama decoder layer with
 * RoPE and an optional KV cache, the SigLIP vision tower with the pixel-shuffle connector, the target
 * log-probabilities, AdamW and a row's optimizer state, and batched decoding with a fixed-size KV cache.
 * Written as jax-js's documentation teaches: numpy ops with reference-counted arrays (`.ref` keeps an
 * array for a later use); parameters are pytrees keyed by Hugging Face names.
 */
import * as jax from '@jax-js/jax';
import type { TextSpec, VisionSpec } from '../harness.js';
import { ADAMW, LR } from '../ours.js';
import { ropeRows, ropeTable, type HostData } from '../workloads.js';

const { numpy: np, nn } = jax;

/**
 * jax-js's einsum (and so `nn.dotProductAttention`) maps and filters the iterator of
 * `String.prototype.matchAll` with ES2025 iterator helpers, which Node 20 lacks (Node 22 and
 * Chromium have them). Where they are missing (the Node runtime), `map` and `filter` are added to the
 * iterator prototype, as the standard defines them for these uses; elsewhere this does nothing.
 */
function iteratorHelpersForNode20(): void {
  const proto = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())) as Record<string, unknown>;
  type Fn = (x: unknown, i: number) => unknown;
  const define = (name: string, value: (this: Iterator<unknown>, fn: Fn) => Generator) =>
    typeof proto[name] === 'function' || Object.defineProperty(proto, name, { value, writable: true, configurable: true });
  define('map', function* (fn) {
    let i = 0;
    for (let r = this.next(); !r.done; r = this.next()) yield fn(r.value, i++);
  });
  define('filter', function* (fn) {
    let i = 0;
    for (let r = this.next(); !r.done; r = this.next()) if (fn(r.value, i++)) yield r.value;
  });
}
iteratorHelpersForNode20();
export type A = jax.Array;
export type Tree = Record<string, A>;

const { beta1: B1, beta2: B2, eps: EPS, weightDecay: WD } = ADAMW;

export const f32 = (data: Float32Array, shape: number[]) => np.array(data as Float32Array<ArrayBuffer>).reshape(shape);
export const i32 = (data: Int32Array, shape: number[]) => np.array(data as Int32Array<ArrayBuffer>, { dtype: np.int32 }).reshape(shape);
const scalar = (v: number) => np.array(new Float32Array([v])).reshape([]);
export const host = async (x: A) => Float32Array.from((await x.data()) as Float32Array);

/** x·Wᵀ over the last axis (nn.Linear); consumes both. */
export const lin = (x: A, w: A) => np.matmul(x, w.transpose());
const rmsNorm = (x: A, w: A, eps: number) => x.ref.mul(np.reciprocal(np.sqrt(np.mean(np.square(x), -1, { keepdims: true }).add(eps)))).mul(w);
function layerNorm(x: A, w: A, b: A, eps: number): A {
  const xc = x.ref.sub(np.mean(x, -1, { keepdims: true }));
  return xc.ref.mul(np.reciprocal(np.sqrt(np.mean(np.square(xc.ref), -1, { keepdims: true }).add(eps)))).mul(w).add(b);
}
/** HF rotate_half RoPE: x [B, T, H, D], cos/sin [B or 1, T, 1, D/2]. */
function rope(x: A, cos: A, sin: A): A {
  const d = x.shape[3], half = d / 2;
  const x1 = x.ref.slice([], [], [], [0, half]), x2 = x.slice([], [], [], [half, d]);
  return np.concatenate([x1.ref.mul(cos.ref).sub(x2.ref.mul(sin.ref)), x2.mul(cos).add(x1.mul(sin))], -1);
}

/** cos and sin [rows, T, 1, D/2] of positions [rows·T] from the host table. */
export function ropeInputs(table: Float32Array, headDim: number, positions: Int32Array, rows: number): [A, A] {
  const half = headDim / 2, t = positions.length / rows;
  const { cos, sin } = ropeRows(table, headDim, positions);
  return [f32(cos, [rows, t, 1, half]), f32(sin, [rows, t, 1, half])];
}

/** Per-layer K and V caches (a type alias: jax-js pytrees need one). */
export type Cache = { k: A[]; v: A[] };

/**
 * One Llama decoder layer. Without `cache`: causal attention over the block. With it: the block's
 * K/V are written at `slots` (bool [S]) of the layer's cache and attention runs over the slots
 * `visible` (bool [T, S]); the new cache is pushed to `out`.
 */
export function decoderLayer(P: Tree, p: string, t: TextSpec, h: A, cos: A, sin: A, kv?: { cache: Cache; l: number; slots: A; visible: A; out: Cache }): A {
  const [b, n] = h.shape;
  const H = t.num_attention_heads, Hkv = t.num_key_value_heads, hd = t.hidden_size / H;
  const w = (name: string) => P[p + name].ref;
  const x = rmsNorm(h.ref, w('input_layernorm.weight'), t.rms_norm_eps);
  const q = rope(lin(x.ref, w('self_attn.q_proj.weight')).reshape([b, n, H, hd]), cos.ref, sin.ref);
  let k = rope(lin(x.ref, w('self_attn.k_proj.weight')).reshape([b, n, Hkv, hd]), cos, sin);
  let v = lin(x, w('self_attn.v_proj.weight')).reshape([b, n, Hkv, hd]);
  let a: A;
  if (kv) {
    const S = kv.cache.k[kv.l].shape[1];
    // A one-token block broadcasts over the slots; a prefill block (always at slot 0) is padded to S.
    const write = (block: A, old: A) => np.where(kv.slots.ref.reshape([1, S, 1, 1]), n === 1 ? block : np.pad(block, [[0, 0], [0, S - n], [0, 0], [0, 0]]), old);
    k = write(k, kv.cache.k[kv.l]);
    v = write(v, kv.cache.v[kv.l]);
    kv.out.k.push(k.ref);
    kv.out.v.push(v.ref);
    a = nn.dotProductAttention(q, k, v, { mask: kv.visible.ref.reshape([1, 1, n, S]) });
  } else a = nn.dotProductAttention(q, k, v, { isCausal: true });
  const h2 = h.add(lin(a.reshape([b, n, H * hd]), w('self_attn.o_proj.weight')));
  const y = rmsNorm(h2.ref, w('post_attention_layernorm.weight'), t.rms_norm_eps);
  return h2.add(lin(nn.silu(lin(y.ref, w('mlp.gate_proj.weight'))).mul(lin(y, w('mlp.up_proj.weight'))), w('mlp.down_proj.weight')));
}

/** Decoder layers and the final norm over embeddings h [B, T, D]. */
export function textModel(P: Tree, prefix: string, t: TextSpec, h: A, cos: A, sin: A, kv?: { cache: Cache; slots: A; visible: A; out: Cache }): A {
  for (let l = 0; l < t.num_hidden_layers; l++) h = decoderLayer(P, `${prefix}layers.${l}.`, t, h, cos.ref, sin.ref, kv && { ...kv, l });
  cos.dispose();
  sin.dispose();
  return rmsNorm(h, P[`${prefix}norm.weight`].ref, t.rms_norm_eps);
}

/** tiny-vlm's SigLIP tower and pixel-shuffle connector: pixels [N, 3, S, S] -> image tokens [N, n, D]. */
export function vision(P: Tree, v: VisionSpec, pixels: A): A {
  const w = (name: string) => P[`model.vision_model.${name}`].ref;
  const N = pixels.shape[0], p = v.patch_size, g = v.image_size / p, d = v.hidden_size, heads = v.num_attention_heads;
  const patches = pixels.reshape([N, 3, g, p, g, p]).transpose([0, 2, 4, 1, 3, 5]).reshape([N, g * g, 3 * p * p]);
  let x = lin(patches, w('embeddings.patch_embedding.weight').reshape([d, 3 * p * p])).add(w('embeddings.patch_embedding.bias')).add(w('embeddings.position_embedding.weight'));
  for (let l = 0; l < v.num_hidden_layers; l++) {
    const q = (name: string) => w(`encoder.layers.${l}.${name}`);
    const y = layerNorm(x.ref, q('layer_norm1.weight'), q('layer_norm1.bias'), v.layer_norm_eps);
    const proj = (name: string) => lin(y.ref, q(`self_attn.${name}.weight`)).add(q(`self_attn.${name}.bias`)).reshape([N, g * g, heads, d / heads]);
    const att = nn.dotProductAttention(proj('q_proj'), proj('k_proj'), proj('v_proj')).reshape([N, g * g, d]);
    y.dispose();
    x = x.add(lin(att, q('self_attn.out_proj.weight')).add(q('self_attn.out_proj.bias')));
    const z = layerNorm(x.ref, q('layer_norm2.weight'), q('layer_norm2.bias'), v.layer_norm_eps);
    x = x.add(lin(nn.gelu(lin(z, q('mlp.fc1.weight')).add(q('mlp.fc1.bias')), { approximate: true }), q('mlp.fc2.weight')).add(q('mlp.fc2.bias')));
  }
  x = layerNorm(x, w('post_layernorm.weight'), w('post_layernorm.bias'), v.layer_norm_eps);
  const s = v.scale_factor;
  const shuffled = x.reshape([N, g, g / s, d * s]).transpose([0, 2, 1, 3]).reshape([N, g / s, g / s, d * s * s]).transpose([0, 2, 1, 3]).reshape([N, (g * g) / (s * s), d * s * s]);
  return lin(shuffled, P['model.connector.modality_projection.proj.weight'].ref);
}

/**
 * Log-probabilities of `targets` [N] under logits [N, V], as a one-hot contraction that jit fuses
 * into one reduction. jax-js 0.1.25 cannot jit takeAlongAxis's gradient here (its scatter), and its
 * nn.oneHot indexes an identity matrix (a [V, V] buffer: 9.6 GB for a 49k vocabulary); the one-hot
 * is a comparison with arange instead.
 */
export function targetLogprobs(logits: A, targets: A): A {
  const v = logits.shape[1];
  const oneHot = np.equal(targets.reshape([-1, 1]), np.arange(v, undefined, undefined, { dtype: np.int32 })).astype(np.float32);
  return np.sum(nn.logSoftmax(logits, -1).mul(oneHot), -1);
}

/** AdamW (decoupled weight decay, bias-corrected) on every leaf; returns the new [params, m, v]. */
export function adamw(P: Tree, G: Tree, M: Tree, V: Tree, bc1: A, bc2: A): [Tree, Tree, Tree] {
  const P2: Tree = {}, M2: Tree = {}, V2: Tree = {};
  for (const n of Object.keys(P)) {
    const g = G[n];
    M2[n] = M[n].mul(B1).add(g.ref.mul(1 - B1));
    V2[n] = V[n].mul(B2).add(np.square(g).mul(1 - B2));
    const upd = M2[n].ref.div(bc1.ref).div(np.sqrt(V2[n].ref.div(bc2.ref)).add(EPS));
    P2[n] = P[n].mul(1 - LR * WD).sub(upd.mul(LR));
  }
  bc1.dispose();
  bc2.dispose();
  return [P2, M2, V2];
}

/** Optimizer state and step counter of a training row. */
export class TrainState {
  M: Tree;
  V: Tree;
  step = 0;
  constructor(public P: Tree) {
    this.M = Object.fromEntries(Object.entries(P).map(([n, p]) => [n, np.zeros(p.shape)]));
    this.V = Object.fromEntries(Object.entries(P).map(([n, p]) => [n, np.zeros(p.shape)]));
  }
  /** Bias corrections of the next step. */
  corrections(): [A, A] {
    this.step++;
    return [scalar(1 - B1 ** this.step), scalar(1 - B2 ** this.step)];
  }
  dispose(): void {
    for (const t of [this.P, this.M, this.V]) jax.tree.dispose(t);
  }
}

/** Every host weight as a jax-js array, by name. */
export function weightsTree(h: HostData): Tree {
  return Object.fromEntries([...h.weights].map(([n, w]) => [n, f32(w.data, w.shape)]));
}

export function disposeCache(c: Cache): void {
  [...c.k, ...c.v].forEach((x) => x.dispose());
}

/**
 * Batched decoding with a fixed-size KV cache [B, S, Hkv, hd] per layer (static shapes, so each of
 * the prefill and the one-token step compiles once): a jitted prefill of embedded prompts, and a
 * jitted step that writes the new K/V at the next slot and attends over the filled slots.
 */
export class Decoder {
  private table: Float32Array;
  private length = 0;
  private prefillJ: ReturnType<typeof jax.jit>;
  private stepJ: ReturnType<typeof jax.jit>;

  constructor(private readonly t: TextSpec, prefix: string, private readonly batch: number, private readonly slots: number) {
    const hd = t.hidden_size / t.num_attention_heads;
    this.table = ropeTable(t.rope_theta, hd, slots);
    const head = (P: Tree, hid: A) => {
      const [b, n] = hid.shape;
      const last = hid.slice([], [n - 1, n], []).reshape([b, t.hidden_size]);
      const logits = lin(last, P[`${prefix}embed_tokens.weight`].ref);
      jax.tree.dispose(P);
      return logits;
    };
    const zeros = (b: number) => ({ k: Array.from({ length: t.num_hidden_layers }, () => np.zeros([b, slots, t.num_key_value_heads, hd])), v: [] as A[] });
    this.prefillJ = jax.jit((P: Tree, emb: A, cos: A, sin: A, slots: A, visible: A) => {
      const empty = zeros(emb.shape[0]);
      empty.v = empty.k.map((x) => x.ref);
      const out: Cache = { k: [], v: [] };
      const hid = textModel(P, prefix, t, emb, cos, sin, { cache: empty, slots, visible, out });
      slots.dispose();
      visible.dispose();
      return [head(P, hid), out] as [A, Cache];
    });
    this.stepJ = jax.jit((P: Tree, cache: Cache, ids: A, cos: A, sin: A, slots: A, visible: A) => {
      const out: Cache = { k: [], v: [] };
      const hid = textModel(P, prefix, t, np.take(P[`${prefix}embed_tokens.weight`].ref, ids, 0), cos, sin, { cache, slots, visible, out });
      slots.dispose();
      visible.dispose();
      return [head(P, hid), out] as [A, Cache];
    });
  }

  /** Slot masks of a block of n tokens written at this.length: slots [S] and visible [n, S] (causal). */
  private masks(n: number): [A, A] {
    const S = this.slots, at = this.length;
    const slots = Array.from({ length: S }, (_, j) => j >= at && j < at + n);
    const visible = Array.from({ length: n }, (_, i) => Array.from({ length: S }, (_, j) => j <= at + i));
    this.length += n;
    return [np.array(slots), np.array(visible)];
  }

  private rope(n: number): [A, A] {
    const hd = this.t.hidden_size / this.t.num_attention_heads;
    const pos = Int32Array.from({ length: this.batch * n }, (_, i) => this.length + (i % n));
    return ropeInputs(this.table, hd, pos, this.batch);
  }

  prefill(P: Tree, emb: A): { logits: A; cache: Cache } {
    this.length = 0;
    const n = emb.shape[1];
    const [cos, sin] = this.rope(n);
    const [logits, cache] = this.prefillJ(jax.tree.ref(P), emb, cos, sin, ...this.masks(n)) as [A, Cache];
    return { logits, cache };
  }

  step(P: Tree, cache: Cache, tokens: Int32Array): { logits: A; cache: Cache } {
    const [cos, sin] = this.rope(1);
    const [logits, next] = this.stepJ(jax.tree.ref(P), cache, i32(tokens, [this.batch, 1]), cos, sin, ...this.masks(1)) as [A, Cache];
    return { logits, cache: next };
  }

  dispose(): void {
    this.prefillJ.dispose();
    this.stepJ.dispose();
  }
}
