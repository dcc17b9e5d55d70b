/**
 * Requests a GPUDevice with the adapter's real limits (the WebGPU defaults cap storage bindings at
 * 128 MiB, too small for a 49k-vocabulary embedding) and the optional features the engine uses.
 * Works with the browser's `navigator.gpu` (page or worker) and Node's `webgpu` package (Dawn).
 */

/** Optional features requested when the adapter has them. */
const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

/** Limits raised to the adapter's maximum. */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

export interface DeviceInfo {
  device: GPUDevice;
  /** "vendor / architecture / description" of the adapter. */
  adapterName: string;
  features: string[];
}

/**
 * Requests an adapter (high-performance) and a device from `gpu`.
 * @throws Error saying WebGPU is missing or no adapter was granted.
 */
export async function requestDevice(gpu: GPU | undefined = globalThis.navigator?.gpu): Promise<DeviceInfo> {
  if (!gpu) throw new Error('WebGPU is not available here (no navigator.gpu): use a recent Chrome/Chromium, or the CPU backend (slow).');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('WebGPU is present but no GPU adapter was granted (blocked GPU, missing driver, or software rendering disabled).');
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const { vendor, architecture, description } = adapter.info;
  return { device, adapterName: [vendor, architecture, description].filter(Boolean).join(' / ') || 'unknown adapter', features: requiredFeatures };
}
