/**
 * ZIP archives without compression (method 0, "stored"), enough to hand a model folder to the user
 * as one download and to read it back: safetensors weights do not compress, and one file avoids the
 * browser's "download multiple files" prompt. No ZIP64: archives and entries stay below 4 GiB.
 */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, the one ZIP and PNG use) of `data`. */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const LIMIT = 0xffffffff;
// Local header: 30 bytes + name; central directory entry: 46 bytes + name; end record: 22 bytes.
const LOCAL = 0x04034b50, CENTRAL = 0x02014b50, END = 0x06054b50;

/**
 * A ZIP archive of `files` (relative paths with `/` separators, UTF-8 names), entries stored in map order.
 * @throws when the archive would need ZIP64 (an entry or the whole archive of 4 GiB or more)
 */
export function writeZip(files: Map<string, Uint8Array>): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  const entries = [...files].map(([name, data]) => ({ name: enc.encode(name), data, crc: crc32(data), offset: 0 }));
  const centralSize = entries.reduce((n, e) => n + 46 + e.name.length, 0);
  const total = entries.reduce((n, e) => n + 30 + e.name.length + e.data.length, 0) + centralSize + 22;
  if (total > LIMIT || entries.length > 0xffff) throw new Error(`zip: ${entries.length} files, ${total} bytes: too large for a ZIP without ZIP64 (4 GiB, 65535 files)`);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  let at = 0;
  for (const e of entries) {
    e.offset = at;
    v.setUint32(at, LOCAL, true);
    v.setUint16(at + 4, 20, true); // version needed: 2.0
    v.setUint16(at + 6, 0x0800, true); // flag 11: names are UTF-8
    v.setUint16(at + 8, 0, true); // stored
    v.setUint32(at + 10, 0x00210000, true); // DOS time 00:00, date 1980-01-01: reproducible archives
    v.setUint32(at + 14, e.crc, true);
    v.setUint32(at + 18, e.data.length, true);
    v.setUint32(at + 22, e.data.length, true);
    v.setUint16(at + 26, e.name.length, true);
    v.setUint16(at + 28, 0, true);
    out.set(e.name, at + 30);
    out.set(e.data, at + 30 + e.name.length);
    at += 30 + e.name.length + e.data.length;
  }
  const central = at;
  for (const e of entries) {
    v.setUint32(at, CENTRAL, true);
    v.setUint16(at + 4, 20, true);
    v.setUint16(at + 6, 20, true);
    v.setUint16(at + 8, 0x0800, true);
    v.setUint16(at + 10, 0, true);
    v.setUint32(at + 12, 0x00210000, true);
    v.setUint32(at + 16, e.crc, true);
    v.setUint32(at + 20, e.data.length, true);
    v.setUint32(at + 24, e.data.length, true);
    v.setUint16(at + 28, e.name.length, true);
    // extra, comment, disk, internal and external attributes: 0
    v.setUint32(at + 42, e.offset, true);
    out.set(e.name, at + 46);
    at += 46 + e.name.length;
  }
  v.setUint32(at, END, true);
  v.setUint16(at + 8, entries.length, true);
  v.setUint16(at + 10, entries.length, true);
  v.setUint32(at + 12, centralSize, true);
  v.setUint32(at + 16, central, true);
  return out;
}

/**
 * The files of a ZIP archive by path (folders skipped), read through its central directory. Entries
 * must be stored (what {@link writeZip} and `zip -0` write); their CRC-32 is checked.
 * @throws naming the entry for compressed or corrupt entries, and for data that is not a ZIP archive
 */
export function readZip(zip: Uint8Array, what = 'zip'): Map<string, Uint8Array> {
  const v = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let end = -1;
  // The end record sits in the last 22 bytes plus an archive comment of at most 65535 bytes.
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (v.getUint32(i, true) === END) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error(`${what}: not a ZIP archive (no end of central directory record)`);
  const count = v.getUint16(end + 10, true);
  let at = v.getUint32(end + 16, true);
  const dec = new TextDecoder();
  const files = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    if (at + 46 > zip.length || v.getUint32(at, true) !== CENTRAL) throw new Error(`${what}: central directory entry ${i} is corrupt`);
    const method = v.getUint16(at + 10, true);
    const crc = v.getUint32(at + 16, true);
    const size = v.getUint32(at + 20, true);
    const nameLen = v.getUint16(at + 28, true), extraLen = v.getUint16(at + 30, true), commentLen = v.getUint16(at + 32, true);
    const offset = v.getUint32(at + 42, true);
    const name = dec.decode(zip.subarray(at + 46, at + 46 + nameLen));
    at += 46 + nameLen + extraLen + commentLen;
    if (name.endsWith('/')) continue;
    if (method !== 0) throw new Error(`${what}: ${name} is compressed (method ${method}); the lab reads stored entries only: unzip the archive and pick its files instead`);
    if (offset + 30 > zip.length || v.getUint32(offset, true) !== LOCAL) throw new Error(`${what}: ${name}: local header is corrupt`);
    const start = offset + 30 + v.getUint16(offset + 26, true) + v.getUint16(offset + 28, true);
    if (start + size > zip.length) throw new Error(`${what}: ${name} is truncated`);
    const data = zip.subarray(start, start + size);
    if (crc32(data) !== crc) throw new Error(`${what}: ${name} is corrupt (CRC-32 mismatch)`);
    files.set(name, data);
  }
  return files;
}
