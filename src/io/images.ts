/**
 * Image input/output: every image becomes one grey channel with its exact stored values.
 *
 * PNG, TIFF (including multi-page) and whatever else libvips reads go through sharp; BMP
 * (which libvips cannot read) goes through our own reader, chosen by magic bytes, not by
 * extension. Every read failure is an ImageReadError naming the file and the reason.
 *
 * Grey 8/16-bit PNGs, the bulk of a PIV series, take a fast path in the native core (inflate
 * and unfilter, about a third of sharp's CPU time per image); whenever it declines (an
 * unusual chunk, a bad checksum, damaged data) the file is read by sharp as any other, so
 * errors and values stay those of sharp. FLUIDIMAGE_PNG=sharp turns the fast path off.
 */
import { open, readFile, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp from 'sharp';
import type { Metadata, OutputInfo, Sharp } from 'sharp';
import { native } from '../native.js';
import type { NativeCore } from '../native.js';
import { filePool, type Float32Pool } from './pool.js';
import { BMP_HEADER_BYTES, BmpError, decodeBmp, encodeBmp8, isBmp, parseBmpHeader } from './bmp.js';

/** One grey image (row-major, top row first) with its values as stored in the file. */
export type ImageData = {
  width: number;
  height: number;
  /** 8 -> Uint8Array, 16 -> Uint16Array, 32 -> Float32Array. */
  bitDepth: 8 | 16 | 32;
  data: Uint8Array | Uint16Array | Float32Array;
  path: string;
  /** Frame index, set when a frame was requested or the file has several. */
  frame?: number;
};

export type ImageInfo = { width: number; height: number; bitDepth: 8 | 16 | 32; pages: number };

/** Any failure to read an image: `Cannot read image <path>: <reason>`. */
export class ImageReadError extends Error {
  readonly code = 'ERR_IMAGE_READ' as const;
  readonly path: string;
  /** What went wrong, without the path. */
  readonly reason: string;

  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(`Cannot read image ${path}: ${reason}`, options);
    this.name = 'ImageReadError';
    this.path = path;
    this.reason = reason;
  }
}

/** Decoding options given to sharp for every read. */
function sharpInput(path: string, page: number): Sharp {
  // failOn 'error': corrupt or truncated pixel data throws, while benign warnings (for
  // example unknown TIFF tags written by camera software) do not. ICC profiles are ignored
  // so that no colour management alters the stored values.
  return sharp(path, { page, failOn: 'error', ignoreIcc: true });
}

/** Reads one frame (default 0) of an image file as grey values. */
export function readImage(path: string, opts: { frame?: number } = {}): Promise<ImageData> {
  return readImageWith(path, opts, true);
}

/** readImage; `tryFast` false when the PNG fast path has already declined this file. */
async function readImageWith(path: string, opts: { frame?: number }, tryFast: boolean): Promise<ImageData> {
  const frame = opts.frame ?? 0;
  if (!Number.isInteger(frame) || frame < 0) {
    throw new ImageReadError(path, `invalid frame index ${frame} (expected an integer >= 0)`);
  }
  const head = await readHead(path);
  const withFrame = (im: ImageData, pages: number): ImageData =>
    opts.frame !== undefined || pages > 1 ? { ...im, frame } : im;

  if (isBmp(head.bytes)) {
    checkFrame(path, frame, 1);
    const bmp = decodeBmpFile(path, await readWhole(path));
    return withFrame({ ...bmp, bitDepth: 8, path }, 1);
  }

  if (frame === 0 && tryFast) {
    const fast = await decodeGreyPngFast(path, head, (h) => (h.bitDepth === 8 ? new Uint8Array(h.width * h.height) : new Uint16Array(h.width * h.height)));
    if (fast !== undefined) {
      const { width, height, bitDepth } = fast.header;
      return withFrame({ width, height, bitDepth, data: fast.data, path }, 1);
    }
  }

  const meta0 = await sharpMetadata(path, head, 0);
  const pages = meta0.pages ?? 1;
  checkFrame(path, frame, pages);
  const meta = frame === 0 ? meta0 : await sharpMetadata(path, head, frame);
  const im = await decodeWithSharp(path, head, frame, meta);
  return withFrame(im, pages);
}

/** An image as float32 values (`readImageFloat32`). */
export type FloatImage = { width: number; height: number; bitDepth: 8 | 16 | 32; data: Float32Array; path: string };

/**
 * Reads one frame (default 0) as float32 values, exact for 8/16-bit data: what PIV computes
 * on. The array comes from `pool` when given (images of a series recycle their arrays, see
 * io/pool.ts); grey PNGs decode straight into it, without an integer image in between.
 */
export async function readImageFloat32(path: string, opts: { frame?: number; pool?: Float32Pool } = {}): Promise<FloatImage> {
  const take = (n: number): Float32Array => opts.pool?.take(n) ?? new Float32Array(n);
  let tried = false;
  if ((opts.frame ?? 0) === 0) {
    const head = await readHead(path);
    let out: Float32Array | undefined;
    const fast = await decodeGreyPngFast(path, head, (h) => (out = take(h.width * h.height)));
    if (fast !== undefined) return { width: fast.header.width, height: fast.header.height, bitDepth: fast.header.bitDepth, data: fast.data, path };
    if (out !== undefined) {
      // Declined after all (damaged or unusual file): the array goes back, sharp reads it.
      opts.pool?.give(out);
      tried = true;
    }
  }
  const im = await readImageWith(path, opts, !tried);
  const data = take(im.data.length);
  data.set(im.data);
  return { width: im.width, height: im.height, bitDepth: im.bitDepth, data, path };
}

/** Size, bit depth of the values readImage returns, and number of frames; reads headers only. */
export async function imageInfo(path: string): Promise<ImageInfo> {
  const head = await readHead(path);
  if (isBmp(head.bytes)) {
    try {
      const h = parseBmpHeader(head.bytes, head.size, path);
      return { width: h.width, height: h.height, bitDepth: 8, pages: 1 };
    } catch (err) {
      throw bmpFailure(path, err);
    }
  }
  const meta = await sharpMetadata(path, head, 0);
  return { width: meta.width, height: meta.height, bitDepth: bitDepthOf(meta), pages: meta.pages ?? 1 };
}

/** The values as float32, exact for 8/16-bit data; always a new array (safe to modify). */
export function toFloat32(im: ImageData): Float32Array {
  // The constructor converts typed arrays natively (3x faster than Float32Array.from).
  return new Float32Array(im.data);
}

/**
 * Writes a grey image: 8-bit from a Uint8Array, 16-bit from a Uint16Array. The format
 * comes from `opts.format` or the extension: .png, .tif/.tiff (lossless deflate), or .bmp
 * (8-bit indexed, our own writer).
 */
export async function writeImage(
  path: string,
  width: number,
  height: number,
  data: Uint8Array | Uint16Array,
  opts: { format?: 'png' | 'tiff' } = {},
): Promise<void> {
  const failure = (reason: string, cause?: unknown): Error =>
    new Error(`Cannot write image ${path}: ${reason}`, cause === undefined ? undefined : { cause });
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw failure(`invalid size ${width}x${height}`);
  }
  if (data.length !== width * height) throw failure(`data has ${data.length} values, expected ${width}x${height} = ${width * height}`);
  const format = opts.format ?? formatFromExtension(path);
  if (format === undefined) throw failure(`unknown extension "${extname(path)}" (use .png, .tif, .tiff or .bmp, or give a format)`);

  if (format === 'bmp') {
    if (!(data instanceof Uint8Array)) throw failure('BMP output is 8-bit only (got 16-bit data)');
    await writeFile(path, encodeBmp8(width, height, data)).catch((err: unknown) => {
      throw failure(errorText(err), err);
    });
    return;
  }
  // sharp takes the sample depth from the typed array class; the colourspace must be
  // set explicitly, otherwise sharp writes 8-bit sRGB (3 channels).
  const is16 = data instanceof Uint16Array;
  const img = sharp(data, { raw: { width, height, channels: 1 } }).toColourspace(is16 ? 'grey16' : 'b-w');
  // sharp's TIFF default compression is lossy JPEG: force lossless deflate.
  const encoded = format === 'png' ? img.png() : img.tiff({ compression: 'deflate', predictor: 'horizontal' });
  await encoded.toFile(path).catch((err: unknown) => {
    throw failure(errorText(err), err);
  });
}

/** Output format named by the file extension. */
function formatFromExtension(path: string): 'png' | 'tiff' | 'bmp' | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === '.png') return 'png';
  if (ext === '.tif' || ext === '.tiff') return 'tiff';
  if (ext === '.bmp') return 'bmp';
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Reading helpers

/** First bytes of a file (for magic numbers) and its size. */
type Head = { bytes: Uint8Array; size: number };

/** Reads the first bytes of a regular file; fs failures become ImageReadErrors. */
async function readHead(path: string): Promise<Head> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile()) throw new ImageReadError(path, st.isDirectory() ? 'is a directory' : 'not a regular file');
    if (st.size === 0) throw new ImageReadError(path, 'file is empty');
    const bytes = new Uint8Array(Math.min(st.size, Math.max(BMP_HEADER_BYTES, 64)));
    const { bytesRead } = await fh.read(bytes, 0, bytes.length, 0);
    return { bytes: bytes.subarray(0, bytesRead), size: st.size };
  } catch (err) {
    throw err instanceof ImageReadError ? err : new ImageReadError(path, fsReason(err), { cause: err });
  } finally {
    await fh?.close();
  }
}

/** Reads a whole file; fs failures become ImageReadErrors. */
async function readWhole(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ImageReadError(path, fsReason(err), { cause: err });
  }
}

/** Short reason for a file-system error. */
function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a component of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return errorText(err);
  }
}

/** The message of an error, on one line. */
function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim();
}

/** Throws unless `frame` is a valid index for a file with `pages` frames. */
function checkFrame(path: string, frame: number, pages: number): void {
  if (frame >= pages) {
    throw new ImageReadError(path, `frame ${frame} requested but the file has ${pages} frame${pages === 1 ? '' : 's'}`);
  }
}

/** The native core when it has the PNG fast path, else null (loaded once). */
let pngCore: NativeCore | null | undefined;
function pngFastPath(): NativeCore | null {
  if (process.env.FLUIDIMAGE_PNG === 'sharp') return null;
  if (pngCore === undefined) {
    pngCore = null;
    try {
      const core = native();
      if (core.pngInflate !== '') pngCore = core;
    } catch {
      // No addon (a tool that only reads images): sharp reads everything.
    }
  }
  return pngCore;
}

type PngHeader = { width: number; height: number; bitDepth: 8 | 16 };

/**
 * Decodes a grey 8/16-bit PNG natively into the array `makeOut` gives (stored integers or
 * float32); undefined when the file is not such a PNG or the fast path declines.
 */
async function decodeGreyPngFast<T extends Uint8Array | Uint16Array | Float32Array>(path: string, head: Head,
  makeOut: (header: PngHeader) => T): Promise<{ header: PngHeader; data: T } | undefined> {
  const core = pngFastPath();
  const header = core?.pngHeader(head.bytes);
  if (core == null || header == null) return undefined;
  const file = await readIntoPool(path, head.size);
  try {
    const data = makeOut(header);
    return (await core.decodeGreyPng(file, data)) === '' ? { header, data } : undefined;
  } finally {
    filePool.give(file);
  }
}

/** The `size` bytes of a file, in a buffer from the file pool (give it back when done). */
async function readIntoPool(path: string, size: number): Promise<Uint8Array> {
  const bytes = filePool.take(size);
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(bytes, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    // A file that shrank since its size was taken: the rest would be stale bytes.
    return at === size ? bytes : bytes.subarray(0, at);
  } catch (err) {
    filePool.give(bytes);
    throw new ImageReadError(path, fsReason(err), { cause: err });
  } finally {
    await fh?.close();
  }
}

/** Decodes a BMP file, turning BmpError into ImageReadError. */
function decodeBmpFile(path: string, buf: Uint8Array): { width: number; height: number; data: Uint8Array } {
  try {
    return decodeBmp(buf, path);
  } catch (err) {
    throw bmpFailure(path, err);
  }
}

/** ImageReadError for a failure of the BMP reader. */
function bmpFailure(path: string, err: unknown): ImageReadError {
  const reason = err instanceof BmpError ? err.reason : errorText(err);
  return new ImageReadError(path, `invalid BMP file: ${reason}`, { cause: err });
}

/** sharp's metadata for one page, with failures mapped to ImageReadError. */
async function sharpMetadata(path: string, head: Head, page: number): Promise<Metadata & { width: number; height: number }> {
  let meta: Metadata;
  try {
    meta = await sharpInput(path, page).metadata();
  } catch (err) {
    throw await sharpFailure(path, head, err);
  }
  if (meta.width === undefined || meta.height === undefined) {
    throw new ImageReadError(path, `image size unknown (format ${meta.format})`);
  }
  return { ...meta, width: meta.width, height: meta.height };
}

/** Bit depth of the values we return for a given stored sample format. */
function bitDepthOf(meta: Metadata): 8 | 16 | 32 {
  if (meta.depth === 'uchar') return 8;
  if (meta.depth === 'ushort') return 16;
  // Signed, 32-bit integer and floating-point samples are returned as float32 (exact
  // except for 32-bit integers above 2^24, which no PIV camera produces).
  return 32;
}

/** Decodes one page with sharp into a single grey channel with exact values. */
async function decodeWithSharp(path: string, head: Head, frame: number, meta: Metadata): Promise<ImageData> {
  const bitDepth = bitDepthOf(meta);
  const colourChannels = meta.channels - (meta.hasAlpha ? 1 : 0);
  const grey = colourChannels <= 1 || meta.space === 'b-w' || meta.space === 'grey16';
  // Grey images are read with the exact recipe (b-w / grey16 keeps the stored values);
  // colour images are read as RGB and converted by greyOf, like BMP files, because
  // libvips' own b-w conversion works in linear light. Float images use libvips' b-w.
  let pipeline = sharpInput(path, frame).removeAlpha();
  if (bitDepth === 8) pipeline = pipeline.toColourspace(grey ? 'b-w' : 'srgb').raw();
  else if (bitDepth === 16) pipeline = pipeline.toColourspace(grey ? 'grey16' : 'rgb16').raw({ depth: 'ushort' });
  else pipeline = pipeline.toColourspace('b-w').raw({ depth: 'float' });

  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await pipeline.toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw await sharpFailure(path, head, err);
  }
  const { width, height, channels } = out.info;
  const samples = typedSamples(out.data, bitDepth);
  if (samples.length !== width * height * channels || (channels !== 1 && channels !== 3)) {
    throw new ImageReadError(path, `unexpected decoded layout (${channels} channels, ${samples.length} samples for ${width}x${height})`);
  }
  const data = channels === 1 ? samples : rgbToGrey(samples, bitDepth);
  return { width, height, bitDepth, data, path };
}

/** Views (or copies, if misaligned) sharp's output bytes as the typed array of the depth. */
function typedSamples(buf: Buffer, bitDepth: 8 | 16 | 32): Uint8Array | Uint16Array | Float32Array {
  if (bitDepth === 8) return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  const bytes = bitDepth === 16 ? 2 : 4;
  const src = buf.byteOffset % bytes === 0 ? buf : Buffer.from(buf);
  return bitDepth === 16
    ? new Uint16Array(src.buffer, src.byteOffset, src.length / bytes)
    : new Float32Array(src.buffer, src.byteOffset, src.length / bytes);
}

/** Interleaved RGB -> grey with the same rule as BMP (exact when r == g == b). */
function rgbToGrey(rgb: Uint8Array | Uint16Array | Float32Array, bitDepth: 8 | 16 | 32): Uint8Array | Uint16Array | Float32Array {
  const n = rgb.length / 3;
  const out = bitDepth === 8 ? new Uint8Array(n) : bitDepth === 16 ? new Uint16Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rgb[3 * i]!;
    const g = rgb[3 * i + 1]!;
    const b = rgb[3 * i + 2]!;
    out[i] = r === g && g === b ? r : Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  }
  return out;
}

/** Formats recognised by magic number, to tell "not an image" from "damaged image". */
function sniffFormat(b: Uint8Array): string | undefined {
  const starts = (...sig: number[]): boolean => sig.every((v, i) => b[i] === v);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'PNG';
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'TIFF';
  if (starts(0x49, 0x49, 0x2b, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2b)) return 'BigTIFF';
  if (starts(0xff, 0xd8, 0xff)) return 'JPEG';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'GIF';
  if (starts(0x52, 0x49, 0x46, 0x46) && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'WebP';
  return undefined;
}

/** True when the bytes look like text (so the reason can say so). */
function looksLikeText(b: Uint8Array): boolean {
  return b.length > 0 && b.every((v) => v === 0x09 || v === 0x0a || v === 0x0d || (v >= 0x20 && v < 0x7f));
}

/** Cheap structural check for truncation, used only to word the error. */
async function looksTruncated(path: string, format: string, head: Head): Promise<boolean> {
  if (format === 'TIFF') {
    // Classic TIFF: the first IFD must lie inside the file.
    const view = new DataView(head.bytes.buffer, head.bytes.byteOffset, head.bytes.byteLength);
    if (head.bytes.length < 8) return true;
    const ifd = view.getUint32(4, head.bytes[0] === 0x49);
    return ifd + 2 > head.size;
  }
  if (format !== 'PNG' && format !== 'JPEG') return false;
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    const tail = new Uint8Array(Math.min(12, head.size));
    await fh.read(tail, 0, tail.length, head.size - tail.length);
    if (format === 'PNG') {
      // A complete PNG ends with the IEND chunk: "IEND" then its 4-byte CRC.
      const iend = String.fromCharCode(...tail.subarray(tail.length - 8, tail.length - 4));
      return iend !== 'IEND';
    }
    return !(tail[tail.length - 2] === 0xff && tail[tail.length - 1] === 0xd9);
  } catch {
    return false;
  } finally {
    await fh?.close();
  }
}

/** Decoder messages that mean the data stops early (libtiff: "Read error at scanline"). */
const TRUNCATION_TEXT = /truncat|premature end|unexpected end|read error at (scanline|row|strip|tile)/i;

/** Maps a sharp failure to an ImageReadError with a useful reason. */
async function sharpFailure(path: string, head: Head, err: unknown): Promise<ImageReadError> {
  const detail = errorText(err);
  const format = sniffFormat(head.bytes);
  let reason: string;
  if (format === undefined) {
    reason = /unsupported image format/i.test(detail)
      ? `not an image file (unrecognised format${looksLikeText(head.bytes) ? '; it looks like a text file' : ''})`
      : detail;
  } else if (TRUNCATION_TEXT.test(detail) || (await looksTruncated(path, format, head))) {
    reason = `file is truncated (${format}: ${detail})`;
  } else {
    reason = `file is corrupt or unsupported (${format}: ${detail})`;
  }
  return new ImageReadError(path, reason, { cause: err });
}
