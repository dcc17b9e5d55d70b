/** Stored ZIP archives: the CRC-32 check value, round trips, an archive written by Info-ZIP `zip -0`, and clear errors. */
import { describe, expect, test } from 'vitest';
import { crc32, readZip, writeZip } from './zip.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b64 = (s: string) => Uint8Array.from(Buffer.from(s, 'base64'));

// `zip -0 -X stored.zip a.txt sub/b.json sub/` (Info-ZIP 3.0): two files and a folder entry.
const INFO_ZIP_STORED = 'UEsDBAoAAAAAACIMdV0gMDo2BgAAAAYAAAAFAAAAYS50eHRoZWxsbwpQSwMECgAAAAAAIgx1XVxZ6zsHAAAABwAAAAoAAABzdWIvYi5qc29ueyJ4IjoxfVBLAwQKAAAAAAAiDHVdAAAAAAAAAAAAAAAABAAAAHN1Yi9QSwECHgMKAAAAAAAiDHVdIDA6NgYAAAAGAAAABQAAAAAAAAAAAAAApIEAAAAAYS50eHRQSwECHgMKAAAAAAAiDHVdXFnrOwcAAAAHAAAACgAAAAAAAAAAAAAApIEpAAAAc3ViL2IuanNvblBLAQIeAwoAAAAAACIMdV0AAAAAAAAAAAAAAAAEAAAAAAAAAAAAEADtQVgAAABzdWIvUEsFBgAAAAADAAMAnQAAAHoAAAAAAA==';
// `zip -9 -X deflated.zip c.txt`: one deflated entry.
const INFO_ZIP_DEFLATED = 'UEsDBBQAAgAIACIMdV03DXl5BgAAADgAAAAFAAAAYy50eHRLTCQPAABQSwECHgMUAAIACAAiDHVdNw15eQYAAAA4AAAABQAAAAAAAAABAAAApIEAAAAAYy50eHRQSwUGAAAAAAEAAQAzAAAAKQAAAAAA';

describe('zip', () => {
  test('crc32 has the standard check value', () => {
    expect(crc32(enc.encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  test('writeZip -> readZip returns every file byte for byte, in order, with UTF-8 names', () => {
    const big = new Uint8Array(100_000).map((_, i) => (i * 31) & 255);
    const files = new Map([['config.json', enc.encode('{"a":1}')], ['base/model.safetensors', big], ['empty', new Uint8Array(0)], ['é.txt', enc.encode('x')]]);
    const back = readZip(writeZip(files));
    expect([...back.keys()]).toEqual([...files.keys()]);
    for (const [k, v] of files) expect(Buffer.from(back.get(k)!).equals(Buffer.from(v))).toBe(true);
  });

  test('reads an archive written by Info-ZIP, skipping folder entries', () => {
    const files = readZip(b64(INFO_ZIP_STORED));
    expect([...files.keys()]).toEqual(['a.txt', 'sub/b.json']);
    expect(dec.decode(files.get('a.txt'))).toBe('hello\n');
    expect(dec.decode(files.get('sub/b.json'))).toBe('{"x":1}');
  });

  test('errors name the archive and the entry', () => {
    expect(() => readZip(b64(INFO_ZIP_DEFLATED), 'm.zip')).toThrow(/m\.zip: c\.txt is compressed.*unzip the archive/);
    expect(() => readZip(enc.encode('not a zip at all, just some text'), 'm.zip')).toThrow(/m\.zip: not a ZIP archive/);
    const zip = writeZip(new Map([['w.bin', new Uint8Array([1, 2, 3, 4])]]));
    zip[30 + 5] ^= 0xff; // first data byte of w.bin
    expect(() => readZip(zip, 'm.zip')).toThrow(/m\.zip: w\.bin is corrupt \(CRC-32/);
  });
});
