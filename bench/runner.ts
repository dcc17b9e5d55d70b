/**
 * Drives the engines through the protocol of harness.ts, one row at a time, in a page (the CLI's
 * headless Chromium or the lab's Bench view) or in Node (ours on Dawn, ours-wasm and jax-js-wasm).
 * Each step is its own call, so that a driver outside the page can measure the browser's CPU time
 * around every timed run.
 */
import { ENGINE_KIND, isOurs, median, meter, relError, withMeterLabel, type EngineImpl, type EngineName, type EngineResult, type Prepared, type RowResult, type Workload } from './harness.js';
import { dropHostData } from './workloads.js';

interface Slot {
  engine: EngineImpl;
  result: EngineResult;
  prepared?: Prepared;
  liveAtStart: number;
  samples: number[];
  cpu: number[];
  dispatches: number;
  submits: number;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class BenchSession {
  private row?: { workload: Workload; slots: Slot[] };

  private constructor(readonly engines: EngineImpl[]) {}

  /** Initialises the engines (each device metered under its engine's name); ours (or ours-wasm) must be first. */
  static async create(engines: EngineImpl[]): Promise<BenchSession> {
    if (!engines[0] || !isOurs(engines[0].name)) throw new Error('the first engine must be ours or ours-wasm: it is the reference of every check');
    for (const e of engines) await withMeterLabel(e.name, () => e.init());
    return new BenchSession(engines);
  }

  /**
   * Prepares every engine for `w`, checks each against ours (a mismatch is reported, not timed) and
   * runs each once to warm up. Returns the engines that will be timed.
   */
  async prepareRow(w: Workload): Promise<EngineName[]> {
    if (this.row) this.finishRow();
    const slots: Slot[] = [];
    this.row = { workload: w, slots };
    let reference: Record<string, Float32Array> | undefined;
    for (const engine of this.engines) {
      const slot: Slot = { engine, result: { engine: engine.name, status: 'ok' }, liveAtStart: 0, samples: [], cpu: [], dispatches: 0, submits: 0 };
      slots.push(slot);
      const why = engine.unsupported(w);
      if (why) {
        slot.result = { engine: engine.name, status: 'unsupported', note: why };
        continue;
      }
      engine.trim();
      const m = meter(engine.name);
      m.peak = m.live;
      slot.liveAtStart = m.live;
      engine.memoryMeter?.reset();
      try {
        slot.prepared = await engine.prepare(w);
        const out = await slot.prepared.check();
        if (!reference) {
          if (!isOurs(engine.name)) throw new Error('ours did not produce the reference outputs');
          reference = out;
        } else {
          const { worst, where, each } = relError(reference, out);
          slot.result.relErr = worst;
          if (!(worst <= w.tol)) {
            slot.result = { engine: engine.name, status: 'mismatch', relErr: worst, note: `${where}: max rel err ${worst.toExponential(2)} > ${w.tol} (${each})` };
            slot.prepared.dispose();
            slot.prepared = undefined;
            continue;
          }
        }
        await slot.prepared.before?.();
        await slot.prepared.run();
      } catch (e) {
        slot.result = { engine: engine.name, status: 'error', note: message(e) };
        try {
          slot.prepared?.dispose();
        } catch {
          /* the error above is the one to report */
        }
        slot.prepared = undefined;
        if (isOurs(engine.name)) reference = undefined;
      }
    }
    return slots.filter((s) => s.prepared).map((s) => s.engine.name);
  }

  private slot(name: EngineName): Slot {
    const s = this.row?.slots.find((x) => x.engine.name === name && x.prepared);
    if (!s) throw new Error(`${name} has no prepared row`);
    return s;
  }

  /** The untimed set-up of the next run (decoding: a fresh cache and the prefill). */
  async before(name: EngineName): Promise<void> {
    await this.slot(name).prepared!.before?.();
  }

  /** One timed run; returns its wall time in ms (and records it). `cpuMs` may be added by the driver. */
  async runOnce(name: EngineName): Promise<number> {
    const s = this.slot(name);
    const m = meter(name);
    const d0 = m.dispatches, s0 = m.submits;
    const t0 = performance.now();
    await s.prepared!.run();
    const ms = performance.now() - t0;
    s.samples.push(ms);
    s.dispatches += m.dispatches - d0;
    s.submits += m.submits - s0;
    return ms;
  }

  /** Records a CPU time measured outside the page for the last run of `name`. */
  addCpu(name: EngineName, ms: number): void {
    this.slot(name).cpu.push(ms);
  }

  /** Frees the row's resources and returns its results. */
  finishRow(): RowResult {
    const row = this.row;
    if (!row) throw new Error('no row in progress');
    this.row = undefined;
    const w = row.workload;
    for (const s of row.slots) {
      if (!s.prepared) continue;
      const n = s.samples.length;
      const ms = median(s.samples);
      const gpu = ENGINE_KIND[s.engine.name] === 'webgpu';
      const mm = s.engine.memoryMeter;
      s.result = {
        ...s.result,
        ms,
        cpuMs: s.cpu.length ? median(s.cpu) : undefined,
        gflops: w.flops ? w.flops / ms / 1e6 : undefined,
        tokensPerS: w.tokens ? w.tokens / (ms / 1000) : undefined,
        // WebAssembly engines have no GPU counters.
        dispatches: gpu ? s.dispatches / n : undefined,
        submits: gpu ? s.submits / n : undefined,
        peakBytes: gpu ? meter(s.engine.name).peak - s.liveAtStart : mm?.peak(),
        peakMeasure: gpu ? 'gpu-buffers' : mm?.measure,
        samples: s.samples,
      };
      s.prepared.dispose();
    }
    dropHostData(w);
    return { workload: w, results: row.slots.map((s) => s.result) };
  }

  /**
   * Every step of one row in order (prepare, then `runs` rounds alternating engines), for callers
   * without an outside CPU meter (the lab's Bench view, the Node runtime with `cpu`).
   */
  async runRow(w: Workload, runs: number, cpu?: () => number): Promise<RowResult> {
    const timed = await this.prepareRow(w);
    for (let r = 0; r < runs; r++)
      for (const name of timed) {
        await this.before(name);
        const c0 = cpu?.();
        await this.runOnce(name);
        if (c0 !== undefined) this.addCpu(name, cpu!() - c0);
      }
    return this.finishRow();
  }
}
