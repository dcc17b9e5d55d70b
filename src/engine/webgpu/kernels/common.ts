/**
 * WGSL shared by the kernel modules of this folder, one module per op holding its forward and
 * backward kernels for both kernel families (Family). Conventions shared by all kernels:
 * - binding 0 is the kernel's uniform block, declared once with uniforms() (uniforms.ts); storage
 *   buffers follow in the order the backend binds them;
 * - 1-D kernels use 256 threads and a 2-D grid of workgroups (index = (wid.y·nwg.x + wid.x)·256 + lid),
 *   so that more than 65535 workgroups fit; row kernels use one workgroup of 256 threads per row
 *   ('gpu') or one thread per row in workgroups of 64 ('software', ROW64);
 * - infinities are never written or compared: "minus infinity" is -3.0e38 (compilers may assume finite math).
 */

/**
 * Kernel families: 'software' for CPU-like adapters (SwiftShader and kin), without workgroup memory,
 * barriers or dynamically indexed private arrays; 'gpu', workgroup-tiled with workgroup reductions.
 */
export type Family = 'software' | 'gpu';

export const WG = 256;
export const NEG_INF = '-3.0e38';

export const INDEX_1D = `@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32`;
export const I = `let i = (wid.y * nwg.x + wid.x) * ${WG}u + lid;`;
export const ROW = `let row = wid.y * nwg.x + wid.x;`;

/** Workgroup tree reductions over 256 threads; call from uniform control flow only. */
export const REDUCE_FNS = /* wgsl */ `
var<workgroup> red: array<f32, ${WG}>;
fn wgSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wgMax(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

/*
 * Row kernels for software adapters (SwiftShader): one thread per row in workgroups of 64, walking
 * the row serially. The workgroup kernels spend most of their time in the 8 barriers of each tree
 * reduction on such adapters (a 1152 x 64 row sum took 260 ms against under 1 ms this way).
 */
export const ROW64 = `@compute @workgroup_size(64) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.y * nwg.x + wid.x) * 64u + lid;`;

/** Strided index decomposition over up to 8 dims: sets ia / ib from the flat output index i. */
export const STRIDED = (sa: string, sb: string) => /* wgsl */ `
  var rem = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(u.rank) - 1; d >= 0; d = d - 1) {
    let k = u32(d);
    let s = u.shape[k / 4u][k % 4u];
    let c = rem % s;
    rem = rem / s;
    ia = ia + c * u.${sa}[k / 4u][k % 4u];
    ib = ib + c * u.${sb}[k / 4u][k % 4u];
  }`;

export const range = (n: number) => [...Array(n).keys()];
