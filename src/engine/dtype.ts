/**
 * Element types of engine tensors.
 * - f32: the compute type of every float kernel.
 * - f16: storage only (halves the bytes of weights and activations); kernels read it through WGSL's
 *   core `unpack2x16float`, so it works on every adapter, with or without the `shader-f16` feature.
 *   Buffers hold two halves per 32-bit word (element count padded to even).
 * - i32 / u32: token ids, positions and masks.
 */
export type DType = 'f32' | 'f16' | 'i32' | 'u32';

/** Bytes a buffer of `n` elements of `dtype` occupies (f16 rounded up to whole 32-bit words). */
export function storageBytes(n: number, dtype: DType): number {
  return dtype === 'f16' ? Math.ceil(n / 2) * 4 : n * 4;
}

/** Number of elements of a shape (1 for a scalar `[]`). @throws on negative or non-integer dims. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape.join(', ')}]: dims must be non-negative integers`);
    n *= d;
  }
  return n;
}

/** Row-major strides of a contiguous tensor of `shape`, in elements. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * Rounds a float to the nearest IEEE 754 binary16 value (round-half-to-even), returned as a number.
 * Used by the CPU backend to emulate f16 storage exactly as the GPU's pack2x16float does.
 */
export function roundToF16(x: number): number {
  if (!Number.isFinite(x)) return x;
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  if (a < 2 ** -24 / 2) return 0 * Math.sign(x);
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  const ulp = 2 ** (e - 10);
  const q = a / ulp;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q) - 0.5) < 1e-12 && r % 2 === 1) r -= 1; // ties to even
  return Math.sign(x) * r * ulp;
}

/** IEEE 754 binary16 bits of x, round-half-to-even (as WGSL pack2x16float). */
export function f16Bits(x: number): number {
  const v = roundToF16(x);
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24); // subnormal
  const e = Math.floor(Math.log2(a));
  const mant = Math.round((a / 2 ** e - 1) * 1024);
  return sign | ((e + 15) << 10) | mant;
}

/** The number encoded by binary16 bits h. */
export function f16FromBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

// Whole arrays (safetensors F16 / BF16 tensors, fixtures), over the scalar converters above.

/** BF16 bit patterns -> Float32Array (exact: bf16 is the top half of an f32). */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
  return new Float32Array(out.buffer);
}

/** IEEE 754 binary16 bit patterns -> Float32Array (exact, including subnormals, inf and NaN). */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16FromBits(bits[i]);
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Float32 values -> BF16 bit patterns, rounding to nearest even (as torch's `.to(torch.bfloat16)`). */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32Scratch[0] = values[i];
    const u = u32Scratch[0];
    if ((u & 0x7fffffff) > 0x7f800000) out[i] = (u >>> 16) | 0x40; // keep NaN a (quiet) NaN
    else out[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** Float32 values -> IEEE binary16 bit patterns, rounding to nearest even; overflow gives +-inf. */
export function f32ToF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f16Bits(values[i]);
  return out;
}
