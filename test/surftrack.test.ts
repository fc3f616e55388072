/**
 * Surface tracking (Fourier-transform profilometry): the FFT/DCT building blocks, phase
 * unwrapping, the recovery of a known height field from synthetic fringes generated with
 * the same phase-to-height relation, and the command end to end (synthetic series with a
 * corrupt image and `complete` reruns, the shipped samples, MPI against local).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { writeImage } from '../io/images.js';
import { native } from '../native.js';
import { defaults } from '../params/schema.js';
import { surftrackSchema } from '../params/surftrack.js';
import type { ParamTree } from '../params/tree.js';
import { dct, dct2, idct, idct2 } from '../works/surftrack/dct.js';
import { fft2, plan } from '../works/surftrack/fft.js';
import { readSurfFile } from '../works/surftrack/file.js';
import { heightToPhase, phaseToHeight, type Geometry } from '../works/surftrack/height.js';
import { unwrap, wrap } from '../works/surftrack/unwrap.js';
import { prepareSetup, WorkSurfaceTracking, type Frame } from '../works/surftrack/work.js';
import { sliceIndices } from '../topologies/surftrack.js';
import { HAS_MPIRUN, launchMpirun, listJobDirs, makeTempDir, removeDir, runCli, SHARED_SAMPLES, type CliResult } from './helpers/cli.js';

// ------------------------------------------------------------------------------------------
// Synthetic fringes

/** Geometry of the synthetic cases: 1 mm pixels, camera at 1 m, lenses 0.3 m apart. */
const PIX = 1e-3;
const L = 1;
const D = 0.3;

type HeightFn = (x: number, y: number) => number;

interface FringeCase {
  width: number;
  height: number;
  /** Fringe period in pixels and direction of the wave vector (rad from the x axis). */
  period: number;
  angle?: number;
  noise?: number;
  seed?: number;
  /** Make the camera parallax (what correct_pos undoes). */
  parallax?: boolean;
}

const geometryOf = (c: FringeCase): Geometry => ({ distanceObject: L, distanceLens: D, waveProj: PIX * c.period });

/** Deterministic uniform noise in [-0.5, 0.5). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/**
 * An 8-bit image of fringes I = light (a + b cos(k.x + dphi)), dphi from the height through
 * the phase-to-height relation; uneven lighting along y and x, noise, rounding.
 */
function fringes(c: FringeCase, h: HeightFn): Uint8Array {
  const g = geometryOf(c);
  const angle = c.angle ?? 0;
  const kx = ((2 * Math.PI) / c.period) * Math.cos(angle);
  const ky = ((2 * Math.PI) / c.period) * Math.sin(angle);
  const noise = rng(c.seed ?? 1);
  const xc = c.width / 2;
  const yc = c.height / 2;
  const out = new Uint8Array(c.width * c.height);
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      let hx = h(x, y);
      if (c.parallax) {
        // The camera sees at pixel P the point Q with P = Q / (1 - h(Q) / L) around the centre.
        let qx = x;
        let qy = y;
        for (let it = 0; it < 30; it++) {
          const f = 1 - h(qx, qy) / L;
          qx = xc + (x - xc) * f;
          qy = yc + (y - yc) * f;
        }
        hx = h(qx, qy);
      }
      const phi = kx * x + ky * y + heightToPhase(hx, g);
      const light = (0.85 + 0.15 * Math.sin(y / 37)) * (0.9 + 0.1 * Math.cos(x / 53));
      const v = light * (125 + 95 * Math.cos(phi)) + (c.noise ?? 4) * noise();
      out[y * c.width + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return out;
}

const frame = (c: FringeCase, data: Uint8Array): Frame => ({ data, width: c.width, height: c.height });

/** A Gaussian bump of height `amp` (m) centred at (x0, y0) with width `sigma` pixels. */
const bump = (amp: number, x0: number, y0: number, sigma: number): HeightFn =>
  (x, y) => amp * Math.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma * sigma));

function paramsFor(set: Record<string, unknown> = {}): ParamTree {
  const params = defaults(surftrackSchema);
  const st = params.surface_tracking as ParamTree;
  st.pix_size = PIX;
  st.distance_object = L;
  st.distance_lens = D;
  for (const [k, v] of Object.entries(set)) st[k] = v as ParamTree[string];
  return params;
}

/** A height field on its grid (a result, or a file read back). */
interface HeightGrid {
  ny: number;
  nx: number;
  ix: Float32Array;
  iy: Float32Array;
  height: Float32Array;
}

/** RMS and max of (result - truth) over the grid points at least `margin` pixels inside the crop. */
function heightError(r: HeightGrid, truth: HeightFn, margin: number, crop?: { x0: number; x1: number; y0: number; y1: number }): { rms: number; max: number; n: number } {
  let se = 0;
  let max = 0;
  let n = 0;
  const x0 = crop?.x0 ?? r.ix[0];
  const x1 = crop?.x1 ?? r.ix[r.nx - 1];
  const y0 = crop?.y0 ?? r.iy[0];
  const y1 = crop?.y1 ?? r.iy[r.ny - 1];
  for (let j = 0; j < r.ny; j++) {
    for (let i = 0; i < r.nx; i++) {
      const x = r.ix[i];
      const y = r.iy[j];
      if (x < x0 + margin || x > x1 - margin || y < y0 + margin || y > y1 - margin) continue;
      const e = r.height[j * r.nx + i] - truth(x, y);
      se += e * e;
      max = Math.max(max, Math.abs(e));
      n++;
    }
  }
  return { rms: Math.sqrt(se / n), max, n };
}

// ------------------------------------------------------------------------------------------

describe('surface tracking: numerics', function () {
  this.timeout(120_000);

  it('FFTs of any length match the direct DFT and invert exactly; DCT-II round trip', () => {
    const rand = rng(7);
    for (const n of [1, 2, 3, 5, 8, 12, 19, 60, 165, 380, 97, 1021]) {
      const re = Float64Array.from({ length: n }, rand);
      const im = Float64Array.from({ length: n }, rand);
      const xr = Float64Array.from(re);
      const xi = Float64Array.from(im);
      plan(n).forward(xr, xi);
      let err = 0;
      for (let k = 0; k < n; k++) {
        let sr = 0;
        let si = 0;
        for (let j = 0; j < n; j++) {
          const a = (-2 * Math.PI * ((j * k) % n)) / n;
          sr += re[j] * Math.cos(a) - im[j] * Math.sin(a);
          si += re[j] * Math.sin(a) + im[j] * Math.cos(a);
        }
        err = Math.max(err, Math.abs(sr - xr[k]), Math.abs(si - xi[k]));
      }
      assert.ok(err < 1e-11 * Math.max(1, n), `n=${n}: forward error ${err}`);
      plan(n).inverse(xr, xi);
      for (let k = 0; k < n; k++) assert.ok(Math.abs(xr[k] - re[k]) < 1e-12 && Math.abs(xi[k] - im[k]) < 1e-12, `n=${n}: inverse`);
      const c = new Float64Array(n);
      dct(re, c);
      for (const k of [0, n >> 1, n - 1]) {
        let s = 0;
        for (let j = 0; j < n; j++) s += re[j] * Math.cos((Math.PI * k * (2 * j + 1)) / (2 * n));
        assert.ok(Math.abs(s - c[k]) < 1e-10 * Math.max(1, n), `n=${n}: DCT bin ${k}`);
      }
      idct(c, c);
      for (let k = 0; k < n; k++) assert.ok(Math.abs(c[k] - re[k]) < 1e-12, `n=${n}: inverse DCT`);
    }
    // 2D DCT (two rows or columns per complex FFT, odd counts included): exact round trip.
    for (const [ny, nx] of [[7, 6], [6, 9], [1, 5]]) {
      const a = Float64Array.from({ length: ny * nx }, rand);
      const b = Float64Array.from(a);
      dct2(b, ny, nx);
      let s = 0;
      for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) s += a[y * nx + x] * Math.cos((Math.PI * 2 * (2 * x + 1)) / (2 * nx)) * Math.cos((Math.PI * (ny - 1) * (2 * y + 1)) / (2 * ny));
      assert.ok(Math.abs(s - b[(ny - 1) * nx + 2]) < 1e-12, `${ny}x${nx}: DCT coefficient`);
      idct2(b, ny, nx);
      for (let k = 0; k < a.length; k++) assert.ok(Math.abs(a[k] - b[k]) < 1e-12, `${ny}x${nx}: 2D round trip`);
    }
    // 2D: a single Fourier mode lands in its bin.
    const [ny, nx] = [30, 19];
    const re = new Float64Array(ny * nx);
    const im = new Float64Array(ny * nx);
    for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) re[y * nx + x] = Math.cos(2 * Math.PI * (3 * x / nx + 4 * y / ny));
    fft2(re, im, ny, nx);
    assert.ok(Math.abs(re[4 * nx + 3] - (nx * ny) / 2) < 1e-9);
    assert.ok(Math.abs(re[(ny - 4) * nx + (nx - 3)] - (nx * ny) / 2) < 1e-9);
  });

  it('unwraps a smooth phase of several turns with noise (least squares and rows/columns)', () => {
    const [ny, nx] = [90, 120];
    const rand = rng(3);
    const truth = new Float64Array(ny * nx);
    const psi = new Float64Array(ny * nx);
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const k = y * nx + x;
        truth[k] = 25 * Math.exp(-((x - 60) ** 2 + (y - 40) ** 2) / 900) + 0.08 * x - 0.05 * y;
        psi[k] = wrap(truth[k] + 0.3 * rand());
      }
    }
    for (const method of ['least_squares', 'rows_columns'] as const) {
      const phi = unwrap(psi, ny, nx, method);
      const shift = phi[0] - psi[0] - (truth[0] - wrap(truth[0]));
      let worst = 0;
      for (let k = 0; k < phi.length; k++) worst = Math.max(worst, Math.abs(phi[k] - shift - truth[k]));
      // Exact up to the noise (0.15 rad at most): no 2 pi error anywhere.
      assert.ok(worst < 0.2, `${method}: worst ${worst}`);
    }
    // A noisy patch (no fringes) spoils only itself with least squares.
    const spoiled = Float64Array.from(psi);
    for (let y = 40; y < 50; y++) for (let x = 0; x < 30; x++) spoiled[y * nx + x] = Math.PI * 2 * rand();
    const phi = unwrap(spoiled, ny, nx, 'least_squares');
    const shift = phi[nx * ny - 1] - truth[nx * ny - 1];
    let bad = 0;
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const far = y < 30 || y > 60 || x > 45;
        if (far && Math.abs(phi[y * nx + x] - shift - truth[y * nx + x]) > 1) bad++;
      }
    }
    assert.equal(bad, 0, 'least squares: errors outside the noisy patch');
  });

  it('recovers a known height field from synthetic fringes: RMS < 1% of the maximum away from the borders', () => {
    const c: FringeCase = { width: 300, height: 260, period: 7.3, angle: 0.06, noise: 6 };
    const g = geometryOf(c);
    const setup = prepareSetup(paramsFor(), [frame(c, fringes({ ...c, seed: 11 }, () => 0)), frame(c, fringes({ ...c, seed: 12 }, () => 0))]);
    // Carrier measured to 1/16 of a bin: the wavelength within 0.1%.
    assert.ok(Math.abs(setup.geometry.waveProj / g.waveProj - 1) < 1e-3, `wave_proj ${setup.geometry.waveProj}`);
    const work = new WorkSurfaceTracking(setup);
    for (const amp of [0.04, -0.06]) {
      const truth = bump(amp, 160, 150, 45);
      const r = work.calcul(frame(c, fringes({ ...c, seed: 5 }, truth)));
      const peakPhase = heightToPhase(amp, g);
      assert.ok(Math.abs(peakPhase) > 10, 'several fringes of shift: unwrapping is exercised');
      const e = heightError(r, truth, 16);
      assert.ok(e.rms < 0.01 * Math.abs(amp), `amp ${amp}: RMS ${e.rms} (${(100 * e.rms / Math.abs(amp)).toFixed(2)}%)`);
      assert.ok(e.max < 0.05 * Math.abs(amp), `amp ${amp}: max error ${e.max}`);
      assert.equal(r.validFraction, 1);
      // The bump's tail at the anchor (row 13, column 150) is about 1% of its height.
      assert.ok(Math.abs(r.anchorPhase - heightToPhase(truth(150, 13), g)) < 0.05, `anchor phase ${r.anchorPhase}`);
    }
    // Rows/columns unwrapping (Fluidimage's) gives the same on clean data.
    const rc = new WorkSurfaceTracking({ ...setup, unwrap: 'rows_columns' }).calcul(frame(c, fringes({ ...c, seed: 5 }, bump(0.04, 160, 150, 45))));
    assert.ok(heightError(rc, bump(0.04, 160, 150, 45), 16).rms < 4e-4);
  });

  it('fixes the 2 pi ambiguity at the anchor, crops, subsamples (red_factor) and undoes the parallax (correct_pos)', () => {
    const c: FringeCase = { width: 256, height: 240, period: 6.4, noise: 3 };
    const refs = [frame(c, fringes(c, () => 0))];
    const g = geometryOf(c);
    const work = new WorkSurfaceTracking(prepareSetup(paramsFor(), refs));
    // A uniform rise shifting the fringes by 0.4 of a period (phase -0.8 pi) is measured...
    const rise = phaseToHeight(-0.8 * Math.PI, g);
    const flat = work.calcul(frame(c, fringes(c, () => rise)));
    assert.ok(Math.abs(flat.anchorPhase + 0.8 * Math.PI) < 0.05, `anchor phase ${flat.anchorPhase}`);
    assert.ok(heightError(flat, () => rise, 16).rms < 0.02 * Math.abs(rise));
    // ... but 0.6 of a period (-1.2 pi) is read as -0.4 of a period the other way: each frame's
    // 2 pi ambiguity is fixed against the reference at the anchor (documented limitation).
    const tooHigh = work.calcul(frame(c, fringes(c, () => phaseToHeight(-1.2 * Math.PI, g))));
    assert.ok(Math.abs(tooHigh.anchorPhase - 0.8 * Math.PI) < 0.05, `anchor phase ${tooHigh.anchorPhase}`);
    assert.ok(Math.abs(tooHigh.phase[100 * tooHigh.nx + 100] - 0.8 * Math.PI) < 0.05);
    // Crop and red_factor: the grid is the crop subsampled, heights unchanged.
    const truth = bump(0.03, 128, 140, 40);
    const cropped = new WorkSurfaceTracking(prepareSetup(paramsFor({ xmin: 20, xmax: 236, ymin: 30, ymax: 230, red_factor: 2 }), refs))
      .calcul(frame(c, fringes(c, truth)));
    assert.equal(cropped.nx, 108);
    assert.equal(cropped.ny, 100);
    assert.equal(cropped.ix[0], 20);
    assert.equal(cropped.ix[1], 22);
    assert.equal(cropped.iy[cropped.ny - 1], 228);
    const ec = heightError(cropped, truth, 12, { x0: 20, x1: 235, y0: 30, y1: 229 });
    assert.ok(ec.rms < 0.01 * 0.03, `cropped: RMS ${ec.rms}`);
    // Parallax: without the correction the bump is seen enlarged (errors up to 3-4% of its
    // height), with it the error falls 4-fold (RMS 0.2%).
    const big = bump(0.06, 150, 130, 35);
    const seen = frame(c, fringes({ ...c, parallax: true }, big));
    const plain = new WorkSurfaceTracking(prepareSetup(paramsFor(), refs)).calcul(seen);
    const corrected = new WorkSurfaceTracking(prepareSetup(paramsFor({ correct_pos: true }), refs)).calcul(seen);
    const ep = heightError(plain, big, 20);
    const eq = heightError(corrected, big, 20);
    assert.ok(ep.max > 0.03 * 0.06, `parallax visible without correction: max error ${ep.max}`);
    assert.ok(eq.rms < 0.005 * 0.06 && eq.rms < ep.rms / 3, `correct_pos: RMS ${eq.rms} (without: ${ep.rms})`);
  });

  it('selects reference images with Python slices', () => {
    assert.deepEqual(sliceIndices(':3', 9), [0, 1, 2]);
    assert.deepEqual(sliceIndices('::4', 9), [0, 4, 8]);
    assert.deepEqual(sliceIndices('-2:', 9), [7, 8]);
    assert.deepEqual(sliceIndices('5:2:-1', 9), [5, 4, 3]);
    assert.deepEqual(sliceIndices('3:100', 5), [3, 4]);
  });
});

// ------------------------------------------------------------------------------------------

/** A series on disk: 2 reference images (flat surface), then frames with a growing bump. */
const SERIES: FringeCase = { width: 240, height: 200, period: 7.3, noise: 5 };
const AMPS = [0, 0, 0.01, 0.02, 0.03, 0.04];
const seriesHeight = (k: number): HeightFn => bump(AMPS[k], 120 + 3 * k, 120, 35);
const SERIES_SET = ['--set', `surface_tracking.pix_size=${PIX}`, '--set', `surface_tracking.distance_object=${L}`,
  '--set', `surface_tracking.distance_lens=${D}`, '--set', 'images.str_slice_ref=:2'];

async function writeSeries(dir: string): Promise<void> {
  for (let k = 0; k < AMPS.length; k++) {
    await writeImage(join(dir, `im_${String(k).padStart(2, '0')}.png`), SERIES.width, SERIES.height, fringes({ ...SERIES, seed: 100 + k }, seriesHeight(k)));
  }
}

const h5Names = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((f) => f.endsWith('.h5')).sort();

describe('surface tracking: command line', function () {
  this.timeout(180_000);
  let dir: string | undefined;
  afterEach(async () => removeDir(dir));

  it('processes a synthetic series: surf_<index>.h5 with the known heights, a corrupt image, complete reruns', async () => {
    dir = await makeTempDir('surf');
    const images = join(dir, 'images');
    await mkdir(images);
    await writeSeries(images);
    // A truncated PNG among the frames: that item fails with a clear error, the others land.
    await writeImage(join(images, 'im_06.png'), SERIES.width, SERIES.height, fringes(SERIES, seriesHeight(5)));
    await truncate(join(images, 'im_06.png'), 3000);
    const out = join(dir, 'out');
    const args = ['surftrack', images, '-o', out, ...SERIES_SET];
    const r = await runCli(args);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /7 image\(s\) in the series/);
    assert.match(r.stderr, /failed: im_06\.png: Cannot read image .*im_06\.png/);
    assert.deepEqual(await h5Names(out), ['surf_00.h5', 'surf_01.h5', 'surf_02.h5', 'surf_03.h5', 'surf_04.h5', 'surf_05.h5']);
    const [job] = await listJobDirs(out);
    assert.deepEqual(await readdir(join(out, job, 'failed')), ['im_06.png.txt']);
    const summary = JSON.parse(await readFile(join(out, job, 'summary.json'), 'utf8')) as { failed: { name: string }[] };
    assert.deepEqual(summary.failed.map((f) => f.name), ['im_06.png']);

    // Heights: RMS error within 2% of each frame's maximum, 16 px from the borders; the
    // references (flat) within 0.2 mm.
    for (let k = 0; k < AMPS.length; k++) {
      const f = await readSurfFile(join(out, `surf_${String(k).padStart(2, '0')}.h5`));
      assert.equal(f.name, `im_${String(k).padStart(2, '0')}.png`);
      assert.equal(f.ny * f.nx, f.height.length);
      assert.equal(f.nx, SERIES.width);
      assert.ok(Math.abs(f.x[1] - f.x[0] - PIX) < 1e-9, 'x in metres');
      const e = heightError(f, seriesHeight(k), 16);
      assert.ok(e.rms < 0.02 * (AMPS[k] || 0.01), `frame ${k}: RMS ${e.rms}`);
      // The anchor (row 10, column 120) sees the bump's tail.
      const expected = heightToPhase(seriesHeight(k)(120, 10), geometryOf(SERIES));
      assert.ok(Math.abs(f.anchorPhase - expected) < 0.05, `frame ${k}: anchor phase ${f.anchorPhase}, expected ${expected}`);
    }
    // The params are stored; the job's params.yaml reruns the same computation.
    const params = await readFile(join(out, job, 'params.yaml'), 'utf8');
    assert.match(params, /str_slice_ref: ":2"|str_slice_ref: :2|str_slice_ref: ':2'/);

    // complete: nothing but the failed image is computed again.
    const mtime = (await stat(join(out, 'surf_03.h5'))).mtimeMs;
    const again = await runCli(args);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /6 already done, 1 to compute/);
    assert.equal((await stat(join(out, 'surf_03.h5'))).mtimeMs, mtime);
    // Repaired image and one result removed: exactly those two are computed.
    await writeImage(join(images, 'im_06.png'), SERIES.width, SERIES.height, fringes(SERIES, seriesHeight(5)));
    await rm(join(out, 'surf_02.h5'));
    const third = await runCli(args);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stderr, /5 already done, 2 to compute/);
    assert.equal((await h5Names(out)).length, 7);
  });

  it('prints its parameters; bad parameters and references are errors naming the key', async () => {
    dir = await makeTempDir('surf');
    const p = await runCli(['params', 'surftrack']);
    assert.equal(p.code, 0);
    assert.match(p.stdout, /surface_tracking:\n/);
    for (const key of ['distance_object', 'distance_lens', 'pix_size', 'wave_proj', 'startref_frame', 'lastref_frame', 'sur', 'k_x', 'k_y', 'slicer', 'red_factor', 'correct_pos', 'offset', 'path_ref', 'str_slice_ref']) {
      assert.match(p.stdout, new RegExp(`\\n  ${key}: `), key);
    }
    const images = join(dir, 'images');
    await mkdir(images);
    await writeSeries(images);
    const bad = await runCli(['surftrack', images, '-o', join(dir, 'o1'), '--set', 'surface_tracking.xmax=500']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /surface_tracking\.xmax: the crop goes past the right edge/);
    const slice = await runCli(['surftrack', images, '-o', join(dir, 'o2'), '--set', 'images.str_slice_ref=10:']);
    assert.equal(slice.code, 2);
    assert.match(slice.stderr, /No reference image selected among the 6 image\(s\)/);
    const typo = await runCli(['surftrack', images, '--set', 'surface_tracking.slicer=0']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /surface_tracking\.slicer/);
  });

  it('processes the shipped samples (SurfTracking/Images) into consistent height fields', async function () {
    const samples = join(SHARED_SAMPLES, 'SurfTracking', 'Images');
    if (!existsSync(join(samples, 'image9.png'))) {
      console.log(`    (skipped: ${samples} is absent)`);
      this.skip();
    }
    dir = await makeTempDir('surf');
    const out = join(dir, 'out');
    // The plate with fringes: x 70:330, y 50:700 (Fluidimage's ymin, ymax); frames 0-2 as references.
    const r = await runCli(['surftrack', samples, '-o', out, '--set', 'images.str_slice_ref=:3',
      '--set', 'surface_tracking.xmin=70', '--set', 'surface_tracking.xmax=330',
      '--set', 'surface_tracking.ymin=50', '--set', 'surface_tracking.ymax=700']);
    assert.equal(r.code, 0, r.stderr);
    const names = await h5Names(out);
    assert.deepEqual(names, Array.from({ length: 9 }, (_, k) => `surf_${k + 1}.h5`));
    let previous: Float32Array | undefined;
    const medians: number[] = [];
    for (const name of names) {
      const f = await readSurfFile(join(out, name));
      assert.deepEqual([f.ny, f.nx], [650, 260]);
      // The anchor (top of the plate) barely moves: far from the +-pi limit.
      assert.ok(Math.abs(f.anchorPhase) < 0.5, `${name}: anchor phase ${f.anchorPhase}`);
      const finite = f.height.filter((v) => Number.isFinite(v));
      assert.ok(finite.length > 0.95 * f.height.length, `${name}: ${finite.length} finite heights`);
      const sorted = Float32Array.from(finite).sort();
      medians.push(sorted[sorted.length >> 1]);
      // Sub-millimetre heights (the surface barely moves in these 9 frames).
      assert.ok(Math.abs(sorted[Math.floor(0.01 * sorted.length)]) < 1e-3 && Math.abs(sorted[Math.floor(0.99 * sorted.length)]) < 1e-3);
      if (previous) {
        // From one frame to the next: a small change everywhere, far below one fringe
        // shift (lambda L / D ~ 5.7 mm here), so no 2 pi jump between frames.
        let se = 0;
        let n = 0;
        for (let k = 0; k < f.height.length; k++) {
          if (Number.isFinite(f.height[k]) && Number.isFinite(previous[k])) {
            se += (f.height[k] - previous[k]) ** 2;
            n++;
          }
        }
        assert.ok(Math.sqrt(se / n) < 2e-4, `${name}: RMS change from the previous frame ${Math.sqrt(se / n)}`);
      }
      previous = f.height;
    }
    // The surface rises steadily over the series.
    for (let k = 3; k < medians.length; k++) assert.ok(medians[k] > medians[k - 1], `median heights ${medians.join(', ')}`);
  });

  it('gives the same files under mpirun -n 2 as with the local executor', async function () {
    if (!HAS_MPIRUN || !native().mpiAvailable()) {
      console.log('    (skipped: no mpirun or native core without MPI)');
      this.skip();
    }
    dir = await makeTempDir('surf');
    const images = join(dir, 'images');
    await mkdir(images);
    await writeSeries(images);
    const local = await runCli(['surftrack', images, '-o', join(dir, 'local'), '-q', ...SERIES_SET]);
    assert.equal(local.code, 0, local.stderr);
    const mpi = await mpirun(2, ['surftrack', images, '-o', join(dir, 'mpi'), ...SERIES_SET]);
    assert.equal(mpi.code, 0, mpi.stderr);
    assert.match(mpi.stderr, /executor mpi with 2 rank/);
    for (const name of await h5Names(join(dir, 'local'))) {
      const a = await readSurfFile(join(dir, 'local', name));
      const b = await readSurfFile(join(dir, 'mpi', name));
      assert.deepEqual(b.height, a.height, name);
    }
  });
});

/** `mpirun -n N node dist/run.js ...args`. */
const mpirun = (n: number, args: readonly string[]): Promise<CliResult> => launchMpirun(n, args, { timeoutMs: 120_000 }).done;
