/**
 * The WebAssembly backend's machine: one linear memory holding every tensor, a size-class heap over
 * it, the compiled kernel module, and a pool of threads that run a kernel's share of the work.
 *
 * Threads (WebAssembly threads proposal): where SharedArrayBuffer exists (Node; a cross-origin
 * isolated page) the memory is shared and `threads - 1` workers instantiate the same module over
 * it. A job is a kernel index plus its argument block at ARGS; the caller writes them, bumps the
 * generation word and runs share 0 itself, each worker runs share `tid` of `nt` and counts down
 * `pending`. Workers spin briefly before sleeping in Atomics.wait, so back-to-back kernels of a
 * training step do not pay a wake-up each.
 */
import { encodeModule, type Func } from './asm.js';

/** Byte layout of the reserved low memory. */
const CTL = 0; // Int32 words: 0 generation, 1 job, 2 pending, 3 threads of this job, 4 failed share + 1 (0: none)
export const ARGS = 256; // kernel arguments, 4 bytes each
const HEAP_BASE = 4096;
/** Slack after the heap's top: vector loads past a tensor's end stay inside memory. */
const GUARD = 256;
const PAGE = 65536;

/** Rounds a byte count up to its size class: 64-byte multiples, then steps of 2^k·{1, 1.25, 1.5, 1.75}. */
export function sizeClass(bytes: number): number {
  if (bytes <= 1024) return Math.max(64, Math.ceil(bytes / 64) * 64);
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

interface KernelFn {
  (args: number, tid: number, nt: number): void;
}

// Plain JavaScript (no TypeScript) so that it runs as a Blob worker in a page and as an eval'd
// worker_threads script in Node, without a bundler step.
const WORKER_SOURCE = `
const port = typeof require === 'function' ? require('node:worker_threads').parentPort : self;
const listen = (fn) => (port.on ? port.on('message', fn) : port.addEventListener('message', (e) => fn(e.data)));
listen(({ module, memory, names, tid, spin }) => {
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  const fns = names.map((n) => inst.exports[n]);
  const ctl = new Int32Array(memory.buffer, ${CTL}, 5);
  let gen = Atomics.load(ctl, 0);
  port.postMessage('ready');
  for (;;) {
    for (let i = 0; i < spin && Atomics.load(ctl, 0) === gen; i++);
    // Re-check after every wake: a notify that was late for a job already done (the caller
    // preempted between its bump and its notify) must not run that job again.
    while (Atomics.load(ctl, 0) === gen) Atomics.wait(ctl, 0, gen);
    gen = Atomics.load(ctl, 0);
    const job = ctl[1];
    if (job < 0) return;
    try {
      if (tid < ctl[3]) fns[job](${ARGS}, tid, ctl[3]);
    } catch {
      Atomics.store(ctl, 4, tid + 1); // the caller re-runs this share to raise the error itself
    }
    if (Atomics.sub(ctl, 2, 1) === 1) Atomics.notify(ctl, 2);
  }
});
`;

interface PoolWorker {
  postMessage(m: unknown): void;
  terminate(): unknown;
}

/** A worker running WORKER_SOURCE, and a promise of its first message (its "ready"). */
async function spawnWorker(): Promise<{ worker: PoolWorker; firstMessage: Promise<unknown> }> {
  if (typeof process !== 'undefined' && process.versions?.node) {
    const wt = (await import(/* @vite-ignore */ 'node:' + 'worker_threads')) as typeof import('node:worker_threads');
    const w = new wt.Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    return { worker: w, firstMessage: new Promise((res) => w.once('message', res)) };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  const w = new Worker(url);
  URL.revokeObjectURL(url);
  return { worker: w, firstMessage: new Promise((res) => w.addEventListener('message', (e) => res(e.data), { once: true })) };
}

/** Whether this context may share memory between threads (SharedArrayBuffer and, in a page, cross-origin isolation). */
export function threadsAvailable(): { ok: boolean; why?: string } {
  if (typeof SharedArrayBuffer === 'undefined') {
    return { ok: false, why: 'SharedArrayBuffer is unavailable (the page is not cross-origin isolated: serve it with COOP same-origin and COEP require-corp)' };
  }
  if (typeof globalThis.crossOriginIsolated === 'boolean' && !globalThis.crossOriginIsolated) return { ok: false, why: 'the page is not cross-origin isolated' };
  return { ok: true };
}

export interface RuntimeOptions {
  /** Threads including the caller's; 1 disables the pool. */
  threads: number;
  /** Largest memory in 64 KiB pages (65536 = 4 GiB, the wasm32 limit). */
  maxPages?: number;
}

/** Memory, heap, module instance and thread pool of one WasmBackend. */
export class Runtime {
  readonly maxBytes: number;
  private fns: KernelFn[] = [];
  private index = new Map<string, number>();
  private workers: PoolWorker[] = [];
  private ctl!: Int32Array;
  private canWait = true;
  private top = HEAP_BASE;
  private readonly freeLists = new Map<number, number[]>();
  private viewBuffer: ArrayBufferLike | undefined;
  private f32View!: Float32Array;
  private i32View!: Int32Array;
  private u16View!: Uint16Array;
  threads = 1;

  private constructor(readonly shared: boolean, readonly memory: WebAssembly.Memory, maxPages: number) {
    this.maxBytes = maxPages * PAGE;
  }

  /**
   * A memory of at most `maxPages`, halving the maximum while the runtime refuses to reserve it (a
   * shared memory reserves its maximum up front; 32-bit or small devices may not have 4 GiB of
   * address space to give).
   */
  private static reserve(shared: boolean, maxPages: number): { memory: WebAssembly.Memory; maxPages: number } {
    for (let pages = maxPages; ; pages >>= 1) {
      try {
        return { memory: new WebAssembly.Memory({ initial: 64, maximum: pages, shared } as WebAssembly.MemoryDescriptor), maxPages: pages };
      } catch (e) {
        if (pages <= 1024) throw new Error(`WebAssembly backend: could not reserve even ${(pages * PAGE) / 2 ** 20} MiB of memory: ${(e as Error).message}`);
      }
    }
  }

  /** Compiles `funcs` into one module over a fresh memory and starts `threads - 1` workers. */
  static async create(funcs: Func[], opts: RuntimeOptions): Promise<Runtime> {
    const shared = opts.threads > 1;
    const { memory, maxPages } = Runtime.reserve(shared, opts.maxPages ?? 65536);
    const rt = new Runtime(shared, memory, maxPages);
    const bytes = encodeModule(funcs, { initialPages: 64, maxPages, shared });
    const module = await WebAssembly.compile(bytes as BufferSource);
    const inst = await WebAssembly.instantiate(module, { env: { memory: rt.memory } });
    const names = funcs.filter((f) => f.exported).map((f) => f.name);
    names.forEach((n, i) => {
      rt.index.set(n, i);
      rt.fns.push(inst.exports[n] as unknown as KernelFn);
    });
    rt.ctl = new Int32Array(rt.memory.buffer, CTL, 5);
    if (shared) {
      const spin = 20000;
      rt.workers = await Promise.all(
        Array.from({ length: opts.threads - 1 }, async (_, i) => {
          const { worker, firstMessage } = await spawnWorker();
          worker.postMessage({ module, memory: rt.memory, names, tid: i + 1, spin });
          await firstMessage;
          return worker;
        }),
      );
      rt.threads = opts.threads;
    }
    return rt;
  }

  /** Stops the workers (the memory stays readable until dropped). */
  close(): void {
    if (!this.workers.length) return;
    this.ctl[1] = -1;
    Atomics.add(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
    for (const w of this.workers) w.terminate();
    this.workers = [];
    this.threads = 1;
  }

  private views(): void {
    if (this.viewBuffer === this.memory.buffer) return;
    const b = this.memory.buffer;
    this.viewBuffer = b;
    this.f32View = new Float32Array(b);
    this.i32View = new Int32Array(b);
    this.u16View = new Uint16Array(b);
  }
  get f32(): Float32Array {
    this.views();
    return this.f32View;
  }
  get i32(): Int32Array {
    this.views();
    return this.i32View;
  }
  get u16(): Uint16Array {
    this.views();
    return this.u16View;
  }

  /** Heap bytes in use or pooled (everything below the top). */
  get heapBytes(): number {
    return this.top - HEAP_BASE;
  }

  /**
   * A block of at least `bytes` (64-byte aligned), reused from the pool of its size class when one is free.
   * @throws when the memory cannot grow to hold it (names the request and the limit).
   */
  alloc(bytes: number, label: string): number {
    const cls = sizeClass(bytes);
    const list = this.freeLists.get(cls);
    if (list?.length) return list.pop()!;
    const ptr = this.top;
    const need = ptr + cls + GUARD;
    if (need > this.memory.buffer.byteLength) {
      if (need > this.maxBytes) {
        throw new Error(`WebAssembly backend: out of memory allocating ${label} (${bytes} bytes): the heap would reach ${need} bytes, over the ${this.maxBytes}-byte limit of this memory`);
      }
      const pages = Math.ceil((need - this.memory.buffer.byteLength) / PAGE);
      const grow = Math.min(this.maxBytes / PAGE - this.memory.buffer.byteLength / PAGE, Math.max(pages, this.memory.buffer.byteLength / PAGE / 4));
      try {
        this.memory.grow(Math.max(pages, Math.floor(grow)));
      } catch (e) {
        throw new Error(`WebAssembly backend: the runtime refused to grow memory to ${need} bytes for ${label} (${bytes} bytes): ${(e as Error).message}`);
      }
    }
    this.top += cls;
    return ptr;
  }

  release(ptr: number, bytes: number): void {
    const cls = sizeClass(bytes);
    let list = this.freeLists.get(cls);
    if (!list) this.freeLists.set(cls, (list = []));
    list.push(ptr);
  }

  /** Writes a kernel's arguments (i32 or f32 per declaration) into the argument block. */
  setArgs(types: readonly ('i32' | 'f32')[], values: readonly number[]): void {
    const i32 = this.i32, f32 = this.f32;
    for (let i = 0; i < types.length; i++) {
      if (types[i] === 'i32') i32[ARGS / 4 + i] = values[i];
      else f32[ARGS / 4 + i] = values[i];
    }
  }

  /**
   * Runs kernel `name` on the arguments already written: on `threads` threads (at most the pool's),
   * the caller taking share 0; returns when every share is done.
   */
  run(name: string, threads: number): void {
    const fn = this.fns[this.index.get(name)!];
    const nt = Math.min(threads, this.threads);
    if (nt <= 1) {
      fn(ARGS, 0, 1);
      return;
    }
    const ctl = this.ctl;
    ctl[1] = this.index.get(name)!;
    ctl[3] = nt;
    Atomics.store(ctl, 2, this.workers.length);
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    fn(ARGS, 0, nt);
    for (let i = 0; i < 100000 && Atomics.load(ctl, 2) !== 0; i++);
    while (Atomics.load(ctl, 2) !== 0) {
      if (this.canWait) {
        try {
          Atomics.wait(ctl, 2, Atomics.load(ctl, 2), 1);
          continue;
        } catch {
          this.canWait = false; // a page's main thread may not block: keep spinning
        }
      }
    }
    const failed = Atomics.exchange(ctl, 4, 0);
    if (failed) {
      // A worker's share trapped (its message stays in the worker): the same share here raises it.
      fn(ARGS, failed - 1, nt);
      throw new Error(`WebAssembly kernel ${name} failed in worker thread ${failed - 1} but not when re-run on the calling thread`);
    }
  }
}
