/**
 * Batched matmul C = op(A)·op(B) (+ C when accumulating), A and B read at offsets with per-batch
 * strides: one kernel per adapter kind (the backend's matmulKernel). The backward products are
 * matmuls with other transpose flags (../../ops/matmul.ts).
 */
import { range } from './common.js';
import { uniforms } from './uniforms.js';

/**
 * Tiled matmul: 64x64 output tile per workgroup of 16x16 threads, 4x4 register block per thread,
 * K in steps of 16 through workgroup memory. Threads own rows ty+16r and columns tx+16c, so that
 * global stores and shared-memory reads are contiguous across a row of threads.
 */
export const tiled = uniforms({
  m: 'u32', n: 'u32', k: 'u32', transA: 'u32', transB: 'u32', aBS: 'u32', bBS: 'u32', aOff: 'u32', bOff: 'u32', cOff: 'u32', accumulate: 'u32',
}).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
var<workgroup> As: array<f32, 1024>;
var<workgroup> Bs: array<f32, 1024>;
@compute @workgroup_size(16, 16) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wid.y * 64u;
  let col0 = wid.x * 64u;
  let tid = lid.y * 16u + lid.x;
  let aBase = u.aOff + wid.z * u.aBS;
  let bBase = u.bOff + wid.z * u.bBS;
  let cBase = u.cOff + wid.z * u.m * u.n;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < u.k; k0 = k0 + 16u) {
    for (var l = 0u; l < 4u; l = l + 1u) {
      let e = tid + l * 256u;
      // A tile element (i, kk) of op(A) [M, K]; pick the mapping whose global reads are contiguous.
      var i = e / 16u;
      var kk = e % 16u;
      if (u.transA == 1u) { i = e % 64u; kk = e / 64u; }
      var va = 0.0;
      if (row0 + i < u.m && k0 + kk < u.k) {
        if (u.transA == 1u) { va = a[aBase + (k0 + kk) * u.m + row0 + i]; } else { va = a[aBase + (row0 + i) * u.k + k0 + kk]; }
      }
      As[kk * 64u + i] = va;
      // B tile element (kk, j) of op(B) [K, N].
      var j = e % 64u;
      var kb = e / 64u;
      if (u.transB == 1u) { j = e / 16u; kb = e % 16u; }
      var vb = 0.0;
      if (col0 + j < u.n && k0 + kb < u.k) {
        if (u.transB == 1u) { vb = b[bBase + (col0 + j) * u.k + k0 + kb]; } else { vb = b[bBase + (k0 + kb) * u.n + col0 + j]; }
      }
      Bs[kb * 64u + j] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
      let a0 = As[kk * 64u + lid.y];
      let a1 = As[kk * 64u + lid.y + 16u];
      let a2 = As[kk * 64u + lid.y + 32u];
      let a3 = As[kk * 64u + lid.y + 48u];
      for (var q = 0u; q < 4u; q = q + 1u) {
        let bv = Bs[kk * 64u + lid.x + q * 16u];
        acc[q] = fma(a0, bv, acc[q]);
        acc[4u + q] = fma(a1, bv, acc[4u + q]);
        acc[8u + q] = fma(a2, bv, acc[8u + q]);
        acc[12u + q] = fma(a3, bv, acc[12u + q]);
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 4u; r = r + 1u) {
    let gi = row0 + lid.y + r * 16u;
    if (gi >= u.m) { continue; }
    for (var q = 0u; q < 4u; q = q + 1u) {
      let gj = col0 + lid.x + q * 16u;
      if (gj >= u.n) { continue; }
      let idx = cBase + gi * u.n + gj;
      var v = acc[r * 4u + q];
      if (u.accumulate == 1u) { v = v + c[idx]; }
      c[idx] = v;
    }
  }
}`);

const VEC4 = uniforms({ m: 'u32', n: 'u32', k4: 'u32', aBS: 'u32', bBS: 'u32', aOff: 'u32', bOff: 'u32', cOff: 'u32', accumulate: 'u32' });

/**
 * Register-blocked matmul for CPU-like adapters (SwiftShader): C = op(A)·op(B), each thread 8 rows ×
 * 4 columns held in vec4 accumulators, no workgroup memory and no barriers, which software
 * rasterizers execute slowly. Operands are read as vec4 in one of three layouts, so that the
 * backward products of x·Wᵀ need no transposing copies:
 * - 'nt': A [M, K] and B [N, K], both contiguous along K (K a multiple of 4);
 * - 'nn': A [M, K] (K a multiple of 4) and B [K, N] (N a multiple of 4);
 * - 'tn': A [K, M] (M a multiple of 4) and B [K, N] (N a multiple of 4), any K.
 * Offsets and batch strides are in vec4 units; k4 is K/4 ('nt', 'nn') or K ('tn').
 * Measured on SwiftShader (2 cores): about 3 GFLOP/s against 0.3 for the tiled kernel.
 */
export function vec4(layout: 'nt' | 'nn' | 'tn') {
  const R = 8;
  const rows = range(R);
  const cols = range(4);
  const comp = 'xyzw';
  let setup: string, body: string;
  if (layout === 'tn') {
    // Rows r0..r0+7 of A are two vec4 of row k of the stored [K, M]; the second clamped at M's end.
    setup = `let m4 = u.m / 4u; let n4 = u.n / 4u;
  let a0 = aBase + r0 / 4u; let a1 = aBase + min(r0 / 4u + 1u, m4 - 1u); let bc = bBase + c0 / 4u;`;
    body = `let lo = a[a0 + k * m4]; let hi = a[a1 + k * m4]; let bv = b[bc + k * n4];
    ${rows.map((r) => `acc${r} = fma(vec4<f32>(${r < 4 ? 'lo' : 'hi'}.${comp[r % 4]}), bv, acc${r});`).join(' ')}`;
  } else {
    setup = rows.map((r) => `let ar${r} = aBase + min(r0 + ${r}u, u.m - 1u) * u.k4;`).join('\n  ');
    if (layout === 'nt') {
      setup += '\n  ' + cols.map((q) => `let bc${q} = bBase + min(c0 + ${q}u, u.n - 1u) * u.k4;`).join('\n  ');
      body = `${cols.map((q) => `let b${q} = b[bc${q} + k];`).join(' ')}
    ${rows.map((r) => `{ let av = a[ar${r} + k]; acc${r} = acc${r} + vec4<f32>(dot(av, b0), dot(av, b1), dot(av, b2), dot(av, b3)); }`).join('\n    ')}`;
    } else {
      // Rows 4k..4k+3 of the stored [K, N] B, columns c0..c0+3.
      setup += `\n  let n4 = u.n / 4u; let bc = bBase + c0 / 4u;`;
      body = `${cols.map((q) => `let b${q} = b[bc + (4u * k + ${q}u) * n4];`).join(' ')}
    ${rows.map((r) => `{ let av = a[ar${r} + k]; acc${r} = fma(vec4<f32>(av.x), b0, fma(vec4<f32>(av.y), b1, fma(vec4<f32>(av.z), b2, fma(vec4<f32>(av.w), b3, acc${r})))); }`).join('\n    ')}`;
    }
  }
  return VEC4.kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let r0 = g.y * ${R}u;
  let c0 = g.x * 4u;
  if (r0 >= u.m || c0 >= u.n) { return; }
  let aBase = u.aOff + g.z * u.aBS;
  let bBase = u.bOff + g.z * u.bBS;
  ${setup}
  ${rows.map((r) => `var acc${r} = vec4<f32>(0.0);`).join(' ')}
  for (var k = 0u; k < u.k4; k = k + 1u) {
    ${body}
  }
  let cBase = u.cOff + g.z * u.m * u.n;
  ${rows.map((r) => `if (r0 + ${r}u < u.m) { ${cols.map((q) => `if (c0 + ${q}u < u.n) { let i = cBase + (r0 + ${r}u) * u.n + c0 + ${q}u; var v = acc${r}[${q}]; if (u.accumulate == 1u) { v = v + c[i]; } c[i] = v; }`).join(' ')} }`).join('\n  ')}
}`);
}

const SUBGROUP = uniforms({ m: 'u32', n: 'u32', k: 'u32', aBS: 'u32', bBS: 'u32', aOff: 'u32', bOff: 'u32', cOff: 'u32', accumulate: 'u32' });

/**
 * Matmul for software adapters whose subgroups are their 4-wide SIMD groups (SwiftShader):
 * C = op(A)·op(B) with any transposes, read in place (no packing), K of any size. Such adapters turn
 * every storage load whose address depends on the invocation into a 4-lane gather, so the kernel
 * is built to need few of them per multiply-add:
 * - a subgroup's 4 lanes own interleaved columns c0 + lane + 4j (j < 4) of the same 8 rows;
 * - the rows' A values are shared: for each block of 4 k's, lane q loads A[r, k0 + q] and the
 *   others take it with subgroupBroadcast (a register shuffle) instead of loading it themselves;
 * - `rows` (8, or fewer for short products such as decoding's one row per sequence) × 4 columns per
 *   lane: 32 accumulators, the largest block that measured faster (bigger ones spill registers).
 * Per 4 k's a lane makes 8 + 16 gathers for 128 multiply-adds, against 48 for the vec4 kernel,
 * which is about 1.3x slower on SwiftShader (measured worker-thread CPU time).
 * A workgroup of 64 threads (16 subgroups of 16 columns each) covers `colGroups`·16 columns and
 * (16 / colGroups)·rows rows; subgroupLaunch picks the arrangement that pads the product least (a
 * decoding step's few rows take one row block and wide column blocks). No early return: subgroup
 * operations need every lane, so out-of-range rows and columns read clamped indices and skip the store.
 * Offsets and batch strides are in elements.
 */
export function subgroup(transA: boolean, transB: boolean, rowsPerLane: number, colGroups: number) {
  const RB = rowsPerLane, CB = 4, rowBlocks = 16 / colGroups;
  const rows = range(RB), cols = range(CB);
  // Element (row r, k index kk) of op(A) and (k index kk, column j) of op(B), with clamped row/column bases.
  const aAt = (r: number, kk: string) => (transA ? `a[aBase + (${kk}) * u.m + ar${r}]` : `a[ar${r} + ${kk}]`);
  const bAt = (j: number, kk: string) => (transB ? `b[bc${j} + ${kk}]` : `b[bBase + (${kk}) * u.n + bc${j}]`);
  const block = (guard: boolean) => `
    ${rows.map((r) => (guard ? `let al${r} = select(0.0, ${aAt(r, 'min(k0 + lane, u.k - 1u)')}, k0 + lane < u.k);` : `let al${r} = ${aAt(r, 'k0 + lane')};`)).join(' ')}
    ${range(4).map((q) => `{
      let kq = ${guard ? `min(k0 + ${q}u, u.k - 1u)` : `k0 + ${q}u`};
      ${cols.map((j) => `let b${j} = ${bAt(j, 'kq')};`).join(' ')}
      ${rows.map((r) => `let a${r} = subgroupBroadcast(al${r}, ${q}u);`).join(' ')}
      ${rows.map((r) => cols.map((j) => `acc${r * CB + j} = fma(a${r}, b${j}, acc${r * CB + j});`).join(' ')).join('\n      ')}
    }`).join('\n    ')}`;
  return SUBGROUP.kernel(
    /* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let sg = lid / 4u;
  let r0 = wid.y * ${rowBlocks * RB}u + (sg / ${colGroups}u) * ${RB}u;
  let c0 = wid.x * ${colGroups * 4 * CB}u + (sg % ${colGroups}u) * ${4 * CB}u + lane;
  let aBase = u.aOff + wid.z * u.aBS;
  let bBase = u.bOff + wid.z * u.bBS;
  ${rows.map((r) => `let ar${r} = ${transA ? '' : 'aBase + '}min(r0 + ${r}u, u.m - 1u)${transA ? '' : ' * u.k'};`).join(' ')}
  ${cols.map((j) => `let bc${j} = ${transB ? 'bBase + ' : ''}min(c0 + ${4 * j}u, u.n - 1u)${transB ? ' * u.k' : ''};`).join(' ')}
  ${range(RB * CB).map((i) => `var acc${i} = 0.0;`).join(' ')}
  let kFull = u.k & ~3u;
  for (var k0 = 0u; k0 < kFull; k0 = k0 + 4u) {${block(false)}
  }
  if (kFull < u.k) {
    let k0 = kFull;${block(true)}
  }
  let cBase = u.cOff + wid.z * u.m * u.n;
  ${rows.map((r) => `if (r0 + ${r}u < u.m) { ${cols.map((j) => `if (c0 + ${4 * j}u < u.n) { let i = cBase + (r0 + ${r}u) * u.n + c0 + ${4 * j}u; var v = acc${r * CB + j}; if (u.accumulate == 1u) { v = v + c[i]; } c[i] = v; }`).join(' ')} }`).join('\n  ')}
}`,
    'enable subgroups;',
  );
}

/**
 * subgroup()'s arrangement for an [m, n] product and its grid: rows per lane 8, or the next power
 * of two at or above m when fewer (no rows computed twice); then the column groups that pad the
 * product least, 4 on ties.
 */
export function subgroupLaunch(m: number, n: number, batch: number) {
  const rowsPerLane = m >= 8 ? 8 : 2 ** Math.ceil(Math.log2(Math.max(m, 1)));
  const padded = (cg: number) => Math.ceil(m / ((16 / cg) * rowsPerLane)) * (16 / cg) * rowsPerLane * Math.ceil(n / (16 * cg)) * 16 * cg;
  const colGroups = [4, 8, 16, 2, 1].reduce((best, c) => (padded(c) < padded(best) ? c : best));
  const grid: [number, number, number] = [Math.ceil(n / (16 * colGroups)), Math.ceil(m / ((16 / colGroups) * rowsPerLane)), batch];
  return { rowsPerLane, colGroups, grid };
}
