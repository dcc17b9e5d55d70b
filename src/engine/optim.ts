/**
 * Optimizers and global grad-norm clipping (the learning-rate schedules are the training layer's:
 * src/rl/schedule.ts).
 * Every update runs on the device: clipping computes the norm and the clip coefficient in GPU
 * buffers that the optimizer kernels read, so a step needs no readback.
 */
import type { Storage } from './backend.js';
import { Tensor } from './tensor.js';

/** A parameter group: its own weight decay (e.g. 0 for norms and biases, as is common practice). */
export interface ParamGroup {
  params: Tensor[];
  weightDecay?: number;
}

function groupsOf(params: Tensor[] | ParamGroup[]): ParamGroup[] {
  return params.length && params[0] instanceof Tensor ? [{ params: params as Tensor[] }] : (params as ParamGroup[]);
}

function checkParams(groups: ParamGroup[], who: string): void {
  for (const g of groups)
    for (const p of g.params) {
      if (!p.requiresGrad) throw new Error(`${who}: ${p.describe()} does not require grad (not a parameter)`);
      if (p.dtype !== 'f32') throw new Error(`${who}: ${p.describe()} must be f32 (optimizer updates are computed in f32)`);
    }
}

/**
 * Global L2 norm of all gradients and the clip coefficient min(1, maxNorm / (norm + 1e-6)), as
 * torch.nn.utils.clip_grad_norm_ (and TRL/veRL's max_grad_norm, default 1.0). Returns a [2] tensor
 * (norm, coef) on the device; pass it to an optimizer's step() to scale the gradients there.
 * Parameters without a gradient are skipped. Read `(await t.data())[0]` to log grad_norm.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  const withGrad = params.filter((p) => p.grad);
  if (!withGrad.length) throw new Error('clipGradNorm: no parameter has a gradient (call backward() first)');
  const be = withGrad[0].backend;
  const partial = be.fill(withGrad.length, 0, 'f32');
  withGrad.forEach((p, i) => be.sumSquares(p.grad!.storage, partial, i));
  const out = be.alloc(2, 'f32');
  be.clipCoef(partial, withGrad.length, maxNorm, out);
  be.free(partial);
  return new Tensor(out, [2], 'grad_norm');
}

export interface AdamWOptions {
  lr: number;
  /** Default [0.9, 0.999] (torch). */
  betas?: [number, number];
  /** Default 1e-8 (torch). */
  eps?: number;
  /** Decoupled weight decay, default 0.01 (torch AdamW and veRL). */
  weightDecay?: number;
}

/** Serializable optimizer state for checkpoints: step count and per-parameter moment tensors. */
export interface OptimizerState {
  step: number;
  /** Per parameter (same order as given), its state tensors (host copies; Float64Array on the CPU backend). */
  slots: (Float32Array | Float64Array)[][];
}

/**
 * AdamW (Loshchilov & Hutter 2019), matching torch.optim.AdamW: p ← p·(1 - lr·wd) - lr·m̂/(√v̂ + eps)
 * with bias-corrected moments. Moments are f32 tensors the size of each parameter, kept outside scopes.
 */
export class AdamW {
  readonly groups: ParamGroup[];
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  stepCount = 0;
  private m = new Map<Tensor, Storage>();
  private v = new Map<Tensor, Storage>();

  constructor(params: Tensor[] | ParamGroup[], opts: AdamWOptions) {
    this.groups = groupsOf(params);
    checkParams(this.groups, 'AdamW');
    this.lr = opts.lr;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
  }

  private moments(p: Tensor): [Storage, Storage] {
    let m = this.m.get(p), v = this.v.get(p);
    if (!m || !v) {
      m = p.backend.fill(p.size, 0, 'f32');
      v = p.backend.fill(p.size, 0, 'f32');
      this.m.set(p, m);
      this.v.set(p, v);
    }
    return [m, v];
  }

  /**
   * One update of every parameter that has a gradient.
   * @param clip the [2] tensor from clipGradNorm (gradients are scaled by its coefficient), optional
   * @param lr overrides the learning rate for this step (from a schedule)
   */
  step(clip?: Tensor, lr?: number): void {
    if (lr !== undefined) this.lr = lr;
    this.stepCount++;
    for (const g of this.groups) {
      const wd = g.weightDecay ?? this.weightDecay;
      for (const p of g.params) {
        if (!p.grad) continue;
        const [m, v] = this.moments(p);
        p.backend.adamw(p.storage, p.grad.storage, m, v, { lr: this.lr, beta1: this.betas[0], beta2: this.betas[1], eps: this.eps, weightDecay: wd, step: this.stepCount }, clip?.storage);
      }
    }
  }

  private params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** Host copy of the state (for checkpoints). */
  async state(): Promise<OptimizerState> {
    const slots: Float32Array[][] = [];
    for (const p of this.params()) {
      const m = this.m.get(p), v = this.v.get(p);
      slots.push(m && v ? [(await p.backend.read(m, true)) as Float32Array, (await p.backend.read(v, true)) as Float32Array] : []);
    }
    return { step: this.stepCount, slots };
  }

  /** Restores state saved by state(). @throws naming the parameter whose state does not fit. */
  loadState(s: OptimizerState): void {
    const ps = this.params();
    if (s.slots.length !== ps.length) throw new Error(`AdamW.loadState: state has ${s.slots.length} parameters, optimizer has ${ps.length}`);
    this.dispose();
    this.stepCount = s.step;
    ps.forEach((p, i) => {
      const slot = s.slots[i];
      if (!slot.length) return;
      if (slot.length !== 2 || slot[0].length !== p.size || slot[1].length !== p.size) throw new Error(`AdamW.loadState: state of ${p.describe()} has the wrong size`);
      this.m.set(p, p.backend.upload(slot[0], 'f32'));
      this.v.set(p, p.backend.upload(slot[1], 'f32'));
    });
  }

  /** Frees the moment buffers. */
  dispose(): void {
    for (const [p, s] of [...this.m, ...this.v]) p.backend.free(s);
    this.m.clear();
    this.v.clear();
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

/** SGD with optional momentum and L2 weight decay, as torch.optim.SGD (dampening 0, no Nesterov). */
export class SGD {
  readonly groups: ParamGroup[];
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  private buf = new Map<Tensor, Storage>();

  constructor(params: Tensor[] | ParamGroup[], opts: SGDOptions) {
    this.groups = groupsOf(params);
    checkParams(this.groups, 'SGD');
    this.lr = opts.lr;
    this.momentum = opts.momentum ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
  }

  step(clip?: Tensor, lr?: number): void {
    if (lr !== undefined) this.lr = lr;
    for (const g of this.groups)
      for (const p of g.params) {
        if (!p.grad) continue;
        let b = this.buf.get(p);
        if (this.momentum && !b) this.buf.set(p, (b = p.backend.fill(p.size, 0, 'f32')));
        p.backend.sgd(p.storage, p.grad.storage, b, this.lr, this.momentum, g.weightDecay ?? this.weightDecay, clip?.storage);
      }
  }

  dispose(): void {
    for (const [p, s] of this.buf) p.backend.free(s);
    this.buf.clear();
  }
}
