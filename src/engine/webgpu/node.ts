/**
 * A GPUDevice in Node through the `webgpu` package (Dawn). Node-only: never import from browser code.
 * The process environment must point Vulkan at a driver before start (scripts/chromium/gpu-env.ts does that
 * for `npm test` and the CLI; on machines without a GPU it is Chromium's SwiftShader).
 */
import { create, globals } from 'webgpu';
import { requestDevice, type DeviceInfo } from './device.js';

let gpu: GPU | undefined;

/** Dawn's GPU object (navigator.gpu's counterpart), created once per process. */
export function nodeGpu(): GPU {
  if (!gpu) {
    Object.assign(globalThis, globals);
    gpu = create(['backend=vulkan']) as GPU;
  }
  return gpu;
}

/** Requests a device with the adapter's limits from Dawn's GPU object. */
export async function requestNodeDevice(): Promise<DeviceInfo> {
  try {
    return await requestDevice(nodeGpu());
  } catch (e) {
    const icd = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
    throw new Error(
      `${(e as Error).message} Dawn (Node) found no Vulkan adapter` +
        (icd ? ` with VK_ICD_FILENAMES=${icd}.` : '; run through `npm test` / the npm scripts, which point Vulkan at Chromium\'s SwiftShader driver (apt-get install -y chromium).'),
    );
  }
}
