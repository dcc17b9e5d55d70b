/**
 * `npm test`: finds the browser and the WebGPU driver the tests need, then runs vitest once.
 * GPU tests never skip: a missing driver or browser is an error that says what to install. The
 * Python checks' virtual environment (scripts/python-env.ts) is made or reused first; a missing
 * python3 is an error that says what to install.
 * Extra arguments go to vitest (e.g. `npm test -- src/engine`).
 */
import { spawnSync } from 'node:child_process';
import { dawnEnv, findChrome } from './chromium/gpu-env.js';
import { ensurePythonEnv } from './python-env.js';

let env: NodeJS.ProcessEnv;
try {
  env = dawnEnv({ ...process.env, CHROME_PATH: findChrome() });
  // The interop checks' Python (torch CPU, transformers, peft, trl, ...): built once, then reused.
  env.LAB_PYTHON = ensurePythonEnv();
} catch (e) {
  console.error(`npm test: ${(e as Error).message}`);
  process.exit(1);
}
const r = spawnSync('npx', ['vitest', 'run', ...process.argv.slice(2)], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
