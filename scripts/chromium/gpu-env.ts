/**
 * Locates the browser and the software Vulkan driver that WebGPU needs on machines without a GPU,
 * and builds the environment for child processes (vitest, the Node runtime of the trainer).
 *
 * Follows ../shared/notes/webgpu-here.md: Dawn in Node finds an adapter with Chromium's SwiftShader
 * Vulkan ICD (`vk_swiftshader_icd.json`) and Chromium's bundled `libvulkan.so.1`; headless Chromium
 * needs the flags in `CHROMIUM_WEBGPU_FLAGS`.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';

/** Flags that give headless Chromium a working `navigator.gpu` on SwiftShader (verified here). */
export const CHROMIUM_WEBGPU_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--use-angle=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const CHROME_CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/opt/google/chrome/chrome',
];

const INSTALL_HINT =
  'Install one (Debian/Ubuntu: `sudo apt-get update && sudo apt-get install -y chromium`) ' +
  'or set CHROME_PATH to a Chrome/Chromium executable.';

/**
 * Path of a Chrome or Chromium executable: $CHROME_PATH, then the usual install locations, then PATH.
 * @throws Error naming what to install when none is found.
 */
export function findChrome(): string {
  const fromEnv = process.env.CHROME_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROME_PATH=${fromEnv} does not exist. ${INSTALL_HINT}`);
    return fromEnv;
  }
  for (const p of CHROME_CANDIDATES) if (existsSync(p)) return p;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      const p = execFileSync('which', [name], { encoding: 'utf8' }).trim();
      if (p) return p;
    } catch {
      /* not on PATH */
    }
  }
  throw new Error(`No Chrome or Chromium found (looked at $CHROME_PATH, ${CHROME_CANDIDATES.join(', ')}). ${INSTALL_HINT}`);
}

/** Folders that hold Chromium's SwiftShader ICD and its bundled Vulkan loader, if any. */
function chromiumLibDirs(): string[] {
  const dirs = ['/usr/lib/chromium', '/usr/lib/chromium-browser', '/opt/google/chrome'];
  try {
    dirs.unshift(dirname(findChrome()));
  } catch {
    /* reported by findChrome where a browser is required */
  }
  return dirs;
}

/**
 * Environment for a process that creates a Dawn (Node `webgpu` package) device.
 * A machine with a real Vulkan driver needs nothing; without one, Chromium's SwiftShader ICD is used.
 * `VK_ICD_FILENAMES` already set by the user is respected.
 * @throws Error naming what to install when no Vulkan driver can be found and none is configured.
 */
export function dawnEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env = { ...base };
  env.XDG_RUNTIME_DIR ??= '/tmp';
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES) return env;
  for (const dir of chromiumLibDirs()) {
    const icd = join(dir, 'vk_swiftshader_icd.json');
    if (!existsSync(icd)) continue;
    env.VK_ICD_FILENAMES = icd;
    // Chromium ships its own libvulkan.so.1; Dawn dlopens it by name, so it must be on the loader path.
    if (existsSync(join(dir, 'libvulkan.so.1'))) {
      env.LD_LIBRARY_PATH = [dir, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
    }
    return env;
  }
  throw new Error(
    'No Vulkan driver for WebGPU in Node: Chromium\'s SwiftShader ICD (vk_swiftshader_icd.json) was not found. ' +
      INSTALL_HINT + ' On a machine with a GPU, set VK_ICD_FILENAMES to its Vulkan ICD instead.',
  );
}
