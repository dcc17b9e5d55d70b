/**
 * The WebGPU runtime under the backend: buffer pool, uniform ring, pipeline cache, command
 * recording and readback.
 *
 * Work is recorded into one command encoder and one compute pass until something needs the results
 * on the host (read) or the recording grows large; then it is submitted at once. Uniforms of all
 * dispatches in a submission live in one ring buffer written by a single writeBuffer just before
 * the submit (queue order makes that safe: the write lands before the commands that read it, and
 * after the previous submission that read the same bytes).
 *
 * Small uploads (token ids, positions, masks) take the same route: their bytes go to an upload ring
 * written once before the submit, and a recorded copy moves them into place in command order, so an
 * upload does not force a submission (decoding would otherwise submit for every input it uploads).
 *
 * Buffers are pooled by size class (each class at most 1/8 above the requested size); a freed
 * buffer can be reused by the next dispatch at once, since the queue runs dispatches in order.
 */

export interface GpuBuffer {
  buffer: GPUBuffer;
  /** Size class in bytes (the GPUBuffer's size). */
  bytes: number;
}

/** Bytes of uniforms per dispatch (minUniformBufferOffsetAlignment upper bound). */
export const UNIFORM_SLOT = 256;
const RING_BYTES = 1 << 20; // 4096 dispatches per submission
const MAX_PENDING_DISPATCHES = 1024;
const UPLOAD_RING_BYTES = 1 << 20;
/** Uploads up to this size are recorded as ring copies; larger ones are written directly (after a flush). */
const MAX_RECORDED_UPLOAD = 64 << 10;

/** Size class: next value of the form (8 + j)·2^k / 8 at or above n, at least 256 bytes. */
export function sizeClass(n: number): number {
  const min = 256;
  if (n <= min) return min;
  const p = 2 ** Math.floor(Math.log2(n));
  const step = Math.max(p / 8, 4);
  return Math.ceil(n / step) * step;
}

/**
 * The WebGPU runtime of one GPUDevice under the {@link WebGPUBackend}: pooled buffers by size class,
 * a pipeline cache keyed by shader source, one command encoder and compute pass recorded until a
 * readback or 1024 dispatches, a uniform ring and an upload ring written once per submission, and the
 * bookkeeping of live / peak / pooled bytes, dispatches and submissions.
 *
 * Errors: `check()` throws once the device is lost ("GPU device lost (reason): reload the model from
 * its last checkpoint") or reported an uncaptured error; a buffer above the adapter's
 * maxStorageBufferBindingSize throws naming its label and both sizes; a failed readback throws.
 */
export class GpuContext {
  readonly device: GPUDevice;
  readonly limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  private pool = new Map<number, GPUBuffer[]>();
  private pipelines = new Map<string, GPUComputePipeline>();
  private ring: GPUBuffer;
  private ringData = new ArrayBuffer(RING_BYTES);
  private ringUsed = 0;
  private uploadRing: GPUBuffer;
  private uploadData = new ArrayBuffer(UPLOAD_RING_BYTES);
  private uploadUsed = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  private deviceError: Error | null = null;
  private lostReason: string | null = null;
  live = 0;
  peak = 0;
  pooled = 0;
  dispatches = 0;
  submits = 0;

  constructor(device: GPUDevice) {
    this.device = device;
    this.limits = { maxBufferSize: device.limits.maxBufferSize, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize };
    this.ring = device.createBuffer({ size: RING_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniform ring' });
    this.uploadRing = device.createBuffer({ size: UPLOAD_RING_BYTES, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: 'upload ring' });
    device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
    device.addEventListener('uncapturederror', (ev) => {
      this.deviceError ??= new Error(`WebGPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`);
    });
  }

  /** Throws if the device was lost or reported an error since the last check. */
  check(): void {
    if (this.lostReason) throw new Error(`GPU device lost (${this.lostReason}); reload the model from its last checkpoint`);
    if (this.deviceError) {
      const e = this.deviceError;
      this.deviceError = null;
      throw e;
    }
  }

  /**
   * A storage buffer of at least `bytes` bytes, from the pool when one is free.
   * @param label names the tensor in errors, e.g. "matmul output [4096, 49280] f32"
   * @throws when the size exceeds the adapter's limits (naming the tensor, its size and the limit)
   */
  acquire(bytes: number, label: string): GpuBuffer {
    this.check();
    const size = sizeClass(Math.max(bytes, 4));
    const limit = Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize);
    if (bytes > limit)
      throw new Error(`${label} needs ${fmtBytes(bytes)}, above this adapter's maxStorageBufferBindingSize ${fmtBytes(limit)}: use smaller chunks, batches or sequences`);
    const free = this.pool.get(size);
    let buffer = free?.pop();
    if (buffer) this.pooled -= size;
    else {
      this.device.pushErrorScope('out-of-memory');
      buffer = this.device.createBuffer({ size: Math.min(size, limit), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label });
      this.device.popErrorScope().then((err) => {
        if (err) this.deviceError ??= new Error(`GPU out of memory allocating ${label} (${fmtBytes(size)}; ${fmtBytes(this.live)} live): free tensors or use smaller batches`);
      });
    }
    this.live += size;
    this.peak = Math.max(this.peak, this.live);
    return { buffer, bytes: size };
  }

  release(b: GpuBuffer): void {
    this.live -= b.bytes;
    this.pooled += b.bytes;
    let list = this.pool.get(b.bytes);
    if (!list) this.pool.set(b.bytes, (list = []));
    list.push(b.buffer);
  }

  /** Destroys every pooled (free) buffer, returning memory to the driver. */
  trimPool(): void {
    this.flush();
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.pooled = 0;
  }

  private pipeline(code: string): GPUComputePipeline {
    let p = this.pipelines.get(code);
    if (!p) {
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(code, p);
    }
    return p;
  }

  /**
   * Records one dispatch of `code` with its uniform bytes and storage buffers (bindings 1..n), over
   * `groups` workgroups (a count is split into a 2-D grid when above the per-dimension limit).
   */
  dispatch(code: string, uniform: ArrayBuffer, buffers: GPUBuffer[], groups: number | [number, number, number]): void {
    this.check();
    if (this.ringUsed + UNIFORM_SLOT > RING_BYTES) this.flush();
    const offset = this.ringUsed;
    new Uint8Array(this.ringData, offset, uniform.byteLength).set(new Uint8Array(uniform));
    this.ringUsed += UNIFORM_SLOT;
    const pipeline = this.pipeline(code);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.ring, offset, size: uniform.byteLength } }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    this.encoder ??= this.device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    const [x, y, z] = typeof groups === 'number' ? grid(groups, this.device.limits.maxComputeWorkgroupsPerDimension) : groups;
    if (x > 0 && y > 0 && z > 0) this.pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    if (++this.pendingDispatches >= MAX_PENDING_DISPATCHES) this.flush();
  }

  /** Submits recorded work. */
  flush(): void {
    if (!this.encoder) return;
    this.pass?.end();
    if (this.ringUsed) this.device.queue.writeBuffer(this.ring, 0, this.ringData, 0, this.ringUsed);
    if (this.uploadUsed) this.device.queue.writeBuffer(this.uploadRing, 0, this.uploadData, 0, this.uploadUsed);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pass = null;
    this.ringUsed = 0;
    this.uploadUsed = 0;
    this.pendingDispatches = 0;
    this.submits++;
  }

  /** Copies `bytes` bytes of `src` to the host after all recorded work (submitting it). */
  async read(src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(size, 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    // The copy goes into the recorded work's own submission (one submit per readback, not two).
    this.encoder ??= this.device.createCommandEncoder();
    this.pass?.end();
    this.pass = null;
    this.encoder.copyBufferToBuffer(src, 0, staging, 0, size);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.check();
      throw new Error(`reading a tensor back from the GPU failed: ${(e as Error).message}`);
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.destroy();
    this.check();
    return out;
  }

  /**
   * Uploads host bytes into a buffer, in order with the recorded work: work recorded before sees the
   * old contents, work recorded after the new ones.
   */
  write(dst: GPUBuffer, data: ArrayBufferView): void {
    const bytes = Math.ceil(data.byteLength / 4) * 4;
    if (!this.encoder) {
      this.device.queue.writeBuffer(dst, 0, data.buffer, data.byteOffset, bytes);
      return;
    }
    if (bytes > MAX_RECORDED_UPLOAD) {
      this.flush();
      this.device.queue.writeBuffer(dst, 0, data.buffer, data.byteOffset, bytes);
      return;
    }
    if (this.uploadUsed + bytes > UPLOAD_RING_BYTES) {
      this.flush();
      this.device.queue.writeBuffer(dst, 0, data.buffer, data.byteOffset, bytes);
      return;
    }
    new Uint8Array(this.uploadData, this.uploadUsed, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    // Copies are recorded outside compute passes: end the current one (the next dispatch opens another).
    this.pass?.end();
    this.pass = null;
    this.encoder.copyBufferToBuffer(this.uploadRing, this.uploadUsed, dst, 0, bytes);
    this.uploadUsed += bytes;
  }
}

/** Splits a workgroup count into a grid within the per-dimension limit. */
export function grid(count: number, maxPerDim = 65535): [number, number, number] {
  if (count <= maxPerDim) return [count, 1, 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y, 1];
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
