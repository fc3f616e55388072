/**
 * The grey PNG fast path of the native core: same values as sharp for every filter type,
 * bit depth and chunk layout it takes; it declines (and readImage falls back to sharp, with
 * sharp's errors) for everything else.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { PngOptions } from 'sharp';
import { ImageReadError, readImage, readImageFloat32 } from '../io/images.js';
import { Float32Pool } from '../io/pool.js';
import { native } from '../native.js';

/** Deterministic pseudo-random bytes (xorshift). */
function randomBytes(n: number, seed: number): Uint8Array {
  let s = seed >>> 0 || 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

function chunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])) >>> 0, 0);
  return Buffer.concat([head, body, crc]);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * A grey PNG written by hand, independently of the decoder under test: row r uses filter
 * `filters[r % filters.length]`; the stream is cut into IDAT chunks of `idatSize` bytes;
 * `extra` chunks go before the first IDAT.
 */
function makeGreyPng(width: number, height: number, depth: 8 | 16, samples: ArrayLike<number>,
  opts: { filters?: number[]; idatSize?: number; extra?: Buffer[] } = {}): Buffer {
  const bpp = depth / 8;
  const rowBytes = width * bpp;
  const rows: Uint8Array[] = [];
  for (let r = 0; r < height; r++) {
    const row = new Uint8Array(rowBytes);
    for (let x = 0; x < width; x++) {
      const v = samples[r * width + x];
      if (depth === 8) row[x] = v;
      else {
        row[2 * x] = v >> 8;
        row[2 * x + 1] = v & 0xff;
      }
    }
    rows.push(row);
  }
  const filters = opts.filters ?? [0];
  const raw = new Uint8Array((rowBytes + 1) * height);
  const zero = new Uint8Array(rowBytes);
  for (let r = 0; r < height; r++) {
    const f = filters[r % filters.length];
    const cur = rows[r];
    const prior = r > 0 ? rows[r - 1] : zero;
    raw[r * (rowBytes + 1)] = f;
    for (let i = 0; i < rowBytes; i++) {
      const a = i >= bpp ? cur[i - bpp] : 0;
      const b = prior[i];
      const c = i >= bpp ? prior[i - bpp] : 0;
      const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, c);
      raw[r * (rowBytes + 1) + 1 + i] = (cur[i] - pred) & 0xff;
    }
  }
  const z = deflateSync(raw);
  const size = opts.idatSize ?? z.length;
  const idats: Buffer[] = [];
  for (let at = 0; at < z.length; at += size) idats.push(chunk('IDAT', z.subarray(at, at + size)));
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(opts.extra ?? []),
    ...idats,
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** What sharp alone returns for a grey PNG (readImage's recipe without the fast path). */
async function viaSharp(path: string): Promise<Uint8Array | Uint16Array> {
  const prev = process.env.FLUIDIMAGE_PNG;
  process.env.FLUIDIMAGE_PNG = 'sharp';
  try {
    return (await readImage(path)).data as Uint8Array | Uint16Array;
  } finally {
    if (prev === undefined) delete process.env.FLUIDIMAGE_PNG;
    else process.env.FLUIDIMAGE_PNG = prev;
  }
}

/** Decodes with the fast path directly: the decoded values, or why it declined. */
async function viaFastPath(file: Uint8Array): Promise<Uint8Array | Uint16Array | string> {
  const core = native();
  const header = core.pngHeader(file);
  if (header === null) return 'no header';
  const out = header.bitDepth === 8 ? new Uint8Array(header.width * header.height) : new Uint16Array(header.width * header.height);
  const declined = await core.decodeGreyPng(file, out);
  return declined === '' ? out : declined;
}

describe('grey PNG fast path (native)', function () {
  let dir = '';
  before(async function () {
    if (native().pngInflate === '') this.skip(); // built without libdeflate/zlib: sharp reads all
    dir = await mkdtemp(join(tmpdir(), 'fluidimage-png-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('names its inflate library', () => {
    assert.match(native().pngInflate, /^(libdeflate|zlib) \d/);
  });

  for (const depth of [8, 16] as const) {
    it(`${depth}-bit: every filter type, odd width, many IDAT chunks and text chunks give sharp's values`, async () => {
      const [w, h] = [37, 29];
      const bytes = randomBytes(w * h * 2, depth);
      // Smooth part plus noise, so that the predictors see both gradients and jumps.
      const samples = Array.from({ length: w * h }, (_, i) => {
        const smooth = ((i % w) * 7 + Math.floor(i / w) * 3) * (depth === 8 ? 1 : 257);
        const noise = depth === 8 ? bytes[i] & 15 : (bytes[2 * i] << 8) | bytes[2 * i + 1];
        return (smooth + noise) % (depth === 8 ? 256 : 65536);
      });
      const text = chunk('tEXt', Buffer.from('Comment\0written by a test', 'latin1'));
      const file = makeGreyPng(w, h, depth, samples, { filters: [0, 1, 2, 3, 4], idatSize: 50, extra: [text] });
      const path = join(dir, `filters${depth}.png`);
      await writeFile(path, file);

      const fast = await viaFastPath(file);
      assert.ok(typeof fast !== 'string', `fast path declined: ${String(fast)}`);
      assert.deepEqual(Array.from(fast), samples, 'fast path against the samples written');
      assert.deepEqual(Array.from(await viaSharp(path)), samples, 'sharp against the samples written');
      const im = await readImage(path);
      assert.equal(im.bitDepth, depth);
      assert.deepEqual([im.width, im.height], [w, h]);
      assert.deepEqual(Array.from(im.data), samples);
      // Straight to float32 (what PIV reads), into an array from a pool.
      const pool = new Float32Pool(2);
      const recycled = pool.take(w * h).fill(-1);
      pool.give(recycled);
      const asFloat = await readImageFloat32(path, { pool });
      assert.equal(asFloat.data, recycled, 'the pooled array is reused');
      assert.equal(asFloat.bitDepth, depth);
      assert.deepEqual(Array.from(asFloat.data), samples);
    });
  }

  it('reads what sharp writes (every compression level, adaptive filtering) exactly as sharp does', async () => {
    const [w, h] = [128, 96];
    const u8 = randomBytes(w * h, 7);
    const u16 = Uint16Array.from(randomBytes(w * h * 2, 9).subarray(0, w * h), (v, i) => v * 251 + (i % 7));
    const variants: [string, PngOptions][] = [
      ['l0', { compressionLevel: 0 }], ['l6', {}], ['l9adaptive', { compressionLevel: 9, adaptiveFiltering: true }],
    ];
    for (const [name, options] of variants) {
      for (const data of [u8, u16]) {
        const path = join(dir, `sharp_${name}_${data.BYTES_PER_ELEMENT * 8}.png`);
        await sharp(data, { raw: { width: w, height: h, channels: 1 } })
          .toColourspace(data instanceof Uint16Array ? 'grey16' : 'b-w').png(options).toFile(path);
        const fast = await viaFastPath(await readFile(path));
        assert.ok(typeof fast !== 'string', `${path}: fast path declined: ${String(fast)}`);
        assert.deepEqual(fast, await viaSharp(path), path);
        assert.deepEqual(fast, data, path);
      }
    }
  });

  it('declines other PNGs, which readImage still reads through sharp', async () => {
    const [w, h] = [16, 8];
    const grey = Array.from({ length: w * h }, (_, i) => (i * 5) % 256);
    // Interlaced (Adam7), RGB and palette images are sharp's.
    const interlaced = join(dir, 'interlaced.png');
    await sharp(Uint8Array.from(grey), { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w')
      .png({ progressive: true }).toFile(interlaced);
    const rgb = join(dir, 'rgb.png');
    await sharp(Uint8Array.from(grey.flatMap((v) => [v, v, v])), { raw: { width: w, height: h, channels: 3 } }).png().toFile(rgb);
    for (const path of [interlaced, rgb]) {
      assert.equal(native().pngHeader(await readFile(path)), null, path);
      assert.deepEqual(Array.from((await readImage(path)).data), grey, path);
    }
    // An unknown ancillary chunk: the fast path leaves the file to sharp.
    const odd = makeGreyPng(w, h, 8, grey, { extra: [chunk('zzZz', Buffer.from('x'))] });
    assert.match(String(await viaFastPath(odd)), /zzZz left to sharp/);
    const oddPath = join(dir, 'odd.png');
    await writeFile(oddPath, odd);
    assert.deepEqual(Array.from((await readImage(oddPath)).data), grey);
  });

  it('declines damaged files; readImage reports them as before (sharp\'s reasons)', async () => {
    const [w, h] = [64, 64];
    const grey = Array.from(randomBytes(w * h, 3));
    const good = makeGreyPng(w, h, 8, grey, { idatSize: 1000 });
    // A flipped bit in the image data: the chunk CRC no longer matches.
    const flipped = Buffer.from(good);
    flipped[200] ^= 0x10;
    assert.equal(await viaFastPath(flipped), 'chunk CRC mismatch');
    // Cut in the middle of the image data.
    const cut = good.subarray(0, Math.floor(good.length / 2));
    assert.equal(await viaFastPath(cut), 'truncated chunk');
    // A valid CRC over a stream that inflates to too few rows.
    const short = makeGreyPng(w, h - 1, 8, grey.slice(0, w * (h - 1)));
    short.writeUInt32BE(h, 20); // IHDR height
    short.writeUInt32BE(crc32(short.subarray(12, 29)) >>> 0, 29);
    assert.equal(await viaFastPath(short), 'image data does not inflate to the expected size');

    const path = join(dir, 'cut.png');
    await writeFile(path, cut);
    await assert.rejects(readImage(path), (err: unknown) =>
      err instanceof ImageReadError && err.path === path && /truncated/.test(err.message));
    const shortPath = join(dir, 'short.png');
    await writeFile(shortPath, short);
    await assert.rejects(readImage(shortPath), (err: unknown) => err instanceof ImageReadError && err.path === shortPath);
  });

  it('validates its arguments with the parameter named', async () => {
    const file = makeGreyPng(4, 4, 16, Array.from({ length: 16 }, (_, i) => i * 1000));
    assert.throws(() => native().decodeGreyPng(file, new Uint8Array(16)), /Uint16Array or a Float32Array of width\*height = 16 elements for out/);
    assert.throws(() => native().decodeGreyPng(new Uint8Array(40), new Uint8Array(16)), /for file/);
    assert.deepEqual(Array.from(await viaFastPath(file) as Uint16Array), Array.from({ length: 16 }, (_, i) => i * 1000));
  });
});
