import { describe, expect, test } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../engine/dtype.js';
import {
  DTYPE_BYTES,
  openSafetensorsBlob,
  openSafetensorsBuffer,
  openShardedSafetensors,
  SafetensorsError,
  serializeSafetensors,
  type Dtype,
  type TensorToWrite,
} from './safetensors.js';

// Independent reference: files assembled byte by byte from the format description (README of
// huggingface/safetensors), not by our writer.
const ascii = (s: string) => new TextEncoder().encode(s);
function u64le(n: number): Uint8Array {
  const b = new Uint8Array(8);
  for (let i = 0; i < 8; i++) b[i] = Math.floor(n / 2 ** (8 * i)) % 256;
  return b;
}
function cat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const arrs = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrs.reduce((s, a) => s + a.length, 0));
  let o = 0;
  for (const a of arrs) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}
/** A file with header JSON `json` (not padded unless the caller pads it) and data bytes `data`. */
function file(json: string, data: number[] | Uint8Array = []): Uint8Array {
  const h = ascii(json);
  return cat(u64le(h.length), h, data);
}
// f32 little-endian bytes of 0..5: 0.0 = 00000000, 1.0 = 0000803f, 2.0 = 00000040, 3.0 = 00004040, ...
const F32_0_TO_5 = [0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64];

async function problem(bytes: Uint8Array, name = 'bad.safetensors'): Promise<SafetensorsError> {
  try {
    await openSafetensorsBuffer(bytes, name);
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return e as SafetensorsError;
  }
  throw new Error('expected a SafetensorsError');
}

describe('writer matches the reference layout byte for byte', () => {
  // These layouts are the ones the Rust crate's own serialization tests expect.
  test('one F32 tensor whose header is already a multiple of 8 bytes', () => {
    const json = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(json.length).toBe(64);
    const out = serializeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    expect([...out]).toEqual([...file(json, F32_0_TO_5)]);
  });

  test('header padded with spaces to 8-byte alignment', () => {
    const json = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    expect(json.length).toBe(65);
    const out = serializeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    expect([...out]).toEqual([...file(json + ' '.repeat(7), F32_0_TO_5)]);
  });

  test('empty file, with and without __metadata__', () => {
    expect([...serializeSafetensors({})]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, ...ascii('{}      ')]);
    const withMeta = serializeSafetensors({}, { framework: 'pt' });
    expect([...withMeta]).toEqual([...file('{"__metadata__":{"framework":"pt"}}' + ' '.repeat(5))]);
  });

  test('orders by descending dtype alignment, then name', () => {
    const t = (dtype: Dtype, n: number): TensorToWrite => ({ dtype, shape: [n], data: new Uint8Array(n * DTYPE_BYTES[dtype]) });
    const out = serializeSafetensors({ b: t('U8', 3), a: t('U8', 1), h: t('F16', 2), w: t('F32', 1), i: t('I64', 1) });
    const n = Number(new DataView(out.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(out.subarray(8, 8 + n)));
    expect(Object.keys(header)).toEqual(['i', 'w', 'h', 'a', 'b']);
    expect(header.i.data_offsets).toEqual([0, 8]);
    expect(header.b.data_offsets).toEqual([17, 20]);
    expect(n % 8).toBe(0);
  });

  test('refuses data that disagrees with dtype x shape', () => {
    expect(() => serializeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }, undefined, 'out.safetensors')).toThrow(
      /out\.safetensors: tensor "w": F32 shape \[3\] needs 12 bytes, data has 8/,
    );
  });
});

describe('reader on hand-assembled files', () => {
  test('reads dtype, shape, metadata and values; header order may differ from data order', async () => {
    // Data: I32 [2,2] = 1,2,3,4 at [8,24); U8 [3] = 7,8,9 at [24,27); I64 [1] = -5 at [0,8).
    const json =
      '{"__metadata__":{"format":"pt"},"b":{"dtype":"I32","shape":[2,2],"data_offsets":[8,24]},' +
      '"c":{"dtype":"U8","shape":[3],"data_offsets":[24,27]},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}';
    const data = [251, 255, 255, 255, 255, 255, 255, 255, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 7, 8, 9];
    const r = await openSafetensorsBuffer(file(json, data), 'x.safetensors');
    expect(r.metadata).toEqual({ format: 'pt' });
    expect(r.names()).toEqual(['a', 'b', 'c']);
    const b = await r.read('b');
    expect(b.dtype).toBe('I32');
    expect(b.shape).toEqual([2, 2]);
    expect([...new Int32Array(b.data.slice().buffer)]).toEqual([1, 2, 3, 4]);
    expect(new BigInt64Array((await r.read('a')).data.slice().buffer)[0]).toBe(-5n);
    expect([...(await r.read('c')).data]).toEqual([7, 8, 9]);
  });

  test('every dtype of the task list parses with its element size', async () => {
    const sizes: [Dtype, number][] = [['F64', 8], ['F32', 4], ['F16', 2], ['BF16', 2], ['I64', 8], ['I32', 4], ['I16', 2], ['I8', 1], ['U8', 1], ['BOOL', 1]];
    let off = 0;
    const entries = sizes.map(([d, s]) => {
      const e = `"t${d}":{"dtype":"${d}","shape":[2],"data_offsets":[${off},${off + 2 * s}]}`;
      off += 2 * s;
      return e;
    });
    const r = await openSafetensorsBuffer(file(`{${entries.join(',')}}`, new Uint8Array(off)));
    for (const [d, s] of sizes) expect((await r.read(`t${d}`)).data.byteLength).toBe(2 * s);
  });

  test('scalars (shape []) and zero-size tensors', async () => {
    const json = '{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]}}';
    const r = await openSafetensorsBuffer(file(json, [0, 0, 128, 63]));
    expect([...(await r.readF32('s'))]).toEqual([1]);
    expect((await r.readF32('z')).length).toBe(0);
  });

  test('converts BF16, F16 and F64 tensors to f32', async () => {
    // bf16 0x3f80 = 1.0, 0xc040 = -3.0; f16 0x3c00 = 1.0, 0x3555 ~ 0.333; f64 0.5.
    const json =
      '{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"h":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},' +
      '"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}';
    const r = await openSafetensorsBuffer(file(json, [0x80, 0x3f, 0x40, 0xc0, 0x00, 0x3c, 0x55, 0x35, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f]));
    expect([...(await r.readF32('b'))]).toEqual([1, -3]);
    expect([...(await r.readF32('h'))]).toEqual([1, Math.fround(0.333251953125)]);
    expect([...(await r.readF32('d'))]).toEqual([0.5]);
  });

  test('reads from a Blob by slicing', async () => {
    const bytes = serializeSafetensors({ w: { dtype: 'F32', shape: [2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    const blob = new Blob([bytes]);
    const sliced: [number, number][] = [];
    const orig = blob.slice.bind(blob);
    blob.slice = (b?: number, e?: number) => (sliced.push([b!, e!]), orig(b, e));
    const r = await openSafetensorsBlob(blob, 'w.safetensors');
    expect([...(await r.readF32('w'))]).toEqual([0, 1, 2, 3, 4, 5]);
    const n = bytes.length - 24;
    expect(sliced).toEqual([[0, 8], [8, n], [n, n + 24]]);
  });
});

describe('round trip write -> read', () => {
  test('all dtypes, odd sizes and metadata survive', async () => {
    const rand = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 73 + 11) % 256);
    const tensors: Record<string, TensorToWrite> = {
      'model.embed_tokens.weight': { dtype: 'BF16', shape: [5, 3], data: rand(30) },
      'x.f64': { dtype: 'F64', shape: [3], data: rand(24) },
      'x.i8': { dtype: 'I8', shape: [7], data: rand(7) },
      'x.bool': { dtype: 'BOOL', shape: [1, 1, 3], data: Uint8Array.from([1, 0, 1]) },
      'x.i16': { dtype: 'I16', shape: [3], data: rand(6) },
      'x.f32': { dtype: 'F32', shape: [2, 2], data: new Float32Array([1.5, -2, 3e-8, 1e30]) },
    };
    const out = serializeSafetensors(tensors, { format: 'pt', note: 'héllo' });
    const r = await openSafetensorsBuffer(out);
    expect(r.metadata).toEqual({ format: 'pt', note: 'héllo' });
    expect(new Set(r.names())).toEqual(new Set(Object.keys(tensors)));
    for (const [name, t] of Object.entries(tensors)) {
      const got = await r.read(name);
      expect(got.dtype).toBe(t.dtype);
      expect(got.shape).toEqual(t.shape);
      expect([...got.data]).toEqual([...new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)]);
      // Data of every tensor starts at a file offset that is a multiple of its element size.
      expect((r.header.dataStart + r.info(name).dataOffsets[0]) % DTYPE_BYTES[t.dtype]).toBe(0);
    }
    expect([...(await r.readF32('x.f32'))]).toEqual([1.5, -2, Math.fround(3e-8), Math.fround(1e30)]);
  });

  test('a file inside a larger Node Buffer at an odd offset (a ZIP entry) reads the same values', async () => {
    const values = new Float32Array([0.25, -7, 1e-3, 42, 5, 6, 7]);
    const file = serializeSafetensors({ w: { dtype: 'F32', shape: [7], data: values }, h: { dtype: 'F16', shape: [1], data: Uint8Array.from([0, 60]) } });
    for (const at of [1, 2, 3, 5]) {
      // Buffer.slice shares memory, so misaligned data must be copied another way.
      const inZip = Buffer.concat([Buffer.alloc(at, 7), Buffer.from(file), Buffer.alloc(9, 1)]).subarray(at, at + file.length);
      const r = await openSafetensorsBuffer(inZip);
      expect([...(await r.readF32('w'))]).toEqual([...values]);
      expect([...(await r.readF32('h'))]).toEqual([1]);
    }
  });
});

describe('malformed files raise errors naming file, tensor and problem', () => {
  const ok = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const data8 = new Uint8Array(8);

  test('shorter than 8 bytes', async () => {
    expect((await problem(Uint8Array.from([1, 0, 0]))).message).toMatch(/bad\.safetensors: file is 3 bytes, shorter than the 8-byte header length/);
  });
  test('header length beyond the file', async () => {
    const bytes = cat(u64le(1000), ascii(ok), data8);
    expect((await problem(bytes)).message).toMatch(/bad\.safetensors: header length 1000 goes beyond the end of the \d+-byte file/);
  });
  test('header length above the 100 MB limit', async () => {
    expect((await problem(cat(u64le(2 ** 40), ascii(ok)))).message).toMatch(/exceeds the 100000000-byte limit/);
  });
  test('non-JSON header', async () => {
    expect((await problem(file('{"w":{"dtype":', data8))).message).toMatch(/bad\.safetensors: header is not valid JSON/);
  });
  test('invalid UTF-8 header', async () => {
    expect((await problem(cat(u64le(2), [0x7b, 0xff]))).message).toMatch(/header is not valid UTF-8/);
  });
  test('header that is JSON but not an object', async () => {
    expect((await problem(file('[1,2]'))).message).toMatch(/header is not a JSON object/);
  });
  test('unknown dtype', async () => {
    const e = await problem(file('{"w":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}}', data8));
    expect(e.tensor).toBe('w');
    expect(e.message).toBe('bad.safetensors: tensor "w": unknown dtype "F128"');
  });
  test('shape / size mismatch', async () => {
    const e = await problem(file('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', data8));
    expect(e.message).toBe('bad.safetensors: tensor "w": F32 shape [3] needs 12 bytes but data_offsets [0, 8] hold 8');
  });
  test('overlapping offsets', async () => {
    const e = await problem(
      file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data8),
    );
    expect(e.tensor).toBe('b');
    expect(e.message).toMatch(/overlap the previous tensor, which ends at 8/);
  });
  test('gap between tensors', async () => {
    const e = await problem(
      file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', new Uint8Array(12)),
    );
    expect(e.tensor).toBe('b');
    expect(e.message).toMatch(/leave a gap after byte 4/);
  });
  test('first tensor not at offset 0', async () => {
    const e = await problem(file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data8));
    expect(e.message).toMatch(/tensor "a": .*leave a gap after byte 0/);
  });
  test('end before begin', async () => {
    expect((await problem(file('{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', data8))).message).toMatch(
      /tensor "a": data_offsets \[8, 0\] end before they begin/,
    );
  });
  test('offsets beyond the data section (truncated file)', async () => {
    const e = await problem(file(ok, new Uint8Array(6)));
    expect(e.message).toBe('bad.safetensors: tensor "w": data_offsets [0, 8] go beyond the 6-byte data section');
  });
  test('trailing bytes not covered by any tensor', async () => {
    expect((await problem(file(ok, new Uint8Array(10)))).message).toMatch(/tensors cover 8 bytes but the data section has 10/);
  });
  test('malformed shape and data_offsets', async () => {
    expect((await problem(file('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}', data8))).message).toMatch(/tensor "w": shape \[-1\] is not/);
    expect((await problem(file('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', data8))).message).toMatch(/tensor "w": data_offsets \[0\] are not/);
    expect((await problem(file('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"a":1}}', data8))).message).toMatch(
      /__metadata__ value of "a" is not a string/,
    );
  });
  test('missing tensor and wrong shape', async () => {
    const r = await openSafetensorsBuffer(file(ok, data8), 'm.safetensors');
    expect(() => r.info('lm_head.weight')).toThrow('m.safetensors: tensor "lm_head.weight": missing');
    await expect(r.read('lm_head.weight')).rejects.toThrow(SafetensorsError);
    expect(r.expectTensor('w', [2]).dtype).toBe('F32');
    expect(() => r.expectTensor('w', [1, 2])).toThrow('m.safetensors: tensor "w": shape [2] in the file, expected [1,2]');
  });
  test('non-float tensor asked as f32', async () => {
    const r = await openSafetensorsBuffer(file('{"i":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}', data8), 'i.safetensors');
    await expect(r.readF32('i')).rejects.toThrow('i.safetensors: tensor "i": dtype I32 is not a floating-point type');
  });
});

describe('sharded checkpoints', () => {
  const shardA = serializeSafetensors({ a: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
  const shardB = serializeSafetensors({ b: { dtype: 'F32', shape: [1], data: new Float32Array([2]) } });
  const open = (f: string) => openSafetensorsBuffer(({ 'A.safetensors': shardA, 'B.safetensors': shardB } as Record<string, Uint8Array>)[f]!, f);

  test('resolves each tensor to its shard', async () => {
    const s = await openShardedSafetensors('{"metadata":{"total_size":8},"weight_map":{"a":"A.safetensors","b":"B.safetensors"}}', open);
    expect(s.names()).toEqual(['a', 'b']);
    expect([...(await s.readF32('b'))]).toEqual([2]);
    expect(s.expectTensor('a', [1]).dtype).toBe('F32');
    expect(() => s.info('c')).toThrow('model.safetensors.index.json: tensor "c": missing: not in the weight_map');
  });
  test('index naming a tensor its shard lacks', async () => {
    await expect(openShardedSafetensors('{"weight_map":{"a":"A.safetensors","b":"A.safetensors"}}', open)).rejects.toThrow(
      'A.safetensors: tensor "b": missing: model.safetensors.index.json places it in this shard',
    );
  });
  test('malformed index', async () => {
    await expect(openShardedSafetensors('{"weight_map":', open)).rejects.toThrow(/index is not valid JSON/);
    await expect(openShardedSafetensors('{}', open)).rejects.toThrow(/index has no weight_map object/);
  });
});

describe('half-precision conversion', () => {
  test('f16 decoding of known bit patterns (IEEE 754 binary16)', () => {
    const bits = Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555, 0x7c00, 0xfc00, 0x8000]);
    expect([...f16ToF32(bits)]).toEqual([1, -2, 65504, 2 ** -24, 2 ** -14, Math.fround(0.333251953125), Infinity, -Infinity, -0]);
    expect(f16ToF32(Uint16Array.from([0x7e00]))[0]).toBeNaN();
  });
  test('f32 -> f16 rounds to nearest even, with overflow and subnormals', () => {
    const v = Float32Array.from([1, -2, 65504, 65519, 65520, 2 ** -24, 2 ** -25, 2 ** -25 * 1.5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1e-10, NaN]);
    expect([...f32ToF16(v)].map((x) => x.toString(16))).toEqual(
      ['3c00', 'c000', '7bff', '7bff', '7c00', '1', '0', '1', '3c00', '3c02', '0', '7e00'],
    );
  });
  test('every finite f16 survives f16 -> f32 -> f16', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00);
    const back = f32ToF16(f16ToF32(all));
    expect(all.findIndex((h, i) => back[i] !== h)).toBe(-1);
  });
  test('bf16: exact decode and round-to-nearest-even encode', () => {
    expect([...bf16ToF32(Uint16Array.from([0x3f80, 0xc040, 0x7f80, 0x0001]))]).toEqual([1, -3, Infinity, 2 ** -133]);
    // 1 + 2^-8 is a tie between 0x3f80 and 0x3f81: even wins; 1 + 3*2^-8 rounds up to 0x3f82.
    const v = Float32Array.from([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -3, NaN]);
    expect([...f32ToBf16(v)].map((x) => x.toString(16))).toEqual(['3f80', '3f80', '3f82', 'c040', '7fc0']);
  });
});
