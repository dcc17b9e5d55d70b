/** The import drawing's rule (scripts/import-graph.ts): no circle of modules, no import running up a floor. */
import { resolve } from 'node:path';
import { expect, test } from 'vitest';
import { checkImports, importGraph, problems } from './import-graph.js';

test('the lab imports only downward, without circles', () => {
  const report = checkImports(importGraph(resolve(new URL('..', import.meta.url).pathname)));
  expect(report.arrows.size).toBeGreaterThan(30);
  expect(problems(report)).toEqual([]);
});

test('the check finds an upward import and a circle', () => {
  const modules = ['src/engine/a.ts', 'src/rl/b.ts', 'src/rl/c.ts'];
  const edges = [
    { from: 'src/engine/a.ts', to: 'src/rl/b.ts' },
    { from: 'src/rl/b.ts', to: 'src/rl/c.ts' },
    { from: 'src/rl/c.ts', to: 'src/engine/a.ts' },
  ];
  const out = problems(checkImports({ modules, edges }));
  expect(out).toContainEqual('import runs up or sideways: src/engine -> src/rl (e.g. src/engine/a.ts imports src/rl/b.ts)');
  expect(out).toContainEqual('circle: src/engine/a.ts <-> src/rl/b.ts <-> src/rl/c.ts');
});
