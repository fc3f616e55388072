/**
 * Fuzzing of the native calls (`npm run fuzz:native` runs it against a build with
 * AddressSanitizer, see scripts/fuzz-asan): random image sizes down to 1 pixel, NaN,
 * median residuals of random fields with holes,
 * windows far outside the images, every correlation option, spline coefficients in place
 * and reused output buffers, huge displacements, degenerate TPS point sets (collinear,
 * duplicated), grey PNGs with damaged data behind valid checksums (odd filter bytes, broken
 * deflate streams, wrong sizes in IHDR, cut files). Argument errors (ERR_INVALID_ARG_TYPE) are expected and ignored; anything
 * else, or a sanitizer report, is a bug. Prints "ok" at the end.
 *
 * Options: --seed N (default 1), --iterations N (default 300).
 */
import { parseArgs } from 'node:util';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { native, type SplineDegree } from '../native.js';

const { values } = parseArgs({ options: { seed: { type: 'string', default: '1' }, iterations: { type: 'string', default: '300' } } });
let state = Number(values.seed);
const rnd = (): number => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
const ri = (a: number, b: number): number => a + Math.floor(rnd() * (b - a + 1));

/** Runs `f`, ignoring argument errors (the inputs are random on purpose). */
async function tolerant(f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_INVALID_ARG_TYPE') throw e;
  }
}

const core = native();
/** How the damaged PNGs ended (printed at the end: the damage must reach past the checksums). */
const pngOutcomes = new Map<string, number>();
const iterations = Number(values.iterations);
for (let it = 0; it < iterations; it++) {
  const ny = ri(1, 70);
  const nx = ri(1, 70);
  const im0 = new Float32Array(ny * nx).map(() => rnd() * 255);
  const im1 = new Float32Array(ny * nx).map(() => rnd() * 255);
  const nanRate = rnd() < 0.3 ? rnd() : 0;
  for (let k = 0; k < ny * nx; k++) if (rnd() < nanRate) im0[k] = Number.NaN;
  // Half the passes with windows anywhere (mostly rejected), half with small windows inside
  // the image (correlated, peaks near the edges of small boxes).
  const inside = rnd() < 0.5;
  const [h0, w0] = inside ? [ri(4, Math.max(4, Math.min(ny, 12))), ri(4, Math.max(4, Math.min(nx, 12)))] : [ri(4, 40), ri(4, 40)];
  const [h1, w1] = inside && rnd() < 0.7 ? [h0, w0] : [ri(4, 48), ri(4, 48)];
  const n = ri(1, 40);
  const starts0: number[] = [];
  const starts1: number[] = [];
  for (let k = 0; k < n; k++) {
    if (inside) {
      const sy = ri(0, Math.max(0, ny - h0));
      const sx = ri(0, Math.max(0, nx - w0));
      starts0.push(sy, sx);
      starts1.push(sy + ri(-2, 2), sx + ri(-2, 2));
    } else {
      starts0.push(ri(-50, ny + 10), ri(-50, nx + 10));
      starts1.push(ri(-50, ny + 10), ri(-50, nx + 10));
    }
  }
  await tolerant(() => core.correlatePass({
    im0, im1, height: ny, width: nx, h0, w0, h1, w1,
    starts0: Int32Array.from(starts0), starts1: Int32Array.from(starts1),
    displacementMax: rnd() < 0.5 ? 0 : rnd() * 30, subpix: ri(0, 3), nsubpix: ri(1, 8), minValidFraction: rnd(),
    nbPeaks: ri(1, 8), particleRadius: ri(0, 8), windowSigma: rnd() < 0.5 ? 0 : rnd() * 3, profile: rnd() < 0.3,
  }, ri(1, 4)));

  const gx = ri(1, 7);
  const gy = ri(1, 7);
  const xs = Float32Array.from({ length: gx }, (_, i) => i * 13.7 - 5);
  const ys = Float32Array.from({ length: gy }, (_, i) => i * 11.3 - 3);
  const span = rnd() < 0.2 ? 2000 : 20;
  const dx = new Float32Array(gx * gy).map(() => (rnd() - 0.5) * span);
  const dy = new Float32Array(gx * gy).map(() => (rnd() - 0.5) * span);
  const degree: SplineDegree = rnd() < 0.5 ? 5 : 7;
  await tolerant(async () => {
    const own0 = im0.slice();
    const own1 = im1.slice();
    const spline = await core.splinePair({ im0: own0, im1: own1, height: ny, width: nx, degree, coef0: own0, coef1: rnd() < 0.5 ? own1 : undefined }, ri(1, 2));
    await core.deformPair({ spline, height: ny, width: nx, xs, ys, dx, dy, out0: new Float32Array(ny * nx) }, ri(1, 4));
    await core.deformPair({ im0, im1, height: ny, width: nx, degree, xs, ys, dx, dy }, ri(1, 4));
  });

  {
    const gy2 = ri(1, 40);
    const gx2 = ri(1, 40);
    const field = () => new Float32Array(gy2 * gx2).map(() => (rnd() < 0.2 ? Number.NaN : (rnd() - 0.5) * 10));
    await tolerant(async () => core.medianResiduals({ dx: field(), dy: field(), ny: gy2, nx: gx2, epsilon: 0.01 + rnd() }));
  }

  const m = ri(1, 300);
  const x = new Float64Array(m);
  const y = new Float64Array(m);
  const kind = ri(0, 3);
  const row = ri(1, 20);
  for (let k = 0; k < m; k++) {
    if (kind === 0) [x[k], y[k]] = [8 * (k % row), 8 * Math.floor(k / row)]; // lattice
    else if (kind === 1) [x[k], y[k]] = [rnd() * 100, rnd() * 100]; // scattered
    else if (kind === 2) [x[k], y[k]] = [k, 2 * k]; // collinear
    else [x[k], y[k]] = [5, 5 + (k % 3)]; // duplicates
  }
  await tolerant(() => core.tpsSmooth({
    x, y, u: new Float64Array(m).map(() => rnd()), v: new Float64Array(m).map(() => rnd()),
    xNew: rnd() < 0.5 ? x : x.map((q) => q + rnd()), yNew: y,
    subdomSize: ri(1, 300), smoothingCoef: rnd() * 10, threshold: 0.01 + rnd(),
  }, ri(1, 4)));

  await fuzzPng();
}
console.log(`PNG fast path: ${[...pngOutcomes].map(([k, v]) => `${k === "" ? "decoded" : k} ${v}`).join(", ")}`);
console.log(`ok: ${iterations} iterations, seed ${values.seed}`);

/**
 * A grey PNG from sharp (random size, depth, filtering), damaged at random places, with
 * every chunk CRC recomputed so that the damage reaches the inflate and the unfiltering.
 */
async function fuzzPng(): Promise<void> {
  const [w, h] = [ri(1, 40), ri(1, 40)];
  const depth = rnd() < 0.5 ? 8 : 16;
  const pixels = depth === 8 ? new Uint8Array(w * h).map(() => ri(0, 255)) : new Uint16Array(w * h).map(() => ri(0, 65535));
  const png = await sharp(pixels, { raw: { width: w, height: h, channels: 1 } }).toColourspace(depth === 8 ? 'b-w' : 'grey16')
    .png({ compressionLevel: ri(0, 9), adaptiveFiltering: rnd() < 0.5 }).toBuffer();
  const file = Buffer.from(png);
  for (let k = ri(0, 6); k > 0; k--) file[ri(8, file.length - 1)] = ri(0, 255);
  if (rnd() < 0.3) file.writeUInt32BE(ri(1, 60), rnd() < 0.5 ? 16 : 20); // IHDR width or height
  // Recompute the CRC of every whole chunk still delimited by its length field.
  for (let at = 8; at + 12 <= file.length;) {
    const len = file.readUInt32BE(at);
    if (len > file.length - at - 12) break;
    file.writeUInt32BE(crc32(file.subarray(at + 4, at + 8 + len)) >>> 0, at + 8 + len);
    at += 12 + len;
  }
  const bytes = rnd() < 0.2 ? file.subarray(0, ri(0, file.length)) : file;
  const header = core.pngHeader(bytes);
  if (header === null) return;
  const out = header.bitDepth === 8 ? new Uint8Array(header.width * header.height) : new Uint16Array(header.width * header.height);
  const declined = await core.decodeGreyPng(bytes, out);
  if (typeof declined !== 'string') throw new Error('decodeGreyPng: expected a string');
  pngOutcomes.set(declined, (pngOutcomes.get(declined) ?? 0) + 1);
}
