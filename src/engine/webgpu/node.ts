/**
 * A GPUDevice in Node through the `webgpu` package (Dawn). Node-only: never import from browser code.
 * The process environment must point Vulkan at a driver before start (scripts/gpu-env.ts does that
 * for `npm test` and the CLI; on machines without a GPU it is Chromium's SwiftShader).
 */
import { create, globals } from 'webgpu';
import { requestDevice, type DeviceInfo } from './device.js';

let gpu: GPU | undefined;

/** Creates (once per process) Dawn's GPU object and requests a device with the adapter's limits. */
export async function requestNodeDevice(): Promise<DeviceInfo> {
  if (!gpu) {
    Object.assign(globalThis, globals);
    gpu = create(['backend=vulkan']) as GPU;
  }
  try {
    return await requestDevice(gpu);
  } catch (e) {
    const icd = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
    throw new Error(
      `${(e as Error).message} Dawn (Node) found no Vulkan adapter` +
        (icd ? ` with VK_ICD_FILENAMES=${icd}.` : '; run through `npm test` / the npm scripts, which point Vulkan at Chromium\'s SwiftShader driver (apt-get install -y chromium).'),
    );
  }
}
