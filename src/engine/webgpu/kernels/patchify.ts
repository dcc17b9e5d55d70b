/** [B, C, H, W] <-> [B, patches, C·p·p], or back with inverse (also the backward); one thread per pixel. */
import { I, INDEX_1D, WG } from './common.js';
import { uniforms } from './uniforms.js';

export const patchify = uniforms({ b: 'u32', c: 'u32', h: 'u32', w: 'u32', p: 'u32', inverse: 'u32' }).kernel(/* wgsl */ `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${WG}) fn main(${INDEX_1D}) {
  ${I}
  if (i >= u.b * u.c * u.h * u.w) { return; }
  let xx = i % u.w;
  let y = (i / u.w) % u.h;
  let ci = (i / (u.w * u.h)) % u.c;
  let bi = i / (u.w * u.h * u.c);
  let gw = u.w / u.p;
  let pidx = (y / u.p) * gw + xx / u.p;
  let within = (ci * u.p + y % u.p) * u.p + xx % u.p;
  let pat = (bi * (u.h / u.p) * gw + pidx) * u.c * u.p * u.p + within;
  if (u.inverse == 1u) { o[i] = x[pat]; } else { o[pat] = x[i]; }
}`);
