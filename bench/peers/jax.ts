/**
 * The workloads in jax-js (`@jax-js/jax`, on its WebGPU device as `jax-js` or its WebAssembly device
 * as `jax-js-wasm`), written as its documentation teaches: numpy
 * ops with reference-counted arrays (`.ref` keeps an array for a later use), `valueAndGrad` for the
 * gradients and `jit` around every step, so that jax-js fuses elementwise work into its kernels and
 * compiles each step once. Optimizers are written out (AdamW, global-norm clipping): jax-js's optax
 * port is not published on npm. Parameters are pytrees keyed by Hugging Face names. The model itself
 * (layers, vision tower, AdamW, the KV-cache decoder) is in ./jax-model.ts.
 */
import * as jax from '@jax-js/jax';
import type { EngineImpl, Prepared, Workload } from '../harness.js';
import { grpoChecked, lmChecked } from '../ours.js';
import { hostData, ropeTable, type HostData } from '../workloads.js';
import {
  adamw, Decoder, decoderLayer, disposeCache, f32, host, i32, lin, ropeInputs, targetLogprobs, textModel, TrainState, vision, weightsTree,
  type A, type Cache, type Tree,
} from './jax-model.js';

const { numpy: np, nn, lax } = jax;

/** jax-js's devices the benchmark uses: WebGPU, and WebAssembly (multithreaded where SharedArrayBuffer and Worker exist). */
export type JaxDevice = 'webgpu' | 'wasm';

/** Threads of jax-js's wasm device: one worker per logical core where it can share memory, else the calling thread. */
const wasmThreads = () =>
  typeof SharedArrayBuffer !== 'undefined' && typeof Worker !== 'undefined' ? Math.max(1, (typeof navigator !== 'undefined' && navigator.hardwareConcurrency) || 4) : 1;

/**
 * jax-js on one of its devices. jax-js's default device is global to the page (one module) and both
 * engines may share a page, so every entry point (prepare and each call of a Prepared) selects this
 * engine's device first: every array an engine creates lands on its own device.
 */
export class JaxEngine implements EngineImpl {
  readonly name: 'jax-js' | 'jax-js-wasm';
  version: string;
  private device?: GPUDevice;

  constructor(private readonly backend: JaxDevice = 'webgpu') {
    this.name = backend === 'wasm' ? 'jax-js-wasm' : 'jax-js';
    this.version = `@jax-js/jax 0.1.25 (${backend}, jit)`;
  }

  async init(): Promise<void> {
    const got = await jax.init(this.backend);
    if (!got.includes(this.backend)) throw new Error(`jax-js found no ${this.backend === 'wasm' ? 'WebAssembly' : 'WebGPU'} device`);
    jax.defaultDevice(this.backend);
    if (this.backend === 'webgpu') this.device = jax.getWebGPUDevice();
    else this.version = `@jax-js/jax 0.1.25 (wasm, jit, ${wasmThreads()} thread${wasmThreads() > 1 ? 's' : ''})`;
  }

  unsupported(w: Workload): string | undefined {
    if (w.spec.kind === 'sft') return 'ours-only row (the lab\'s warm-start SFT step)';
    if (w.spec.kind === 'matmul' && w.spec.dtype === 'f16') {
      if (this.backend === 'wasm') return "jax-js's wasm backend has no float16 ops";
      if (!this.device!.features.has('shader-f16')) return 'adapter has no shader-f16';
    }
    return undefined;
  }

  trim(): void {
    // jax-js keeps its buffer pool (WebGPU) and heap (wasm) private: what earlier rows pooled stays (and may be reused).
  }

  private async sync(...xs: A[]): Promise<void> {
    await jax.blockUntilReady(xs);
    await this.device?.queue.onSubmittedWorkDone();
  }

  async prepare(w: Workload): Promise<Prepared> {
    const use = () => jax.defaultDevice(this.backend);
    use();
    const p = await this.prepareOn(w);
    // Engines never run concurrently (the runner awaits each call), so the device selected at the
    // start of a call stays selected until it resolves.
    return {
      before: p.before && (() => (use(), p.before!())),
      run: () => (use(), p.run()),
      check: () => (use(), p.check()),
      dispose: () => (use(), p.dispose()),
    };
  }

  private async prepareOn(w: Workload): Promise<Prepared> {
    const s = w.spec;
    const h = hostData(w);
    const owned: { dispose(): void }[] = [];
    const own = <T extends { dispose(): void }>(x: T) => (owned.push(x), x);
    const dispose = () => owned.forEach((x) => x.dispose());

    if (s.kind === 'matmul') {
      const dtype = s.dtype === 'f16' ? np.float16 : np.float32;
      const a = own(f32(h.tensors.a, [s.m, s.k]).astype(dtype)), b = own(f32(h.tensors.b, [s.n, s.k]).astype(dtype));
      const mm = own(jax.jit((x: A, y: A) => lin(x, y)));
      const go = () => mm(a.ref, b.ref);
      return {
        run: async () => {
          const c = go();
          await this.sync(c);
          c.dispose();
        },
        check: async () => ({ c: await host(go().astype(np.float32)) }),
        dispose,
      };
    }

    if (s.kind === 'attention') {
      const shape = (heads: number) => [s.b, s.t, heads, s.d];
      const q = own(f32(h.tensors.q, shape(s.hq))), k = own(f32(h.tensors.k, shape(s.hkv))), v = own(f32(h.tensors.v, shape(s.hkv)));
      const r = own(f32(h.tensors.r, shape(s.hq)));
      const attn = (q: A, k: A, v: A) => nn.dotProductAttention(q, k, v, { isCausal: true });
      if (!s.backward) {
        const f = own(jax.jit(attn));
        return {
          run: async () => {
            const o = f(q.ref, k.ref, v.ref);
            await this.sync(o);
            o.dispose();
          },
          check: async () => ({ o: await host(f(q.ref, k.ref, v.ref)) }),
          dispose,
        };
      }
      const g = own(jax.jit(jax.grad((q: A, k: A, v: A, r: A) => np.sum(attn(q, k, v).mul(r)), { argnums: [0, 1, 2] })));
      const go = () => g(q.ref, k.ref, v.ref, r.ref) as unknown as A[];
      return {
        run: async () => {
          const grads = go();
          await this.sync(...grads);
          grads.forEach((x) => x.dispose());
        },
        check: async () => {
          const [dq, dk, dv] = go();
          return { dq: await host(dq), dk: await host(dk), dv: await host(dv) };
        },
        dispose,
      };
    }

    if (s.kind === 'linear-train') {
      const x = own(f32(h.tensors.x, [s.m, s.k]));
      const state = own(new TrainState({ w: f32(h.tensors.w, [s.k, s.n]) }));
      const loss = (P: Tree, x: A) => np.mean(np.square(np.matmul(x, P.w)));
      return this.trainLoop(state, loss, [x], ['w'], dispose);
    }

    if (s.kind === 'lm-train') {
      const t = s.text, T = s.seq, hd = t.hidden_size / t.num_attention_heads;
      const state = own(new TrainState(weightsTree(h)));
      const [cos, sin] = ropeInputs(ropeTable(t.rope_theta, hd, T), hd, Int32Array.from({ length: T }, (_, i) => i), 1);
      own(cos);
      own(sin);
      if (!s.head) {
        const x = own(f32(h.tensors.x, [s.batch, T, t.hidden_size]));
        const loss = (P: Tree, x: A, cos: A, sin: A) => {
          const out = decoderLayer(P, 'model.layers.0.', t, x, cos, sin);
          jax.tree.dispose(P);
          return np.mean(np.square(out));
        };
        return this.trainLoop(state, loss, [x, cos, sin], lmChecked(t), dispose);
      }
      const inputs = new Int32Array(s.batch * T), targets = new Int32Array(s.batch * T);
      for (let b = 0; b < s.batch; b++) {
        inputs.set(h.ints.ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
        targets.set(h.ints.ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
      }
      const ids = own(i32(inputs, [s.batch, T])), tg = own(i32(targets, [s.batch * T]));
      const loss = (P: Tree, h0: A, tg: A, cos: A, sin: A) => {
        const hid = textModel(P, 'model.', t, h0, cos, sin);
        const logp = targetLogprobs(lin(hid.reshape([-1, t.hidden_size]), P['model.embed_tokens.weight'].ref), tg);
        jax.tree.dispose(P);
        return np.mean(logp).neg();
      };
      return this.trainLoop(state, loss, [tg, cos, sin], lmChecked(t), dispose, { name: 'model.embed_tokens.weight', ids });
    }

    if (s.kind === 'decode') {
      const P = weightsTree(h);
      own({ dispose: () => jax.tree.dispose(P) });
      const dec = own(new Decoder(s.text, 'model.', s.batch, s.prompt + s.newTokens));
      const prompt = h.ints.prompt;
      let cache: Cache | undefined;
      let last = new Float32Array();
      const prefill = async () => {
        if (cache) disposeCache(cache);
        const r = dec.prefill(P, np.take(P['model.embed_tokens.weight'].ref, i32(prompt, [s.batch, s.prompt]), 0));
        cache = r.cache;
        return (last = await host(r.logits));
      };
      const step = async (tokens: Int32Array) => {
        const r = dec.step(P, cache!, tokens);
        cache = r.cache;
        return host(r.logits);
      };
      return {
        before: async () => void (await prefill()),
        run: async () => {
          for (let i = 0; i < s.newTokens; i++) last = await step(argmaxRows(last, s.batch));
        },
        check: async () => {
          const first = await prefill();
          return { prefill: first, step: await step(Int32Array.from({ length: s.batch }, (_, r) => prompt[r * s.prompt])) };
        },
        dispose: () => (cache && disposeCache(cache), dispose()),
      };
    }

    return this.grpo(w, h, own, dispose);
  }

  /**
   * A training row: run() is one jitted step (loss, grads, AdamW); check() returns the first step's
   * loss and `checked` gradients (a separately jitted valueAndGrad) and the loss after that step.
   *
   * With `embedding`, the loss takes the embedded tokens h0 = take(E, ids) as its first input, and a
   * step is four jitted calls: the lookup, loss and gradients (params and h0), the lookup's gradient
   * (a scatter-add into E) and AdamW. jax-js 0.1.25 cannot compile the scatter inside the whole step
   * ("routine primitive scatter input is not imm" when its cotangent is a view), but can when the
   * cotangent arrives as an argument.
   */
  private trainLoop(state: TrainState, loss: (P: Tree, ...xs: A[]) => A, inputs: A[], checked: string[], dispose: () => void, embedding?: { name: string; ids: A }): Prepared {
    const fused = jax.jit((P: Tree, M: Tree, V: Tree, bc1: A, bc2: A, ...xs: A[]) => {
      const [l, G] = jax.valueAndGrad(loss)(jax.tree.ref(P), ...xs);
      const [P2, M2, V2] = adamw(P, G as Tree, M, V, bc1, bc2);
      return [P2, M2, V2, l] as [Tree, Tree, Tree, A];
    });
    const lookup = jax.jit((E: A, ids: A) => np.take(E, ids, 0));
    const vgEmb = jax.jit((P: Tree, h0: A, ...xs: A[]) => jax.valueAndGrad(loss, { argnums: [0, 1] })(P, h0, ...xs) as [A, [Tree, A]]);
    const scatter = jax.jit(jax.grad((E: A, ids: A, dh0: A) => np.sum(np.take(E, ids, 0).mul(dh0))));
    const update = jax.jit((P: Tree, G: Tree, M: Tree, V: Tree, bc1: A, bc2: A) => adamw(P, G, M, V, bc1, bc2));
    const ins = () => inputs.map((x) => x.ref);
    /** Loss and gradients of the current params, E's including the lookup's (embedding rows only). */
    const embLossGrads = (emb: { name: string; ids: A }): [A, Tree] => {
      const E = state.P[emb.name];
      const [l, [G, dh0]] = vgEmb(jax.tree.ref(state.P), lookup(E.ref, emb.ids.ref), ...ins());
      G[emb.name] = G[emb.name].add(scatter(E.ref, emb.ids.ref, dh0));
      return [l, G];
    };
    const vg = jax.jit((P: Tree, ...xs: A[]) => jax.valueAndGrad(loss)(P, ...xs) as [A, Tree]);
    const advance = () => {
      if (!embedding) {
        const [P2, M2, V2, l] = fused(state.P, state.M, state.V, ...state.corrections(), ...ins());
        Object.assign(state, { P: P2, M: M2, V: V2 });
        return l;
      }
      const [l, G] = embLossGrads(embedding);
      const [P2, M2, V2] = update(state.P, G, state.M, state.V, ...state.corrections());
      Object.assign(state, { P: P2, M: M2, V: V2 });
      return l;
    };
    const lossNow = jax.jit((P: Tree, ...xs: A[]) => loss(P, ...xs));
    return {
      run: async () => {
        const l = advance();
        await this.sync(l, ...Object.values(state.P));
        l.dispose();
      },
      check: async () => {
        const [l1, G] = embedding ? embLossGrads(embedding) : vg(jax.tree.ref(state.P), ...ins());
        const out: Record<string, Float32Array> = { loss1: await host(l1) };
        for (const n of checked) out[n] = await host(G[n].ref);
        jax.tree.dispose(G);
        advance().dispose();
        const first = embedding ? [lookup(state.P[embedding.name].ref, embedding.ids.ref)] : [];
        out.loss2 = await host(lossNow(jax.tree.ref(state.P), ...first, ...ins()));
        return out;
      },
      dispose: () => ([fused, lookup, vgEmb, scatter, update, vg, lossNow].forEach((f) => f.dispose()), dispose()),
    };
  }

  /** tiny-vlm GRPO step: rollouts with the KV cache, then one jitted update (loss, grads, clip, AdamW). */
  private grpo(w: Workload, h: HostData, own: <T extends { dispose(): void }>(x: T) => T, dispose: () => void): Prepared {
    const s = w.spec as Extract<Workload['spec'], { kind: 'grpo' }>;
    const t = s.text, G = s.rollouts, P0 = s.prompt, L = P0 + s.newTokens, hd = t.hidden_size / t.num_attention_heads;
    const nImg = (s.vision.image_size / s.vision.patch_size) ** 2 / s.vision.scale_factor ** 2;
    const state = own(new TrainState(weightsTree(h)));
    const dec = own(new Decoder(t, 'model.text_model.', G, L));
    const size = s.vision.image_size;
    const pixels = own(f32(Float32Array.from({ length: G * h.tensors.pixels.length }, (_, i) => h.tensors.pixels[i % h.tensors.pixels.length]), [G, 3, size, size]));
    const textIds = h.ints.prompt.subarray(nImg);
    const embed = jax.jit((P: Tree, pixels: A, ids: A) => {
      const out = np.concatenate([vision(P, s.vision, pixels), np.take(P['model.text_model.embed_tokens.weight'].ref, ids, 0)], 1);
      jax.tree.dispose(P);
      return out;
    });
    own(embed);
    const rollout = async () => {
      const ids = i32(Int32Array.from({ length: G * textIds.length }, (_, i) => textIds[i % textIds.length]), [G, textIds.length]);
      let r = dec.prefill(state.P, embed(jax.tree.ref(state.P), pixels.ref, ids));
      const first = await host(r.logits);
      let logits = first;
      const tokens: Int32Array[] = [];
      // As DecodeSession.generate: every sampled token is appended, the last one included.
      for (let i = 0; i < s.newTokens; i++) {
        const next = argmaxRows(logits, G);
        tokens.push(next);
        r = dec.step(state.P, r.cache, next);
        logits = await host(r.logits);
      }
      disposeCache(r.cache);
      return { first, completions: Int32Array.from({ length: G * s.newTokens }, (_, k) => tokens[k % s.newTokens][Math.floor(k / s.newTokens)]) };
    };
    const [cos, sin] = ropeInputs(ropeTable(t.rope_theta, hd, L), hd, Int32Array.from({ length: L }, (_, i) => i), 1);
    own(cos);
    own(sin);
    const mask = new Float32Array(G * L);
    for (let r = 0; r < G; r++) for (let i = P0 - 1; i < L - 1; i++) mask[r * L + i] = 1;
    const maskA = own(f32(mask, [G, L])), adv = own(f32(h.tensors.advantages, [G, 1]));
    const E = 'model.text_model.embed_tokens.weight';
    // The text tokens' embeddings h0 enter as an argument (see trainLoop: jax-js cannot jit the lookup's scatter here).
    const loss = (P: Tree, h0: A, pixels: A, targets: A, mask: A, adv: A, cos: A, sin: A) => {
      const hid = textModel(P, 'model.text_model.', t, np.concatenate([vision(P, s.vision, pixels), h0], 1), cos, sin);
      const logp = targetLogprobs(lin(hid.reshape([-1, t.hidden_size]), P[E].ref), targets).reshape([G, L]);
      jax.tree.dispose(P);
      // TRL's clipped ratio with old = current (on-policy), "grpo" aggregation.
      const ratio = np.exp(logp.ref.sub(lax.stopGradient(logp)));
      const clipped = np.clip(ratio.ref, 0.8, 1.2);
      const perToken = np.maximum(ratio.mul(adv.ref).neg(), clipped.mul(adv).neg());
      return np.mean(np.sum(perToken.mul(mask.ref), 1).div(np.maximum(np.sum(mask, 1), 1)));
    };
    const lookup = own(jax.jit((E: A, ids: A) => np.take(E, ids, 0)));
    const vg = own(jax.jit((P: Tree, h0: A, ...xs: A[]) => jax.valueAndGrad(loss, { argnums: [0, 1] })(P, h0, ...(xs as [A, A, A, A, A, A])) as [A, [Tree, A]]));
    const scatter = own(jax.jit(jax.grad((E: A, ids: A, dh0: A) => np.sum(np.take(E, ids, 0).mul(dh0)))));
    /** Loss and gradients (E's includes the lookup's) on the rollouts' completions. */
    const lossGrads = (completions: Int32Array): [A, Tree] => {
      const ids = new Int32Array(G * (L - nImg)), targets = new Int32Array(G * L);
      for (let r = 0; r < G; r++) {
        const seq = [...h.ints.prompt, ...completions.subarray(r * s.newTokens, (r + 1) * s.newTokens)];
        ids.set(seq.slice(nImg), r * (L - nImg));
        for (let i = 0; i + 1 < L; i++) targets[r * L + i] = seq[i + 1];
      }
      const idA = i32(ids, [G, L - nImg]);
      const [l, [grads, dh0]] = vg(jax.tree.ref(state.P), lookup(state.P[E].ref, idA.ref), pixels.ref, i32(targets, [G * L]), maskA.ref, adv.ref, cos.ref, sin.ref);
      grads[E] = grads[E].add(scatter(state.P[E].ref, idA, dh0));
      return [l, grads];
    };
    const update = own(
      jax.jit((P: Tree, grads: Tree, M: Tree, V: Tree, bc1: A, bc2: A) => {
        const norm = np.sqrt(Object.values(grads).reduce((acc: A | null, g) => (acc ? acc.add(np.sum(np.square(g.ref))) : np.sum(np.square(g.ref))), null)!);
        const coef = np.minimum(np.reciprocal(norm.ref.add(1e-6)), 1);
        const clipped = Object.fromEntries(Object.entries(grads).map(([n, g]) => [n, g.mul(coef.ref)]));
        coef.dispose();
        const [P2, M2, V2] = adamw(P, clipped, M, V, bc1, bc2);
        return [P2, M2, V2, norm] as [Tree, Tree, Tree, A];
      }),
    );
    const step = async (grads: Tree) => {
      const [P2, M2, V2, norm] = update(state.P, grads, state.M, state.V, ...state.corrections());
      Object.assign(state, { P: P2, M: M2, V: V2 });
      await host(norm);
    };
    return {
      run: async () => {
        const [l, grads] = lossGrads((await rollout()).completions);
        l.dispose();
        await step(grads);
      },
      check: async () => {
        const { first } = await rollout();
        const [l, grads] = lossGrads(h.ints.completions);
        const out: Record<string, Float32Array> = { prefill: first, loss: await host(l) };
        for (const n of grpoChecked(t)) out[n] = await host(grads[n].ref);
        await step(grads);
        return out;
      },
      dispose,
    };
  }
}

/** Row-wise argmax of host logits [rows·V]. */
export function argmaxRows(logits: Float32Array, rows: number): Int32Array {
  const v = logits.length / rows;
  return Int32Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let i = 1; i < v; i++) if (logits[r * v + i] > logits[r * v + best]) best = i;
    return best;
  });
}
