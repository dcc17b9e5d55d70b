/**
 * Module: a tree of named parameters with Hugging Face dotted names (`model.layers.0.self_attn.q_proj.weight`),
 * so that a checkpoint maps onto modules by name (as torch.nn.Module.named_parameters / state_dict).
 */
import * as E from '../engine/index.js';
import { storageBytes } from '../engine/dtype.js';

export abstract class Module {
  private readonly _params = new Map<string, E.Tensor>();
  private readonly _children = new Map<string, Module>();

  /** Registers a parameter under `name` (kept outside scopes, requires grad). */
  protected param(name: string, t: E.Tensor): E.Tensor {
    this._params.set(name, E.parameter(t, name));
    return t;
  }

  /** Registers a child module under `name` (e.g. `self_attn`, or `0` inside a ModuleList). */
  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** Every parameter with its full dotted name, depth first, in registration order. */
  namedParameters(prefix = ''): [string, E.Tensor][] {
    const out: [string, E.Tensor][] = [];
    for (const [n, p] of this._params) out.push([prefix + n, p]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Every submodule with its dotted name (this module is ''). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(`${prefix}${n}.`));
    return out;
  }

  parameters(): E.Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /**
   * Replaces a registered parameter's tensor (checkpoint loading), disposing the old one; the new
   * tensor keeps the old one's name and trainability.
   * @throws naming the parameter when the name is unknown or the shape differs
   */
  setParameter(name: string, t: E.Tensor): void {
    const old = this._params.get(name);
    if (!old) throw new Error(`${this.constructor.name} has no parameter "${name}"`);
    if (old.shape.join() !== t.shape.join()) throw new Error(`parameter ${old.name ?? name}: expected shape [${old.shape.join(', ')}], got [${t.shape.join(', ')}]`);
    const trainable = old.requiresGrad;
    old.dispose();
    E.parameter(t, old.name).requiresGrad = trainable;
    this._params.set(name, t);
  }

  /** A registered parameter by local name. @throws naming the module when absent. */
  getParameter(name: string): E.Tensor {
    const p = this._params.get(name);
    if (!p) throw new Error(`${this.constructor.name} has no parameter "${name}"`);
    return p;
  }

  /** Removes children by name (e.g. an adapter after merging). */
  protected dropChildren(names: string[]): void {
    for (const n of names) this._children.get(n)?.dispose();
    for (const n of names) this._children.delete(n);
  }

  /** Direct children with their names. */
  children(): [string, Module][] {
    return [...this._children];
  }

  /** Replaces a child module (e.g. to wrap it). @throws when there is no such child. */
  setChild(name: string, m: Module): void {
    if (!this._children.has(name)) throw new Error(`${this.constructor.name} has no submodule "${name}"`);
    this._children.set(name, m);
  }

  /** Number of parameters (elements). */
  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }

  /** Bytes the parameters occupy on the device (f32: 4 per element, f16 storage: 2). */
  parameterBytes(): number {
    return this.parameters().reduce((a, p) => a + storageBytes(p.size, p.dtype), 0);
  }

  /** Frees every parameter (and its gradient). */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}

/** An ordered list of modules named `0`, `1`, ... (torch.nn.ModuleList). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.child(String(i), m));
  }
}
