/**
 * Uniform blocks declared once: a kernel's field list gives both its WGSL `struct U` (bound as `u`
 * at binding 0) and the host packing of one dispatch's values, so the two cannot drift apart.
 */
import { UNIFORM_SLOT } from '../context.js';

/** 4-byte scalars, or `arr8`: up to 8 u32 as array<vec4<u32>, 2> (uniform arrays need a 16-byte stride). */
export type FieldType = 'u32' | 'f32' | 'arr8';
export type Fields = Record<string, FieldType>;
/** One dispatch's values; a u32 field also takes a boolean (1 or 0). */
export type Values<F extends Fields> = {
  readonly [K in keyof F]: F[K] extends 'arr8' ? readonly number[] : F[K] extends 'u32' ? number | boolean : number;
};

/** A WGSL source (one pipeline per distinct source, see context.ts) with the packing of its uniforms. */
export interface Kernel<F extends Fields = Fields> {
  readonly code: string;
  pack(values: Values<F>): ArrayBuffer;
}

export interface Uniforms<F extends Fields> {
  /** `struct U { ... }` and its binding 0, `u`. */
  readonly wgsl: string;
  pack(values: Values<F>): ArrayBuffer;
  /** The kernel whose source is `directives` (`enable` lines, which must come first), this block, then `body`. */
  kernel(body: string, directives?: string): Kernel<F>;
}

const WGSL_TYPE: Record<FieldType, string> = { u32: 'u32', f32: 'f32', arr8: 'array<vec4<u32>, 2>' };

/**
 * Declares a uniform block; fields are laid out in order with WGSL's alignment rules (arr8 on 16
 * bytes) and the block padded to 16 bytes.
 * @throws when the block exceeds the context's per-dispatch uniform slot
 */
export function uniforms<F extends Fields>(fields: F): Uniforms<F> {
  let at = 0;
  const layout = Object.entries(fields).map(([name, type]) => {
    if (type === 'arr8') at = Math.ceil(at / 16) * 16;
    const field = { name, type, at };
    at += type === 'arr8' ? 32 : 4;
    return field;
  });
  const bytes = Math.max(16, Math.ceil(at / 16) * 16);
  if (bytes > UNIFORM_SLOT) throw new Error(`a uniform block of ${bytes} bytes exceeds the ${UNIFORM_SLOT}-byte slot`);
  const wgsl = `struct U { ${layout.map((f) => `${f.name}: ${WGSL_TYPE[f.type]}`).join(', ')} }
@group(0) @binding(0) var<uniform> u: U;`;
  const pack = (values: Values<F>): ArrayBuffer => {
    const view = new DataView(new ArrayBuffer(bytes));
    for (const { name, type, at } of layout) {
      const v = values[name];
      if (type === 'f32') view.setFloat32(at, v as number, true);
      else if (type === 'u32') view.setUint32(at, Number(v) >>> 0, true);
      else {
        const arr = v as readonly number[];
        if (arr.length > 8) throw new Error(`tensors of rank ${arr.length} are above the supported 8 dims`);
        arr.forEach((x, i) => view.setUint32(at + 4 * i, x >>> 0, true));
      }
    }
    return view.buffer;
  };
  return { wgsl, pack, kernel: (body, directives) => ({ code: `${directives ? `${directives}\n` : ''}${wgsl}\n${body}`, pack }) };
}
