/**
 * A small, dependency-free BMP reader (to grey 8-bit) and 8-bit grey BMP writer.
 *
 * sharp/libvips cannot read BMP, and PIV series such as Karman are 8-bit indexed BMP
 * files whose palette must be applied. Supported: BITMAPCOREHEADER (12), BITMAPINFOHEADER
 * (40) and its V2/V3/V4/V5 extensions (52/56/108/124); 1/4/8-bit indexed, 16/32-bit
 * (BI_RGB or BI_BITFIELDS) and 24-bit BGR; bottom-up and top-down rows. RLE, JPEG and PNG
 * compressions are refused with a clear error.
 */

/** A malformed or unsupported BMP file; the message names the file and the problem. */
export class BmpError extends Error {
  readonly path: string;
  /** What is wrong, without the path (for callers that wrap the error). */
  readonly reason: string;

  constructor(path: string, reason: string) {
    super(`Invalid BMP file ${path}: ${reason}`);
    this.name = 'BmpError';
    this.path = path;
    this.reason = reason;
  }
}

/** Grey 8-bit image decoded from a BMP file (row-major, top row first). */
export type BmpImage = { width: number; height: number; data: Uint8Array };

/** What the headers say, validated against the file size. */
export type BmpHeader = {
  width: number;
  height: number;
  /** Rows stored top row first (negative height in the file). */
  topDown: boolean;
  bitCount: number;
  /** 0 = BI_RGB, 3 = BI_BITFIELDS, 6 = BI_ALPHABITFIELDS. */
  compression: number;
  dataOffset: number;
  /** Bytes per stored row, padded to 4 bytes. */
  stride: number;
  /** Offset and entry count/size of the palette (indexed images only). */
  paletteOffset: number;
  paletteEntries: number;
  paletteEntrySize: 3 | 4;
  /** Channel masks for 16/32-bit images: red, green, blue. */
  masks: [number, number, number] | undefined;
};

const FILE_HEADER_SIZE = 14;
/** Enough bytes for the file header plus the largest (V5) info header and its masks. */
export const BMP_HEADER_BYTES = FILE_HEADER_SIZE + 124 + 16;

const COMPRESSION_NAMES: Record<number, string> = {
  1: 'BI_RLE8',
  2: 'BI_RLE4',
  4: 'BI_JPEG',
  5: 'BI_PNG',
  11: 'BI_CMYK',
  12: 'BI_CMYKRLE8',
  13: 'BI_CMYKRLE4',
};

/** True when the bytes start with the BMP magic "BM". */
export function isBmp(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x42 && head[1] === 0x4d;
}

/**
 * Grey value of a colour: exact when r == g == b (so grey images round-trip), otherwise
 * Rec. 601 luma on the stored values, rounded.
 */
export function greyOf(r: number, g: number, b: number): number {
  if (r === g && g === b) return r;
  return Math.round(0.299 * r + 0.587 * g + 0.114 * b);
}

/**
 * Parses and validates the headers. `head` needs at least the first BMP_HEADER_BYTES
 * bytes (or the whole file if shorter); `fileSize` is the full size of the file, used to
 * check that palette and pixel data lie inside it.
 */
export function parseBmpHeader(head: Uint8Array, fileSize: number, path: string): BmpHeader {
  const fail = (reason: string): never => {
    throw new BmpError(path, reason);
  };
  if (!isBmp(head)) fail('bad magic (expected "BM" at the start of the file)');
  if (head.length < FILE_HEADER_SIZE + 4) fail(`file is truncated (${fileSize} bytes, too short for the headers)`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const dataOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);
  const known = [12, 40, 52, 56, 64, 108, 124];
  if (!known.includes(headerSize)) fail(`unsupported info header size ${headerSize}`);
  if (head.length < FILE_HEADER_SIZE + headerSize) fail(`file is truncated (${fileSize} bytes, too short for the ${headerSize}-byte info header)`);

  const core = headerSize === 12;
  const width = core ? view.getUint16(18, true) : view.getInt32(18, true);
  const rawHeight = core ? view.getUint16(20, true) : view.getInt32(22, true);
  const planes = view.getUint16(core ? 22 : 26, true);
  const bitCount = view.getUint16(core ? 24 : 28, true);
  const compression = core ? 0 : view.getUint32(30, true);
  const colorsUsed = core ? 0 : view.getUint32(46, true);

  if (width <= 0) fail(`invalid width ${width}`);
  if (rawHeight === 0 || rawHeight === -0x80000000) fail(`invalid height ${rawHeight}`);
  if (planes !== 1) fail(`invalid number of planes ${planes} (expected 1)`);
  if (![1, 4, 8, 16, 24, 32].includes(bitCount)) fail(`unsupported bit depth ${bitCount}`);

  const compressionName = COMPRESSION_NAMES[compression];
  if (compressionName !== undefined) fail(`unsupported compression ${compressionName} (only uncompressed BI_RGB and BI_BITFIELDS are supported)`);
  if (compression !== 0 && compression !== 3 && compression !== 6) fail(`unsupported compression type ${compression}`);
  // OS/2 2.x headers (64 bytes) number their compressions differently: accept only none.
  if (headerSize === 64 && compression !== 0) fail(`unsupported OS/2 compression type ${compression}`);
  if (compression !== 0 && bitCount !== 16 && bitCount !== 32) fail(`BI_BITFIELDS compression with a ${bitCount}-bit image`);

  const topDown = rawHeight < 0;
  const height = Math.abs(rawHeight);
  const masks = bitCount === 16 || bitCount === 32 ? readMasks(view, compression, bitCount, fail) : undefined;

  // Indexed images: the palette follows the info header.
  let paletteEntries = 0;
  const paletteEntrySize = core ? 3 : 4;
  const paletteOffset = FILE_HEADER_SIZE + headerSize;
  if (bitCount <= 8) {
    const max = 1 << bitCount;
    paletteEntries = colorsUsed === 0 ? max : colorsUsed;
    if (paletteEntries > max) fail(`palette has ${paletteEntries} entries, more than the ${max} a ${bitCount}-bit image can use`);
    const paletteEnd = paletteOffset + paletteEntries * paletteEntrySize;
    if (paletteEnd > fileSize) fail(`file is truncated: the palette ends at byte ${paletteEnd} but the file has ${fileSize} bytes`);
    if (paletteEnd > dataOffset) fail(`palette (ending at byte ${paletteEnd}) overlaps the pixel data at offset ${dataOffset}`);
  }

  const stride = Math.floor((bitCount * width + 31) / 32) * 4;
  const dataEnd = dataOffset + stride * height;
  if (dataOffset < paletteOffset) fail(`pixel data offset ${dataOffset} lies inside the headers`);
  if (dataEnd > fileSize) fail(`file is truncated: pixel data needs ${stride * height} bytes from offset ${dataOffset} (up to byte ${dataEnd}) but the file has ${fileSize} bytes`);

  return { width, height, topDown, bitCount, compression, dataOffset, stride, paletteOffset, paletteEntries, paletteEntrySize, masks };
}

/** Channel masks of a 16/32-bit image: from the header (BITFIELDS) or the defaults. */
function readMasks(
  view: DataView,
  compression: number,
  bitCount: number,
  fail: (reason: string) => never,
): [number, number, number] {
  if (compression === 0) {
    return bitCount === 16 ? [0x7c00, 0x03e0, 0x001f] : [0xff0000, 0x00ff00, 0x0000ff];
  }
  // With a 40-byte header the masks follow it; later headers contain them.
  const at = FILE_HEADER_SIZE + 40;
  if (at + 12 > view.byteLength) fail('file is truncated inside the BI_BITFIELDS masks');
  const masks: [number, number, number] = [view.getUint32(at, true), view.getUint32(at + 4, true), view.getUint32(at + 8, true)];
  for (const m of masks) {
    if (m === 0 || m >>> 0 !== m) fail(`invalid BI_BITFIELDS mask 0x${m.toString(16)}`);
  }
  return masks;
}

/** Extracts the field selected by `mask` and rescales it to 0..255. */
function maskedTo8(value: number, mask: number): number {
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  const max = mask >>> shift;
  const v = (value & mask) >>> shift;
  return max === 255 ? v : Math.round((v * 255) / max);
}

/** Grey value of every palette entry. */
function greyPalette(buf: Uint8Array, h: BmpHeader): Uint8Array {
  const lut = new Uint8Array(h.paletteEntries);
  for (let i = 0; i < h.paletteEntries; i++) {
    const o = h.paletteOffset + i * h.paletteEntrySize; // entries are B, G, R[, reserved]
    lut[i] = greyOf(buf[o + 2]!, buf[o + 1]!, buf[o]!);
  }
  return lut;
}

/** Decodes a whole BMP file (already in memory) to a grey 8-bit image. */
export function decodeBmp(buf: Uint8Array, path: string): BmpImage {
  const h = parseBmpHeader(buf, buf.length, path);
  const { width, height, bitCount, stride } = h;
  const out = new Uint8Array(width * height);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const lut = bitCount <= 8 ? greyPalette(buf, h) : undefined;

  for (let y = 0; y < height; y++) {
    const row = h.dataOffset + (h.topDown ? y : height - 1 - y) * stride;
    const dst = y * width;
    if (lut !== undefined) {
      decodeIndexedRow(buf, row, bitCount, width, lut, out, dst, path, y);
    } else if (bitCount === 24) {
      for (let x = 0; x < width; x++) {
        const o = row + 3 * x;
        out[dst + x] = greyOf(buf[o + 2]!, buf[o + 1]!, buf[o]!);
      }
    } else {
      const [rm, gm, bm] = h.masks!;
      for (let x = 0; x < width; x++) {
        const v = bitCount === 16 ? view.getUint16(row + 2 * x, true) : view.getUint32(row + 4 * x, true);
        out[dst + x] = greyOf(maskedTo8(v, rm), maskedTo8(v, gm), maskedTo8(v, bm));
      }
    }
  }
  return { width, height, data: out };
}

/** Decodes one row of palette indices (1, 4 or 8 bits, most significant bits first). */
function decodeIndexedRow(
  buf: Uint8Array,
  row: number,
  bitCount: number,
  width: number,
  lut: Uint8Array,
  out: Uint8Array,
  dst: number,
  path: string,
  y: number,
): void {
  const perByte = 8 / bitCount;
  const mask = (1 << bitCount) - 1;
  for (let x = 0; x < width; x++) {
    const byte = buf[row + Math.floor(x / perByte)]!;
    const shift = 8 - bitCount * ((x % perByte) + 1);
    const index = (byte >>> shift) & mask;
    if (index >= lut.length) {
      throw new BmpError(path, `pixel (${x}, ${y}) uses palette index ${index} but the palette has ${lut.length} entries`);
    }
    out[dst + x] = lut[index]!;
  }
}

/**
 * Encodes a grey 8-bit image as an indexed BMP (BITMAPINFOHEADER, identity grey palette,
 * bottom-up rows padded to 4 bytes), the layout most BMP readers accept.
 */
export function encodeBmp8(width: number, height: number, data: Uint8Array): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`invalid BMP size ${width}x${height}`);
  }
  if (data.length !== width * height) {
    throw new RangeError(`BMP data has ${data.length} values, expected ${width}x${height} = ${width * height}`);
  }
  const stride = Math.ceil(width / 4) * 4;
  const dataOffset = FILE_HEADER_SIZE + 40 + 256 * 4;
  const size = dataOffset + stride * height;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = 0x42;
  out[1] = 0x4d;
  view.setUint32(2, size, true);
  view.setUint32(10, dataOffset, true);
  view.setUint32(14, 40, true);
  view.setInt32(18, width, true);
  view.setInt32(22, height, true);
  view.setUint16(26, 1, true); // planes
  view.setUint16(28, 8, true); // bits per pixel
  view.setUint32(30, 0, true); // BI_RGB
  view.setUint32(34, stride * height, true);
  view.setInt32(38, 2835, true); // 72 dpi, in pixels per metre
  view.setInt32(42, 2835, true);
  view.setUint32(46, 256, true);
  view.setUint32(50, 256, true);
  for (let i = 0; i < 256; i++) {
    const o = FILE_HEADER_SIZE + 40 + 4 * i;
    out[o] = out[o + 1] = out[o + 2] = i;
  }
  for (let y = 0; y < height; y++) {
    const src = (height - 1 - y) * width; // bottom-up: first stored row is the last image row
    out.set(data.subarray(src, src + width), dataOffset + y * stride);
  }
  return out;
}
