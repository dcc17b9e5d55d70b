/**
 * The import drawing of the lab (docs/architecture.md): every TypeScript module outside tests, grouped
 * into rooms (src/<folder>, workers, bench, proxy, scripts/chromium, tests' helpers, scripts), each room
 * on a floor of {@link FLOORS}. The rule: a module imports only from its own room or from rooms on lower
 * floors, and no modules import each other in a circle. Static imports, `import type`, re-exports,
 * dynamic `import()` and `new URL('…ts', import.meta.url)` (workers) all count; imports of data files
 * (JSON, CSS) do not. Test files (`*.test.ts`) are left out: they sit above everything they test.
 *
 *   npx tsx scripts/import-graph.ts          the drawing (floors, rooms, arrows with counts) and the check
 *   npx tsx scripts/import-graph.ts --json   the rooms' arrows as JSON
 *
 * Exits 1 when an import runs upward or a circle exists (scripts/import-graph.test.ts runs the check).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The floors, lowest first; each lists its rooms. A room imports from its own floor's other rooms
 * only when listed in {@link SIDEWAYS}.
 */
export const FLOORS: readonly (readonly string[])[] = [
  ['src/engine'], // tensors, ops, autograd, backends (WebGPU, WebAssembly, CPU), optimizers, the seeded RNG
  ['src/io'], // file formats: safetensors, JSONL, test fixtures
  ['src/nn', 'src/hub'], // layers with HF names; the hub client and its download cache's interface
  ['src/protocol'], // the MMSearch-R1 conversation protocol: prompts, tags, limits, tool-result turns
  ['src/search'], // search tools: proxy client, local index, corpus
  ['src/data'], // FVQA rows, FVQA-mini generator, parquet/JSONL import
  ['src/models'], // architectures, checkpoints (HF layout), tokenizer, decoding
  ['src/storage'], // persistence: the dataset store, checkpoint store, hub and search caches (IndexedDB, filesystem)
  ['src/rl'], // recipes, run environment, rollouts, reward, GRPO/SFT steps, trainer, checkpoint format, evaluation
  ['src/export'], // Hugging Face / PEFT / veRL exports, metrics CSV
  ['bench'], // the benchmark suites against jax-js and TF.js
  ['src/lab'], // what the workers and the UI share: environment setup, run storage, stored data, the worker API types
  ['workers'], // the trainer and inference web workers
  ['src/ui'], // the lab's views
  ['src'], // src/main.ts, the page's entry
  ['proxy'], // the search proxy (Node)
  ['scripts/chromium'], // headless Chromium and the software WebGPU driver: launch, environment, the trainer page bridge
  ['tests'], // test helpers (tests/browser.ts, pages)
  ['scripts'], // the command-line tools
];

/** Same-floor imports allowed (room -> room); none today. */
export const SIDEWAYS: readonly string[] = [];

/**
 * Upward imports known and being removed elsewhere, as `from-room -> to-room: why`. The check fails
 * when one is listed but no longer happens (remove it here then), as well as for any not listed.
 */
export const PENDING: readonly string[] = [];

const SOURCE_DIRS = ['src', 'workers', 'bench', 'proxy', 'scripts', 'tests'];

/** The room of a module path relative to the repository root (`src/rl/trainer.ts` -> `src/rl`). */
export function roomOf(path: string): string {
  const parts = path.split('/');
  if (parts[0] === 'src') return parts.length > 2 ? `src/${parts[1]}` : 'src';
  if (parts[0] === 'scripts' && parts[1] === 'chromium' && parts.length > 2) return 'scripts/chromium';
  return parts[0];
}

/** One import edge between modules (paths relative to the root). */
export interface ImportEdge {
  from: string;
  to: string;
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.tsx?$/.test(name) && !/\.test\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?\bfrom\s*'(\.[^']+)'|(?:^|\n)\s*import\s*'(\.[^']+)'|\bimport\(\s*'(\.[^']+)'\s*\)|new URL\(\s*'(\.[^']+\.tsx?)'\s*,\s*import\.meta\.url\s*\)/g;

/** Every module and its relative imports of other modules, from the source folders under `root`. */
export function importGraph(root: string): { modules: string[]; edges: ImportEdge[] } {
  const files: string[] = [];
  for (const d of SOURCE_DIRS) if (existsSync(join(root, d))) walk(join(root, d), files);
  const edges: ImportEdge[] = [];
  const known = new Set(files);
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3] ?? m[4];
      const target = resolve(dirname(file), spec);
      const ts = [target.replace(/\.js$/, '.ts'), target.replace(/\.js$/, '.tsx'), target].find((p) => /\.tsx?$/.test(p) && existsSync(p));
      // A data file (JSON, CSS), or a module outside the source folders (vite.config.ts).
      if (!ts || !known.has(ts)) continue;
      edges.push({ from: relative(root, file), to: relative(root, ts) });
    }
  }
  return { modules: files.map((f) => relative(root, f)), edges };
}

/** What the check finds: upward (or unlisted sideways) imports, rooms without a floor, circles of modules. */
export interface ImportReport {
  /** Room arrows with their import counts, `from -> to`. */
  arrows: Map<string, number>;
  /** `from-room -> to-room` for imports that run upward or sideways, with an example import. */
  upward: Map<string, ImportEdge>;
  /** Listed in PENDING but not happening any more. */
  stalePending: string[];
  /** Rooms that are on no floor. */
  unplaced: string[];
  /** Circles of modules (each a strongly connected set of two or more, or a module importing itself). */
  circles: string[][];
}

export function checkImports(graph: { modules: string[]; edges: ImportEdge[] }): ImportReport {
  const floorOf = new Map(FLOORS.flatMap((rooms, i) => rooms.map((r) => [r, i] as const)));
  const arrows = new Map<string, number>();
  const upward = new Map<string, ImportEdge>();
  const unplaced = new Set<string>();
  for (const m of graph.modules) if (!floorOf.has(roomOf(m))) unplaced.add(roomOf(m));
  for (const e of graph.edges) {
    const a = roomOf(e.from), b = roomOf(e.to);
    if (a === b) continue;
    const key = `${a} -> ${b}`;
    arrows.set(key, (arrows.get(key) ?? 0) + 1);
    const fa = floorOf.get(a), fb = floorOf.get(b);
    if (fa === undefined || fb === undefined) continue;
    if (fb > fa || (fb === fa && !SIDEWAYS.includes(key))) if (!upward.has(key)) upward.set(key, e);
  }
  const pendingKeys = PENDING.map((p) => p.slice(0, p.indexOf(':')));
  for (const k of pendingKeys) if (upward.has(k)) upward.delete(k);
  const stalePending = pendingKeys.filter((k) => !arrows.has(k));
  return { arrows, upward, stalePending, unplaced: [...unplaced].sort(), circles: circles(graph) };
}

/** Strongly connected sets of modules (Tarjan), those of two or more or with a self-import. */
function circles(graph: { modules: string[]; edges: ImportEdge[] }): string[][] {
  const next = new Map<string, string[]>(graph.modules.map((m) => [m, []]));
  for (const e of graph.edges) next.get(e.from)?.push(e.to);
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], onStack = new Set<string>();
  const out: string[][] = [];
  let i = 0;
  const visit = (v: string) => {
    index.set(v, i);
    low.set(v, i++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const set: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        set.push(w);
      } while (w !== v);
      if (set.length > 1 || (next.get(v) ?? []).includes(v)) out.push(set.sort());
    }
  };
  for (const m of graph.modules) if (!index.has(m)) visit(m);
  return out;
}

/** The drawing: floors from the top, each room with its arrows down. */
export function drawing(report: ImportReport): string {
  const lines: string[] = [];
  for (let f = FLOORS.length - 1; f >= 0; f--) {
    for (const room of FLOORS[f]) {
      const out = [...report.arrows].filter(([k]) => k.startsWith(`${room} -> `)).map(([k, n]) => `${k.slice(room.length + 4)} (${n})`);
      lines.push(`${String(f).padStart(2)}  ${room.padEnd(17)}${out.length ? ' -> ' + out.join(', ') : ''}`);
    }
  }
  return lines.join('\n');
}

/** The check's verdict as lines; empty when the drawing is clean. */
export function problems(report: ImportReport): string[] {
  return [
    ...[...report.upward].map(([k, e]) => `import runs up or sideways: ${k} (e.g. ${e.from} imports ${e.to})`),
    ...report.stalePending.map((k) => `PENDING lists ${k}, which no longer happens: remove it from scripts/import-graph.ts`),
    ...report.unplaced.map((r) => `room ${r} is on no floor: add it to FLOORS in scripts/import-graph.ts`),
    ...report.circles.map((c) => `circle: ${c.join(' <-> ')}`),
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = resolve(new URL('..', import.meta.url).pathname);
  const report = checkImports(importGraph(root));
  if (process.argv.includes('--json')) console.log(JSON.stringify(Object.fromEntries(report.arrows), null, 2));
  else {
    console.log(`floors (top first), each room with the rooms it imports (import count):\n${drawing(report)}\n`);
    for (const p of PENDING) console.log(`pending: ${p}`);
  }
  const bad = problems(report);
  console.log(bad.length ? `\n${bad.join('\n')}` : `\nno circle, nothing imports upward (${report.arrows.size} arrows between rooms)`);
  process.exit(bad.length ? 1 : 0);
}
