/** Tests of image input/output: exact values for every format, BMP variants, real samples, errors. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeBmp } from '../io/bmp.js';
import { ImageReadError, imageInfo, readImage, toFloat32, writeImage } from '../io/images.js';
import { SHARED_IMAGE_SAMPLES } from './helpers/shared.js';

const SAMPLES = SHARED_IMAGE_SAMPLES;

/** Asserts that `promise` rejects with an ImageReadError for `path` whose reason matches. */
async function assertReadError(promise: Promise<unknown>, path: string, reason: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ImageReadError, `expected ImageReadError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_IMAGE_READ');
    assert.equal(err.path, path);
    assert.ok(err.message.includes(path), `message should name the file: ${err.message}`);
    assert.match(err.message, reason);
    return true;
  });
}

/** Options for makeBmp: rows are given top row first, already packed, without padding. */
type BmpSpec = {
  width: number;
  height: number;
  bitCount: number;
  rows: number[][];
  /** Palette entries [r, g, b]. */
  palette?: [number, number, number][];
  topDown?: boolean;
  compression?: number;
  /** Bitfield masks (r, g, b) written after a 40-byte header. */
  masks?: [number, number, number];
};

/** Builds a BMP file by hand (BITMAPINFOHEADER), independently of the module under test. */
function makeBmp(spec: BmpSpec): Buffer {
  const stride = Math.floor((spec.bitCount * spec.width + 31) / 32) * 4;
  const palette = spec.palette ?? [];
  const extra = spec.masks ? 12 : 0;
  const dataOffset = 14 + 40 + extra + 4 * palette.length;
  const buf = Buffer.alloc(dataOffset + stride * spec.height);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(dataOffset, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(spec.width, 18);
  buf.writeInt32LE(spec.topDown ? -spec.height : spec.height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(spec.bitCount, 28);
  buf.writeUInt32LE(spec.compression ?? 0, 30);
  buf.writeUInt32LE(palette.length, 46);
  spec.masks?.forEach((m, i) => buf.writeUInt32LE(m, 54 + 4 * i));
  palette.forEach(([r, g, b], i) => buf.set([b, g, r, 0], 54 + extra + 4 * i));
  spec.rows.forEach((row, y) => {
    const stored = spec.topDown ? y : spec.height - 1 - y;
    buf.set(row, dataOffset + stored * stride);
  });
  return buf;
}

/** Builds an uncompressed little-endian float32 grey TIFF (sharp cannot write one). */
function makeFloatTiff(width: number, height: number, values: number[]): Buffer {
  const tags: [number, number, number][] = [
    [256, 3, width], [257, 3, height], [258, 3, 32], [259, 3, 1], [262, 3, 1],
    [273, 4, 0], [277, 3, 1], [278, 3, height], [279, 4, width * height * 4], [339, 3, 3],
  ];
  const ifd = 8;
  const dataOffset = ifd + 2 + tags.length * 12 + 4;
  tags[5]![2] = dataOffset;
  const buf = Buffer.alloc(dataOffset + values.length * 4);
  buf.write('II', 0, 'latin1');
  buf.writeUInt16LE(42, 2);
  buf.writeUInt32LE(ifd, 4);
  buf.writeUInt16LE(tags.length, ifd);
  tags.forEach(([tag, type, value], i) => {
    const o = ifd + 2 + 12 * i;
    buf.writeUInt16LE(tag, o);
    buf.writeUInt16LE(type, o + 2);
    buf.writeUInt32LE(1, o + 4);
    if (type === 3) buf.writeUInt16LE(value, o + 8);
    else buf.writeUInt32LE(value, o + 8);
  });
  values.forEach((v, i) => buf.writeFloatLE(v, dataOffset + 4 * i));
  return buf;
}

/** Grey test pattern with the given values repeated. */
function pattern<T extends Uint8Array | Uint16Array>(make: (n: number) => T, n: number, values: number[]): T {
  const out = make(n);
  for (let i = 0; i < n; i++) out[i] = values[i % values.length]!;
  return out;
}

describe('io/images', function () {
  let dir = '';

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'fluidimage-images-'));
  });

  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  describe('round trips (writeImage -> readImage)', function () {
    const w = 13;
    const h = 7; // odd sizes catch stride/padding mistakes
    const values8 = [0, 1, 2, 127, 128, 200, 254, 255];
    const values16 = [0, 1, 255, 256, 257, 1000, 4095, 4096, 32768, 65534, 65535];

    for (const ext of ['png', 'tif', 'tiff']) {
      it(`8-bit ${ext} keeps exact values`, async function () {
        const data = pattern((n) => new Uint8Array(n), w * h, values8);
        const file = join(dir, `r8.${ext}`);
        await writeImage(file, w, h, data);
        const im = await readImage(file);
        assert.equal(im.bitDepth, 8);
        assert.ok(im.data instanceof Uint8Array);
        assert.equal(im.width, w);
        assert.equal(im.height, h);
        assert.equal(im.path, file);
        assert.equal(im.frame, undefined);
        assert.deepEqual(Array.from(im.data), Array.from(data));
        assert.deepEqual(await imageInfo(file), { width: w, height: h, bitDepth: 8, pages: 1 });
      });

      it(`16-bit ${ext} keeps exact values (no 8-bit truncation)`, async function () {
        const data = pattern((n) => new Uint16Array(n), w * h, values16);
        const file = join(dir, `r16.${ext}`);
        await writeImage(file, w, h, data);
        const im = await readImage(file);
        assert.equal(im.bitDepth, 16);
        assert.ok(im.data instanceof Uint16Array);
        assert.deepEqual(Array.from(im.data), Array.from(data));
        assert.deepEqual(Array.from(toFloat32(im)), Array.from(data));
        assert.deepEqual(await imageInfo(file), { width: w, height: h, bitDepth: 16, pages: 1 });
      });
    }

    it('format option overrides the extension', async function () {
      const data = pattern((n) => new Uint16Array(n), 6, [0, 300, 65535]);
      const file = join(dir, 'forced.img');
      await writeImage(file, 3, 2, data, { format: 'tiff' });
      const head = await readFile(file);
      assert.equal(head.subarray(0, 2).toString('latin1'), 'II');
      assert.deepEqual(Array.from((await readImage(file)).data), Array.from(data));
    });

    it('8-bit BMP written with the grey palette reads back exactly', async function () {
      for (const [bw, bh] of [[1, 1], [5, 3], [8, 2], [13, 7]] as const) {
        const data = pattern((n) => new Uint8Array(n), bw * bh, [0, 17, 255, 3, 128, 64, 99]);
        const file = join(dir, `w${bw}x${bh}.bmp`);
        await writeImage(file, bw, bh, data);
        const im = await readImage(file);
        assert.equal(im.bitDepth, 8);
        assert.equal(im.width, bw);
        assert.equal(im.height, bh);
        assert.deepEqual(Array.from(im.data), Array.from(data));
        assert.deepEqual(await imageInfo(file), { width: bw, height: bh, bitDepth: 8, pages: 1 });
      }
    });

    it('toFloat32 returns a new array with exact values', async function () {
      const data = new Uint8Array([0, 1, 254, 255]);
      const file = join(dir, 'f.png');
      await writeImage(file, 2, 2, data);
      const im = await readImage(file);
      const f = toFloat32(im);
      assert.deepEqual(Array.from(f), [0, 1, 254, 255]);
      f[0] = 42;
      assert.equal(im.data[0], 0);
    });

    it('refuses bad write requests with the path in the message', async function () {
      const file = join(dir, 'bad.png');
      await assert.rejects(writeImage(file, 3, 3, new Uint8Array(8)), (e: unknown) => e instanceof Error && e.message.includes(file));
      const bmp = join(dir, 'bad.bmp');
      await assert.rejects(writeImage(bmp, 2, 1, new Uint16Array(2)), /8-bit only/);
      const unknown = join(dir, 'bad.xyz');
      await assert.rejects(writeImage(unknown, 2, 1, new Uint8Array(2)), /unknown extension/);
    });
  });

  describe('multi-page TIFF and float TIFF', function () {
    it('reads each frame of a 16-bit multi-page TIFF', async function () {
      const w = 5;
      const h = 4;
      const n = 3;
      const all = new Uint16Array(w * h * n).map((_, i) => (i * 997 + 300) % 65536);
      const file = join(dir, 'stack.tif');
      // sharp writes one TIFF page per pageHeight rows of a "toilet roll" image.
      await sharp(all, { raw: { width: w, height: h * n, channels: 1, pageHeight: h } })
        .toColourspace('grey16')
        .tiff({ compression: 'deflate' })
        .toFile(file);
      assert.deepEqual(await imageInfo(file), { width: w, height: h, bitDepth: 16, pages: n });
      for (let k = 0; k < n; k++) {
        const im = await readImage(file, { frame: k });
        assert.equal(im.frame, k);
        assert.equal(im.height, h);
        assert.deepEqual(Array.from(im.data), Array.from(all.subarray(k * w * h, (k + 1) * w * h)));
      }
      assert.equal((await readImage(file)).frame, 0);
      await assertReadError(readImage(file, { frame: 3 }), file, /frame 3 requested but the file has 3 frames/);
      await assertReadError(readImage(file, { frame: -1 }), file, /invalid frame index -1/);
    });

    it('frame 1 of a single image is an error', async function () {
      const file = join(dir, 'single.png');
      await writeImage(file, 2, 2, new Uint8Array(4));
      await assertReadError(readImage(file, { frame: 1 }), file, /frame 1 requested but the file has 1 frame$/);
      const bmp = join(dir, 'single.bmp');
      await writeImage(bmp, 2, 2, new Uint8Array(4));
      await assertReadError(readImage(bmp, { frame: 2 }), bmp, /frame 2 requested but the file has 1 frame$/);
    });

    it('reads a float32 TIFF exactly', async function () {
      const values = [0.5, 1.25, -3, 1e6, 70000.125, 0];
      const file = join(dir, 'float.tif');
      await writeFile(file, makeFloatTiff(3, 2, values));
      const im = await readImage(file);
      assert.equal(im.bitDepth, 32);
      assert.ok(im.data instanceof Float32Array);
      assert.deepEqual(Array.from(im.data), values);
      assert.equal((await imageInfo(file)).bitDepth, 32);
    });

    it('converts colour images to grey (exact where r == g == b)', async function () {
      const file = join(dir, 'rgb.png');
      const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 10, 10]);
      await sharp(rgb, { raw: { width: 4, height: 1, channels: 3 } }).png().toFile(file);
      const im = await readImage(file);
      assert.equal(im.bitDepth, 8);
      assert.deepEqual(Array.from(im.data), [76, 150, 29, 10]);
      const file16 = join(dir, 'rgb16.png');
      const rgb16 = new Uint16Array([65535, 0, 0, 1000, 1000, 1000]);
      await sharp(rgb16, { raw: { width: 2, height: 1, channels: 3 } }).toColourspace('rgb16').png().toFile(file16);
      const im16 = await readImage(file16);
      assert.equal(im16.bitDepth, 16);
      assert.deepEqual(Array.from(im16.data), [Math.round(0.299 * 65535), 1000]);
    });
  });

  describe('BMP variants', function () {
    it('reads a hand-made 24-bit bottom-up BMP (row padding, grey and colour pixels)', async function () {
      // 3 pixels of 3 bytes = 9 bytes per row, padded to 12.
      const file = join(dir, 'rgb24.bmp');
      const bgr = (r: number, g: number, b: number): number[] => [b, g, r];
      await writeFile(file, makeBmp({
        width: 3,
        height: 2,
        bitCount: 24,
        rows: [
          [...bgr(10, 10, 10), ...bgr(255, 0, 0), ...bgr(0, 255, 0)],
          [...bgr(0, 0, 255), ...bgr(200, 200, 200), ...bgr(100, 150, 200)],
        ],
      }));
      const im = await readImage(file);
      assert.equal(im.bitDepth, 8);
      assert.deepEqual([im.width, im.height], [3, 2]);
      const luma = (r: number, g: number, b: number): number => Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      assert.deepEqual(Array.from(im.data), [10, luma(255, 0, 0), luma(0, 255, 0), luma(0, 0, 255), 200, luma(100, 150, 200)]);
    });

    it('reads a top-down (negative height) 8-bit BMP', async function () {
      const file = join(dir, 'topdown.bmp');
      const palette = Array.from({ length: 256 }, (_, i): [number, number, number] => [i, i, i]);
      await writeFile(file, makeBmp({ width: 2, height: 3, bitCount: 8, topDown: true, palette, rows: [[1, 2], [3, 4], [5, 6]] }));
      assert.deepEqual(Array.from((await readImage(file)).data), [1, 2, 3, 4, 5, 6]);
    });

    it('applies a colour palette by luminance (4-bit and 1-bit)', async function () {
      const palette: [number, number, number][] = [[0, 0, 0], [255, 0, 0], [7, 7, 7], [255, 255, 255]];
      const file4 = join(dir, 'p4.bmp');
      // 5 pixels at 4 bits: indices 0 1 2 3 1 -> bytes 0x01 0x23 0x10.
      await writeFile(file4, makeBmp({ width: 5, height: 1, bitCount: 4, palette, rows: [[0x01, 0x23, 0x10]] }));
      assert.deepEqual(Array.from((await readImage(file4)).data), [0, 76, 7, 255, 76]);
      const file1 = join(dir, 'p1.bmp');
      await writeFile(file1, makeBmp({ width: 10, height: 1, bitCount: 1, palette: [[9, 9, 9], [0, 255, 0]], rows: [[0b10110000, 0b01000000]] }));
      assert.deepEqual(Array.from((await readImage(file1)).data), [150, 9, 150, 150, 9, 9, 9, 9, 9, 150]);
    });

    it('reads 32-bit BI_RGB and BI_BITFIELDS BMPs', async function () {
      const file = join(dir, 'bgra.bmp');
      await writeFile(file, makeBmp({ width: 2, height: 1, bitCount: 32, rows: [[50, 50, 50, 255, 0, 0, 255, 0]] }));
      assert.deepEqual(Array.from((await readImage(file)).data), [50, 76]);
      // RGBA byte order described by masks: r in the low byte.
      const fileBf = join(dir, 'bitfields.bmp');
      await writeFile(fileBf, makeBmp({
        width: 2, height: 1, bitCount: 32, compression: 3, masks: [0xff, 0xff00, 0xff0000], rows: [[0, 0, 255, 0, 33, 33, 33, 0]],
      }));
      assert.deepEqual(Array.from((await readImage(fileBf)).data), [29, 33]);
    });

    it('detects BMP by magic bytes, not extension', async function () {
      const file = join(dir, 'actually-bmp.png');
      const palette = Array.from({ length: 256 }, (_, i): [number, number, number] => [i, i, i]);
      await writeFile(file, makeBmp({ width: 1, height: 1, bitCount: 8, palette, rows: [[77]] }));
      assert.deepEqual(Array.from((await readImage(file)).data), [77]);
    });

    it('refuses malformed BMPs with the path and the problem', async function () {
      const palette = Array.from({ length: 256 }, (_, i): [number, number, number] => [i, i, i]);
      const rle = join(dir, 'rle.bmp');
      await writeFile(rle, makeBmp({ width: 2, height: 1, bitCount: 8, compression: 1, palette, rows: [[0, 0]] }));
      await assertReadError(readImage(rle), rle, /invalid BMP file: unsupported compression BI_RLE8/);
      await assertReadError(imageInfo(rle), rle, /BI_RLE8/);

      const depth = join(dir, 'depth.bmp');
      await writeFile(depth, makeBmp({ width: 2, height: 1, bitCount: 2, rows: [[0]] }));
      await assertReadError(readImage(depth), depth, /unsupported bit depth 2/);

      const tiny = join(dir, 'tiny.bmp');
      await writeFile(tiny, Buffer.from('BM1234'));
      await assertReadError(readImage(tiny), tiny, /truncated/);

      const badIndex = join(dir, 'index.bmp');
      await writeFile(badIndex, makeBmp({ width: 2, height: 1, bitCount: 8, palette: [[0, 0, 0], [1, 1, 1]], rows: [[1, 5]] }));
      await assertReadError(readImage(badIndex), badIndex, /palette index 5/);

      // decodeBmp itself names the file when the magic is wrong.
      assert.throws(() => decodeBmp(new Uint8Array(60), '/some/x.bmp'), /\/some\/x\.bmp.*bad magic/);
    });
  });

  describe('real samples', function () {
    before(function () {
      if (!existsSync(SAMPLES)) this.skip();
    });

    it('Karman_01.bmp (8-bit indexed) matches a direct palette decode', async function () {
      const file = join(SAMPLES, 'Karman/Images/Karman_01.bmp');
      const im = await readImage(file);
      assert.deepEqual([im.width, im.height, im.bitDepth, im.data.length], [524, 400, 8, 524 * 400]);
      assert.ok(new Set(im.data).size > 10, 'values should not be all equal');
      // Independent decode: 8-bit, palette after a 40-byte header, bottom-up rows.
      const buf = await readFile(file);
      const offset = buf.readUInt32LE(10);
      const stride = Math.ceil(524 / 4) * 4;
      const expected = new Uint8Array(524 * 400);
      for (let y = 0; y < 400; y++) {
        for (let x = 0; x < 524; x++) {
          const index = buf[offset + (399 - y) * stride + x]!;
          const entry = 54 + 4 * index;
          assert.ok(buf[entry] === buf[entry + 1] && buf[entry] === buf[entry + 2], 'Karman palette is grey');
          expected[y * 524 + x] = buf[entry]!;
        }
      }
      assert.deepEqual(im.data, expected);
      assert.deepEqual(await imageInfo(file), { width: 524, height: 400, bitDepth: 8, pages: 1 });
    });

    it('c060a.png is 16-bit 512x512 with values above 255', async function () {
      const file = join(SAMPLES, 'Jet/Images/c060a.png');
      const im = await readImage(file);
      assert.deepEqual([im.width, im.height, im.bitDepth], [512, 512, 16]);
      assert.ok(im.data instanceof Uint16Array);
      assert.equal(im.data.length, 512 * 512);
      let max = 0;
      for (const v of im.data) max = Math.max(max, v);
      assert.ok(max > 255, `max value ${max} should exceed 255`);
    });

    it('Oseen_center_01.tif is 8-bit 400x300, equal to its uncompressed strip', async function () {
      const file = join(SAMPLES, 'Oseen/Images/Oseen_center_01.tif');
      const im = await readImage(file);
      assert.deepEqual([im.width, im.height, im.bitDepth, im.data.length], [400, 300, 8, 400 * 300]);
      // Find StripOffsets (tag 273) in the first IFD of this little-endian, one-strip file.
      const buf = await readFile(file);
      const ifd = buf.readUInt32LE(4);
      let strip = -1;
      for (let i = 0; i < buf.readUInt16LE(ifd); i++) {
        if (buf.readUInt16LE(ifd + 2 + 12 * i) === 273) strip = buf.readUInt32LE(ifd + 2 + 12 * i + 8);
      }
      assert.ok(strip > 0);
      assert.deepEqual(im.data, new Uint8Array(buf.subarray(strip, strip + 400 * 300)));
    });

    it('a text file named .tif is "not an image"', async function () {
      const file = join(SAMPLES, 'Oseen/Images/Oseen_center_03.tif');
      await assertReadError(readImage(file), file, /not an image file/);
      await assertReadError(imageInfo(file), file, /not an image file/);
    });
  });

  describe('read errors', function () {
    it('missing file', async function () {
      const file = join(dir, 'does-not-exist.png');
      await assertReadError(readImage(file), file, /: no such file$/);
      await assertReadError(imageInfo(file), file, /: no such file$/);
    });

    it('directory and empty file', async function () {
      await assertReadError(readImage(dir), dir, /is a directory/);
      const empty = join(dir, 'empty.png');
      await writeFile(empty, '');
      await assertReadError(readImage(empty), empty, /file is empty/);
    });

    it('truncated PNG', async function () {
      const file = join(dir, 'trunc.png');
      const data = new Uint8Array(300 * 200).map((_, i) => (i * 7919) % 251); // not very compressible
      await writeImage(file, 300, 200, data);
      const full = await readFile(file);
      await writeFile(file, full.subarray(0, full.length >> 1));
      await assertReadError(readImage(file), file, /file is truncated/);
    });

    it('truncated TIFF', async function () {
      const file = join(dir, 'trunc.tif');
      await writeImage(file, 64, 64, new Uint16Array(64 * 64).map((_, i) => i * 13));
      const full = await readFile(file);
      await writeFile(file, full.subarray(0, full.length >> 1));
      await assertReadError(readImage(file), file, /truncated|corrupt/);
    });

    it('truncated TIFF with the directory before the data', async function () {
      const file = join(dir, 'trunc-float.tif');
      const full = makeFloatTiff(64, 64, Array.from({ length: 64 * 64 }, (_, i) => i / 7));
      await writeFile(file, full.subarray(0, full.length >> 1));
      await assertReadError(readImage(file), file, /file is truncated/);
    });

    it('truncated BMP', async function () {
      const file = join(dir, 'trunc.bmp');
      await writeImage(file, 20, 10, new Uint8Array(200).fill(9));
      const full = await readFile(file);
      await writeFile(file, full.subarray(0, full.length - 50));
      await assertReadError(readImage(file), file, /invalid BMP file: file is truncated/);
      await assertReadError(imageInfo(file), file, /file is truncated/);
    });
  });
});
