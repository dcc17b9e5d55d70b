/**
 * Tensors, reverse-mode autograd on a tape, and memory scopes.
 *
 * A Tensor is a contiguous row-major buffer on one backend plus a shape. Views that need no data
 * movement (reshape) share the storage; everything else (permute, slice, broadcast) copies with a
 * strided-copy kernel. An op that records for autograd attaches a `Node` holding the inputs and a
 * backward function; `backward()` walks the nodes in reverse topological order and accumulates
 * `.grad` on leaves that require it (gradients accumulate across calls, as in PyTorch, so
 * micro-batches add up until `zeroGrad`).
 *
 * Memory: every tensor created inside `scope(fn)` is disposed when fn returns, except what fn
 * returns and what was `keep()`-ed (parameters, optimizer state, gradients). A training loop that
 * wraps each step in a scope holds live bytes constant.
 */
import type { Backend, Storage } from './backend.js';
import { contiguousStrides, numel, type DType } from './dtype.js';

/** A recorded op: inputs, and how to map output gradients to input gradients. */
export interface Node {
  readonly name: string;
  readonly inputs: readonly Tensor[];
  /** Gradients for each output (null when an output got none) -> gradient for each input (null = none). */
  readonly backward: (grads: (Tensor | null)[]) => (Tensor | null)[];
  readonly outputs: Tensor[];
}

let nextId = 1;
let gradEnabled = true;
const scopes: Set<Tensor>[] = [];

/**
 * An n-dimensional array on one backend: a contiguous row-major {@link Storage} (dtype f32, f16, i32
 * or u32; f16 is storage only and widens to f32 when read) and a shape (`[]` is a scalar). Create one
 * with the functions of ops/creation.ts (fromArray, zeros, randn, ...) and transform it with the ops
 * (every float op records for autograd when an input requires a gradient).
 *
 * Lifetime: a tensor made inside `scope(fn)` is freed when fn returns unless fn returns it or it was
 * `keep()`-ed; `dispose()` frees it at once. Using a freed tensor throws an error naming it
 * (`describe()`: name, shape, dtype). Reading (`data()`, `item()`) waits for the backend's queued work.
 *
 * Source: the semantics of torch.Tensor where the lab needs them (shape, requires_grad, .grad that
 * accumulates across backward calls, backward()); storage and tape are this engine's.
 */
export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly storage: Storage;
  /** Set on leaves that collect gradients (parameters) and on op outputs that depend on them. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf, same shape as this tensor (kept outside scopes). */
  grad: Tensor | null = null;
  node: Node | null = null;
  /** Which output of `node` this tensor is. */
  outputIndex = 0;
  /** Optional name for error messages and debugging (module path of a parameter). */
  name?: string;
  private disposed = false;

  /** Wraps a storage; prefer the creation functions in ops/creation.ts. @throws on size mismatch. */
  constructor(storage: Storage, shape: readonly number[], name?: string) {
    const n = numel(shape);
    if (n !== storage.size) throw new Error(`tensor ${name ?? ''} shape [${shape.join(', ')}] has ${n} elements but its storage has ${storage.size}`);
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = storage.dtype;
    this.name = name;
    scopes[scopes.length - 1]?.add(this);
  }

  get backend(): Backend {
    return this.storage.backend;
  }
  get size(): number {
    return this.storage.size;
  }
  get rank(): number {
    return this.shape.length;
  }
  get strides(): number[] {
    return contiguousStrides(this.shape);
  }
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Short description for errors: `name [2, 3] f32`. */
  describe(): string {
    return `${this.name ?? `tensor#${this.id}`} [${this.shape.join(', ')}] ${this.dtype}`;
  }

  /** Throws a clear error when a disposed tensor is used (e.g. a backward after its scope ended). */
  assertAlive(): void {
    if (this.disposed) throw new Error(`${this.describe()} was disposed (used after its scope ended or after dispose())`);
  }

  /** Reads the values back (waits for queued GPU work). f16 widens to Float32Array. */
  async data(): Promise<Float32Array | Int32Array | Uint32Array> {
    this.assertAlive();
    return this.backend.read(this.storage) as Promise<Float32Array | Int32Array | Uint32Array>;
  }

  /** Reads a one-element tensor as a number. @throws when the tensor has more than one element. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got ${this.describe()}`);
    return (await this.data())[0];
  }

  /** A view with another shape over the same storage (no copy). @throws when element counts differ. */
  reshape(shape: readonly number[]): Tensor {
    this.assertAlive();
    const resolved = resolveShape(shape, this.size, this);
    this.storage.refs++;
    const out = new Tensor(this.storage, resolved, this.name);
    if (this.requiresGrad && gradEnabled) {
      const src = this;
      record('reshape', [src], [out], ([g]) => [g ? g.reshape(src.shape) : null]);
    }
    return out;
  }

  /** Removes this tensor from the enclosing scope so it outlives it; returns itself. */
  keep(): this {
    for (const s of scopes) s.delete(this);
    return this;
  }

  /** Frees the storage reference now (idempotent). Gradients of a leaf are disposed with it. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.node = null;
    if (--this.storage.refs === 0) this.backend.free(this.storage);
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /**
   * Reverse-mode autodiff from this tensor. `grad` defaults to ones for a one-element tensor.
   * Gradients accumulate into `.grad` of every leaf with requiresGrad (kept beyond scopes).
   * @throws when called on a tensor that does not require grad or a non-scalar without `grad`.
   */
  backward(grad?: Tensor): void {
    backward([this], grad ? [grad] : undefined);
  }
}

function resolveShape(shape: readonly number[], size: number, t: Tensor): number[] {
  const out = [...shape];
  const inferred = out.indexOf(-1);
  if (inferred >= 0) {
    const rest = numel(out.filter((_, i) => i !== inferred));
    if (rest === 0 || size % rest !== 0) throw new Error(`cannot reshape ${t.describe()} to [${shape.join(', ')}]`);
    out[inferred] = size / rest;
  }
  if (numel(out) !== size) throw new Error(`cannot reshape ${t.describe()} (${size} elements) to [${shape.join(', ')}]`);
  return out;
}

/** True while ops record for autograd (false inside `noGrad`). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording autograd nodes (inference, optimizer updates, backward itself). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Records an op for autograd if any input requires grad. Called by ops after computing outputs.
 * Marks outputs as requiring grad and links them to the node.
 */
export function record(
  name: string,
  inputs: readonly Tensor[],
  outputs: Tensor[],
  backwardFn: (grads: (Tensor | null)[]) => (Tensor | null)[],
): void {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return;
  const node: Node = { name, inputs, outputs, backward: backwardFn };
  outputs.forEach((o, i) => {
    o.requiresGrad = true;
    o.node = node;
    o.outputIndex = i;
  });
}

/**
 * Backpropagates from `roots` (gradients `grads`, default ones for scalars) through the recorded
 * graph. Leaf gradients accumulate into `.grad` (kept). Intermediate gradients live in the current scope.
 */
export function backward(roots: Tensor[], grads?: Tensor[]): void {
  for (const r of roots) {
    r.assertAlive();
    if (!r.requiresGrad) throw new Error(`backward() on ${r.describe()}, which does not require grad (no parameter contributed to it)`);
  }
  // Topological order of nodes, by DFS from the roots.
  const order: Node[] = [];
  const seen = new Set<Node>();
  const visit = (t: Tensor) => {
    const n = t.node;
    if (!n || seen.has(n)) return;
    seen.add(n);
    for (const i of n.inputs) visit(i);
    order.push(n);
  };
  roots.forEach(visit);

  const pending = new Map<Tensor, Tensor>();
  const addGrad = (t: Tensor, g: Tensor) => {
    const prev = pending.get(t);
    pending.set(t, prev ? binaryAdd(prev, g) : g);
  };
  noGrad(() => {
    roots.forEach((r, i) => {
      const g = grads?.[i] ?? onesLike(r);
      if (g.size !== r.size) throw new Error(`backward(): gradient ${g.describe()} does not match ${r.describe()}`);
      addGrad(r, g);
    });
    for (let idx = order.length - 1; idx >= 0; idx--) {
      const node = order[idx];
      const outGrads = node.outputs.map((o) => pending.get(o) ?? null);
      if (outGrads.every((g) => g === null)) continue;
      for (const i of node.inputs) i.assertAlive();
      const inGrads = node.backward(outGrads);
      node.inputs.forEach((inp, j) => {
        const g = inGrads[j];
        if (!g || !inp.requiresGrad) return;
        if (g.size !== inp.size) throw new Error(`internal: backward of ${node.name} gave ${g.describe()} for input ${inp.describe()}`);
        addGrad(inp, g);
      });
    }
    // Leaves (no node) accumulate into .grad, which outlives the scope.
    for (const [t, g] of pending) {
      if (t.node) continue;
      if (t.grad) {
        const sum = binaryAdd(t.grad, g).keep();
        t.grad.dispose();
        t.grad = sum;
      } else {
        // A new handle on the same storage: the gradient may be shared with other tensors of the scope.
        g.storage.refs++;
        t.grad = new Tensor(g.storage, t.shape).keep();
      }
    }
  });
}

/** Elementwise a + b of equal sizes (used by the tape; the public op with broadcasting is in ops/). */
function binaryAdd(a: Tensor, b: Tensor): Tensor {
  const shape = [a.size];
  return new Tensor(a.backend.binary('add', a.storage, b.storage, { shape, aStrides: [1], bStrides: [1] }), a.shape);
}

function onesLike(t: Tensor): Tensor {
  if (t.size !== 1) throw new Error(`backward() on non-scalar ${t.describe()} needs an explicit gradient`);
  return new Tensor(t.backend.fill(1, 1, 'f32'), t.shape);
}

/**
 * Runs fn and disposes every tensor created during it, except those in its result (a tensor, or an
 * array / object of tensors, searched one level deep) and those `keep()`-ed. Async functions are
 * supported: the scope closes when the promise settles. Nested scopes hand returned tensors to the outer scope.
 */
export function scope<T>(fn: () => T): T {
  const own = new Set<Tensor>();
  scopes.push(own);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(own, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    // An async scope stays on the stack until it settles, so tensors it creates after awaits are tracked.
    return result.then(
      (v) => (closeScope(own, v), v),
      (e) => {
        closeScope(own, undefined);
        throw e;
      },
    ) as T;
  }
  closeScope(own, result);
  return result;
}

function closeScope(own: Set<Tensor>, result: unknown): void {
  const i = scopes.lastIndexOf(own);
  if (i >= 0) scopes.splice(i, 1);
  const keepers = new Set<Tensor>();
  const collect = (v: unknown) => {
    if (v instanceof Tensor) keepers.add(v);
  };
  if (Array.isArray(result)) result.forEach(collect);
  else if (result instanceof Tensor) collect(result);
  else if (result && typeof result === 'object') Object.values(result).forEach(collect);
  const parent = scopes[scopes.length - 1];
  for (const t of own) {
    if (keepers.has(t)) parent?.add(t);
    else t.dispose();
  }
}

/** Sets `.grad` of each tensor to null, freeing it. */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}
