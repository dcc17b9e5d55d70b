/**
 * The side-by-side benchmark's common ground: what a workload is, what each engine implements
 * (prepare -> check -> timed runs), the meter that counts every WebGPU engine's GPU buffers,
 * dispatches and submits on its own GPUDevice (WebAssembly engines report their memory themselves,
 * where their library exposes it), the result check, and the table. Browser and Node safe.
 *
 * Protocol of one row: every engine prepares the workload from the same host data; each runs it once
 * from the initial state and returns its outputs, which must match the first engine's (ours, or
 * ours-wasm when it runs without ours) within the workload's tolerance (else that engine's row is a
 * mismatch and is not timed); one warm-up run each; then `runs` timed runs, alternating engines, each
 * ended by the engine's own "wait until the device is idle". Times are medians.
 */

export type EngineName = 'ours' | 'jax-js' | 'tfjs' | 'ours-wasm' | 'jax-js-wasm' | 'tfjs-wasm';
/** Every engine (what `npm run bench` runs without --engines): ours and the peers on WebGPU, then on the CPU through WebAssembly. */
export const ENGINES: EngineName[] = ['ours', 'jax-js', 'tfjs', 'ours-wasm', 'jax-js-wasm', 'tfjs-wasm'];

/**
 * Where an engine runs: on a GPUDevice (metered by wrapping the device: buffers, dispatches, submits)
 * or on the CPU through WebAssembly (no GPU counters; memory as the library exposes it).
 */
export type EngineKind = 'webgpu' | 'wasm';
export const ENGINE_KIND: Record<EngineName, EngineKind> = {
  ours: 'webgpu', 'jax-js': 'webgpu', tfjs: 'webgpu', 'ours-wasm': 'wasm', 'jax-js-wasm': 'wasm', 'tfjs-wasm': 'wasm',
};
/** This project's engine (on either backend). */
export const isOurs = (e: EngineName): boolean => e === 'ours' || e === 'ours-wasm';
/** Our engine on the same kind of backend as `e`: the reference of `e`'s speed and memory ratios. */
export const oursOf = (e: EngineName): EngineName => (ENGINE_KIND[e] === 'wasm' ? 'ours-wasm' : 'ours');

export type SuiteName = 'matmul' | 'attention' | 'train' | 'decode' | 'grpo';
export const SUITES: SuiteName[] = ['matmul', 'attention', 'train', 'decode', 'grpo'];

/** Llama-family text model sizes (Hugging Face config.json names). */
export interface TextSpec {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  vocab_size: number;
  rope_theta: number;
  rms_norm_eps: number;
  max_position_embeddings: number;
}

/** SigLIP vision tower + pixel-shuffle connector of an Idefics3 model (tiny-vlm). */
export interface VisionSpec {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  image_size: number;
  patch_size: number;
  layer_norm_eps: number;
  scale_factor: number;
  image_token_id: number;
}

export type WorkloadSpec =
  /** C = A·Bᵀ (x·Wᵀ, nn.Linear), A [m, k], B [n, k]. */
  | { kind: 'matmul'; m: number; k: number; n: number; dtype: 'f32' | 'f16' }
  /** Causal GQA attention q [b, t, hq, d], k/v [b, t, hkv, d]; backward: d(Σ o·r)/d(q, k, v). */
  | { kind: 'attention'; b: number; t: number; hq: number; hkv: number; d: number; backward: boolean }
  /** loss = mean((x·W)²), x [m, k], W [k, n]; grads; AdamW. */
  | { kind: 'linear-train'; m: number; k: number; n: number }
  /**
   * One AdamW training step of a Llama decoder. `head`: token ids -> embeddings -> layers -> norm ->
   * tied LM head, loss = mean next-token cross-entropy; otherwise hidden states in, loss = mean(out²).
   */
  | { kind: 'lm-train'; text: TextSpec; batch: number; seq: number; head: boolean }
  /** Greedy batched decoding with a KV cache: prefill `prompt` tokens, then `newTokens` steps. */
  | { kind: 'decode'; text: TextSpec; batch: number; prompt: number; newTokens: number }
  /**
   * One GRPO step of tiny-vlm: `rollouts` completions of `newTokens` tokens (greedy, KV cache) for one
   * prompt with an image, then the policy update on them (clipped-ratio loss, TRL "grpo" aggregation,
   * beta 0, grad-norm clip 1, AdamW).
   */
  | { kind: 'grpo'; text: TextSpec; vision: VisionSpec; rollouts: number; prompt: number; newTokens: number }
  /**
   * One warm-start SFT step of tiny-vlm as the trainer takes it: `batch` sequences of `seq` tokens
   * (one image each, its tokens first), next-token cross-entropy on the text, backward, grad-norm
   * clip 1, AdamW. Ours only (the peers would need the whole Idefics3 model written in their API).
   */
  | { kind: 'sft'; text: TextSpec; vision: VisionSpec; batch: number; seq: number };

export interface Workload {
  id: string;
  suite: SuiteName;
  /** Row label in the table. */
  name: string;
  spec: WorkloadSpec;
  /** Floating-point operations of one run (GFLOP/s column), where meaningful. */
  flops?: number;
  /** Tokens of one run (tokens/s column), where meaningful. */
  tokens?: number;
  /** Largest allowed max|peer - ours| / max|ours| over each checked output. */
  tol: number;
}

/** A workload made ready by one engine: inputs on its device, programs compiled on first use. */
export interface Prepared {
  /** Untimed set-up before each timed run (decoding: a fresh KV cache and the prefill). */
  before?(): Promise<void>;
  /** One timed unit; resolves when the engine's device has finished it. */
  run(): Promise<void>;
  /**
   * Runs once from the initial state and returns the outputs the engines must agree on (by name).
   * Called once, before any timed run.
   */
  check(): Promise<Record<string, Float32Array>>;
  dispose(): void;
}

/**
 * How a CPU (WebAssembly) engine's memory is measured, where its library exposes it:
 * - `wasm-heap`: the size of the engine's WebAssembly memory at the end of the row. Linear memory
 *   only grows, so this is its high-water mark since the page started (the library's own initial
 *   heap included);
 * - `live-bytes`: the high-water mark of the bytes of tensors alive during the row, as the engine counts them.
 */
export type MemoryMeasure = 'gpu-buffers' | 'wasm-heap' | 'live-bytes';

export interface MemoryMeter {
  readonly measure: Exclude<MemoryMeasure, 'gpu-buffers'>;
  /** At the start of a row (after `trim`). */
  reset(): void;
  /** Peak bytes of the row so far. */
  peak(): number;
}

/** One engine, as the page drives it. */
export interface EngineImpl {
  readonly name: EngineName;
  /** Library version or engine description for the report. */
  readonly version: string;
  /**
   * Starts the engine: WebGPU engines create their GPUDevice (counted by the meter under this
   * engine's name), WebAssembly engines their module and threads.
   */
  init(): Promise<void>;
  /** Why the engine cannot run a workload here, or undefined when it can. */
  unsupported(w: Workload): string | undefined;
  prepare(w: Workload): Promise<Prepared>;
  /** Returns pooled free buffers to the driver, where the engine allows it (before a row). */
  trim(): void;
  /** WebAssembly engines: their memory meter; absent where the library exposes none ("n/a"). */
  readonly memoryMeter?: MemoryMeter;
}

/** Counters of one engine's GPUDevice. */
export interface DeviceMeter {
  live: number;
  peak: number;
  dispatches: number;
  submits: number;
}

const meters = new Map<string, DeviceMeter>();
let meterLabel = 'unlabelled';

/** The meter of an engine (created on first use). */
export function meter(label: string): DeviceMeter {
  let m = meters.get(label);
  if (!m) meters.set(label, (m = { live: 0, peak: 0, dispatches: 0, submits: 0 }));
  return m;
}

/**
 * Counts, on `device`, the bytes of GPU buffers alive (created and not destroyed), their high-water
 * mark, compute dispatches and queue submissions, under `label`. Wraps the device's own methods, so
 * it sees every engine the same way whatever its internals.
 */
export function instrumentDevice(device: GPUDevice, label: string): void {
  const m = meter(label);
  const createBuffer = device.createBuffer.bind(device);
  device.createBuffer = (desc: GPUBufferDescriptor) => {
    const b = createBuffer(desc);
    m.live += desc.size;
    m.peak = Math.max(m.peak, m.live);
    const destroy = b.destroy.bind(b);
    let alive = true;
    b.destroy = () => {
      if (alive) m.live -= desc.size;
      alive = false;
      destroy();
    };
    return b;
  };
  const createCommandEncoder = device.createCommandEncoder.bind(device);
  device.createCommandEncoder = (desc?: GPUCommandEncoderDescriptor) => {
    const enc = createCommandEncoder(desc);
    const begin = enc.beginComputePass.bind(enc);
    enc.beginComputePass = (d?: GPUComputePassDescriptor) => {
      const pass = begin(d);
      const dispatch = pass.dispatchWorkgroups.bind(pass);
      pass.dispatchWorkgroups = (x: number, y?: number, z?: number) => {
        m.dispatches++;
        dispatch(x, y, z);
      };
      const indirect = pass.dispatchWorkgroupsIndirect.bind(pass);
      pass.dispatchWorkgroupsIndirect = (buffer: GPUBuffer, offset: number) => {
        m.dispatches++;
        indirect(buffer, offset);
      };
      return pass;
    };
    return enc;
  };
  const submit = device.queue.submit.bind(device.queue);
  device.queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
    m.submits++;
    submit(buffers);
  };
}

/**
 * Instruments every GPUDevice requested from now on (in this page) under the label current at
 * request time: engines that create their own device (jax-js, TF.js) are metered from their first
 * buffer. Call `withMeterLabel` around an engine's init.
 */
export function meterAllDevices(): void {
  const proto = GPUAdapter.prototype as GPUAdapter & { __metered?: boolean };
  if (proto.__metered) return;
  proto.__metered = true;
  const requestDevice = proto.requestDevice;
  proto.requestDevice = async function (this: GPUAdapter, desc?: GPUDeviceDescriptor) {
    const label = meterLabel;
    const device = await requestDevice.call(this, desc);
    instrumentDevice(device, label);
    return device;
  };
}

/** Runs `fn` with devices requested meanwhile counted under `label`. */
export async function withMeterLabel<T>(label: string, fn: () => Promise<T>): Promise<T> {
  meterLabel = label;
  try {
    return await fn();
  } finally {
    meterLabel = 'unlabelled';
  }
}

/**
 * Worst max|got - ref| / max|ref| over the outputs both engines returned, and where; `each` lists
 * every output's error. Infinity on a missing output or a length mismatch.
 */
export function relError(ref: Record<string, Float32Array>, got: Record<string, Float32Array>): { worst: number; where: string; each: string } {
  let worst = 0, where = '';
  const each: string[] = [];
  for (const [name, r] of Object.entries(ref)) {
    const g = got[name];
    if (!g || g.length !== r.length) return { worst: Infinity, where: `${name}: ${g ? `${g.length} values, expected ${r.length}` : 'missing'}`, each: '' };
    let scale = 0, diff = 0;
    for (let i = 0; i < r.length; i++) {
      scale = Math.max(scale, Math.abs(r[i]));
      const d = Math.abs(g[i] - r[i]);
      diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    }
    const e = diff / Math.max(scale, 1e-30);
    each.push(`${name} ${e.toExponential(1)}`);
    if (e > worst || Number.isNaN(e)) {
      worst = Number.isNaN(e) ? Infinity : e;
      where = name;
    }
  }
  return { worst, where, each: each.join(', ') };
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** One engine's result on one workload. */
export interface EngineResult {
  engine: EngineName;
  /** 'ok', 'mismatch' (outputs differ from ours beyond tolerance), 'unsupported' or 'error'. */
  status: 'ok' | 'mismatch' | 'unsupported' | 'error';
  /** Why the status is not ok. */
  note?: string;
  /** Median wall time of a run, ms. */
  ms?: number;
  /** Median CPU time of the browser's processes during a run, ms (driver-measured; shared-machine-proof). */
  cpuMs?: number;
  gflops?: number;
  tokensPerS?: number;
  /** Compute dispatches and queue submissions per run (WebGPU engines only). */
  dispatches?: number;
  submits?: number;
  /**
   * WebGPU engines: high-water mark of this engine's live GPU buffer bytes during the row, above its
   * start. WebAssembly engines: as `peakMeasure` says; absent where the library exposes no measure.
   */
  peakBytes?: number;
  /** What `peakBytes` measures. */
  peakMeasure?: MemoryMeasure;
  /** max|out - ours| / max|ours| of the check. */
  relErr?: number;
  /** Every timed run's wall time, ms. */
  samples?: number[];
}

export interface RowResult {
  workload: Workload;
  results: EngineResult[];
}

/**
 * Speed of `ours` over `peer` (peer time / our time: above 1 means ours is faster); CPU time when both
 * have it. Pass the result of `oursOf(peer.engine)` as `ours` (see `referenceOf`).
 */
export function speedRatio(ours: EngineResult | undefined, peer: EngineResult | undefined): number | undefined {
  if (ours?.status !== 'ok' || peer?.status !== 'ok') return undefined;
  if (ours.cpuMs !== undefined && peer.cpuMs !== undefined) return peer.cpuMs / ours.cpuMs;
  return ours.ms && peer.ms ? peer.ms / ours.ms : undefined;
}

/** Our result on the same kind of backend as `r` (undefined for our own lines and where it did not run). */
export function referenceOf(results: EngineResult[], r: EngineResult): EngineResult | undefined {
  return isOurs(r.engine) ? undefined : results.find((x) => x.engine === oursOf(r.engine));
}

/** ours/peer peak memory, where both measured the same thing. */
export function memoryRatio(ours: EngineResult | undefined, peer: EngineResult): number | undefined {
  if (ours?.status !== 'ok' || ours.peakBytes === undefined || !peer.peakBytes || ours.peakMeasure !== peer.peakMeasure) return undefined;
  return ours.peakBytes / peer.peakBytes;
}

const f = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '' : v.toFixed(digits));
const mib = (r: EngineResult) => (r.peakBytes !== undefined ? `${(r.peakBytes / 2 ** 20).toFixed(1)}${r.peakMeasure === 'wasm-heap' ? ' (heap)' : ''}` : ENGINE_KIND[r.engine] === 'wasm' ? 'n/a' : '');

/**
 * The markdown table: one line per workload and engine, with ours/peer speed (time ratio; CPU time
 * where measured) and peak-memory ratios on the peers' lines, each against our engine on the same
 * kind of backend (ours for the WebGPU peers, ours-wasm for the WebAssembly ones). WebAssembly
 * engines have no dispatch or submit counts; their peak is their wasm heap ("(heap)"), the live bytes
 * they count, or "n/a" where the library exposes neither.
 */
export function markdownTable(rows: RowResult[]): string {
  const out = [
    '| workload | engine | ms (wall) | CPU ms | GFLOP/s | tokens/s | dispatches | submits | peak MiB | ours faster by | ours/peer peak mem | max rel err |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const { workload: w, results } of rows) {
    for (const r of results) {
      if (r.status !== 'ok') {
        out.push(`| ${w.name} | ${r.engine} | ${r.status}: ${(r.note ?? '').replace(/\|/g, '/').slice(0, 160)} | | | | | | | | | ${f(r.relErr, 1)} |`);
        continue;
      }
      const ours = referenceOf(results, r);
      const speed = ours && speedRatio(ours, r);
      const mem = ours && memoryRatio(ours, r);
      out.push(
        `| ${w.name} | ${r.engine} | ${f(r.ms, 1)} | ${f(r.cpuMs, 1)} | ${f(r.gflops, 2)} | ${f(r.tokensPerS, 1)} | ${f(r.dispatches, 0)} | ${f(r.submits, 0)} | ${mib(r)} | ${speed === undefined ? '' : `${speed.toFixed(2)}x`} | ${f(mem, 2)} | ${r.relErr === undefined ? '' : r.relErr.toExponential(1)} |`,
      );
    }
  }
  return out.join('\n');
}
