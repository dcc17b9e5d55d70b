/**
 * The Python environment of the interop checks (issue 18): a virtual environment with the packages
 * of python/requirements.txt (torch CPU, transformers, peft, trl, accelerate, pyarrow, pillow), made
 * with the system's python3 and pip and reused while that file is unchanged.
 *
 * Where: `$LAB_PYTHON_VENV`, default `.cache/python-venv` (ignored by git, so CI can cache it).
 * pip uses whatever index the machine configures (pip.conf, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
 * PIP_FIND_LINKS); `$PIP_RETRIES` (default 1) bounds its retries against an unreachable index.
 * Used by scripts/test.ts (so `npm test` builds it once) and by the tests that run Python.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
export const REQUIREMENTS = join(root, 'python/requirements.txt');

/** What to install when python3 or its venv module is missing. */
const INSTALL_HINT = 'install Python >= 3.10 with its venv module and pip (Debian/Ubuntu: sudo apt-get install -y python3 python3-venv python3-pip; macOS: brew install python), or set $PYTHON to one';

/**
 * The venv's python executable, creating or updating the environment first when needed.
 * @param log where progress lines go (default stderr)
 * @returns absolute path of `<venv>/bin/python`
 * @throws when python3 is missing (the message names what to install), when the venv module is
 *   missing, or when pip cannot install a requirement (pip's last lines are in the message)
 */
export function ensurePythonEnv(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): string {
  const venv = resolve(process.env.LAB_PYTHON_VENV ?? join(root, '.cache/python-venv'));
  const python = join(venv, 'bin/python');
  const stamp = join(venv, '.requirements.sha256');
  const want = createHash('sha256').update(readFileSync(REQUIREMENTS)).digest('hex');
  if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === want) return python;

  const system = process.env.PYTHON ?? 'python3';
  const version = spawnSync(system, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) throw new Error(`${system} not found (the interop checks run Python): ${INSTALL_HINT}`);
  const [major, minor] = version.stdout.trim().split('.').map(Number);
  if (major < 3 || (major === 3 && minor < 10)) throw new Error(`${system} is Python ${version.stdout.trim()}; the checks need >= 3.10: ${INSTALL_HINT}`);

  if (!existsSync(python)) {
    log(`python env: creating ${venv} with ${system} ${version.stdout.trim()}`);
    const mk = spawnSync(system, ['-m', 'venv', venv], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`${system} -m venv ${venv} failed (${(mk.stderr || mk.stdout).trim().split('\n').pop()}): ${INSTALL_HINT}`);
  }
  log(`python env: pip install -r python/requirements.txt into ${venv} (once; a few minutes)`);
  const t0 = Date.now();
  const pip = spawnSync(python, ['-m', 'pip', 'install', '--retries', process.env.PIP_RETRIES ?? '1', '-r', REQUIREMENTS], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (pip.status !== 0) {
    const tail = `${pip.stdout ?? ''}${pip.stderr ?? ''}`.trim().split('\n').slice(-8).join('\n');
    throw new Error(`pip could not install python/requirements.txt into ${venv}:\n${tail}\n(pip reads its index from pip.conf / PIP_INDEX_URL; torch's CPU build is on https://download.pytorch.org/whl/cpu)`);
  }
  writeFileSync(stamp, want + '\n');
  log(`python env: ready in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return python;
}

/**
 * Runs a Python script of the repository with the venv's interpreter.
 * @returns exit status, stdout and stderr (the caller decides what failure means)
 */
export function runPython(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): { status: number | null; stdout: string; stderr: string } {
  const python = process.env.LAB_PYTHON ?? ensurePythonEnv();
  // The checks' models are tiny: one torch thread each (several threads per op spin against each other
  // on a busy machine: a 1-step TRL run took 143 s with the default threads and 28 s with one here).
  const env = { OMP_NUM_THREADS: '1', TRL_EXPERIMENTAL_SILENCE: '1', ...process.env, ...opts.env };
  const r = spawnSync(python, args, { cwd: opts.cwd ?? root, env, encoding: 'utf8', timeout: opts.timeoutMs ?? 600_000, maxBuffer: 256 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * {@link runPython} without blocking Node's event loop, for scripts that call back into servers of this
 * process (the TRL run searching through an in-process proxy).
 * @returns exit status, stdout and stderr; status null when it was killed at `timeoutMs`
 */
export function runPythonAsync(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const python = process.env.LAB_PYTHON ?? ensurePythonEnv();
  const env = { OMP_NUM_THREADS: '1', TRL_EXPERIMENTAL_SILENCE: '1', ...process.env, ...opts.env };
  return new Promise((resolvePromise, reject) => {
    const child = spawn(python, args, { cwd: opts.cwd ?? root, env });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.on('error', (e) => (clearTimeout(timer), reject(e)));
    child.on('close', (status) => (clearTimeout(timer), resolvePromise({ status, stdout, stderr })));
  });
}
