/**
 * A user block in front of an HDF5 file made without one (h5wasm has no option to reserve
 * it at creation: its File takes only track_order and libver, and H5Pset_userblock is
 * not exported). HDF5 addresses are relative to the superblock's base address, so the
 * file stays valid when moved by N bytes provided the superblock says so: base address
 * += N, end-of-file address += N (it is stored as base + relative EOF), and, for
 * superblock versions 2 and 3, the Jenkins lookup3 checksum recomputed. This is the
 * layout h5py writes with userblock_size=N (and what h5jam produces).
 */

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Returns `header` (padded with zeros to `size`) followed by the relocated HDF5 file. */
export function withUserBlock(hdf5: Uint8Array, header: Uint8Array, size = 512): Uint8Array {
  if (!(size >= 512 && (size & (size - 1)) === 0)) throw new Error(`user block size must be a power of 2 >= 512, got ${size}`);
  if (header.length > size) throw new Error(`user block text of ${header.length} bytes does not fit in ${size}`);
  for (let i = 0; i < SIGNATURE.length; i++) {
    if (hdf5[i] !== SIGNATURE[i]) throw new Error('not an HDF5 file with its superblock at offset 0');
  }
  const out = new Uint8Array(size + hdf5.length);
  out.set(header, 0);
  out.set(hdf5, size);
  const sb = new DataView(out.buffer, out.byteOffset + size, hdf5.length);
  const version = sb.getUint8(8);
  let sizeOfOffsets: number;
  let baseAt: number;
  if (version === 0 || version === 1) {
    sizeOfOffsets = sb.getUint8(13);
    baseAt = version === 0 ? 24 : 28;
  } else if (version === 2 || version === 3) {
    sizeOfOffsets = sb.getUint8(9);
    baseAt = 12;
  } else {
    throw new Error(`unsupported HDF5 superblock version ${version}`);
  }
  if (sizeOfOffsets !== 8) throw new Error(`unsupported HDF5 size of offsets ${sizeOfOffsets}`);
  // v0/1: base, free-space index, EOF, driver info; v2/3: base, extension, EOF, root.
  const eofAt = baseAt + 16;
  sb.setBigUint64(baseAt, sb.getBigUint64(baseAt, true) + BigInt(size), true);
  sb.setBigUint64(eofAt, sb.getBigUint64(eofAt, true) + BigInt(size), true);
  if (version >= 2) {
    const checksumAt = baseAt + 32;
    const bytes = new Uint8Array(out.buffer, out.byteOffset + size, checksumAt);
    sb.setUint32(checksumAt, lookup3(bytes, 0), true);
  }
  return out;
}

const rot = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/** Bob Jenkins' lookup3 hashlittle, as HDF5's H5_checksum_lookup3. */
export function lookup3(key: Uint8Array, initval: number): number {
  let length = key.length;
  let a = (0xdeadbeef + length + initval) >>> 0;
  let b = a;
  let c = a;
  let k = 0;
  const word = (i: number): number => (key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24)) >>> 0;
  while (length > 12) {
    a = (a + word(k)) >>> 0;
    b = (b + word(k + 4)) >>> 0;
    c = (c + word(k + 8)) >>> 0;
    // mix(a, b, c)
    a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0;
    length -= 12;
    k += 12;
  }
  if (length === 0) return c;
  // The last 1 to 12 bytes, zero-padded, little-endian into a, b, c.
  const tail = new Uint8Array(12);
  tail.set(key.subarray(k, k + length));
  const t = (i: number): number => (tail[i] | (tail[i + 1] << 8) | (tail[i + 2] << 16) | (tail[i + 3] << 24)) >>> 0;
  a = (a + t(0)) >>> 0;
  b = (b + t(4)) >>> 0;
  c = (c + t(8)) >>> 0;
  // final(a, b, c)
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0;
  return c;
}
