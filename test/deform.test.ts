import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { native, type SplineDegree } from '../native.js';

/** Gaussian particles (standard deviation sigma, px) at given positions, n x n image. */
function particles(n: number, pos: [number, number][], shiftX = 0, shiftY = 0, sigma = 0.7): Float32Array {
  const im = new Float32Array(n * n);
  for (const [px, py] of pos) {
    const cx = px + shiftX;
    const cy = py + shiftY;
    for (let y = Math.max(0, Math.floor(cy - 4)); y <= Math.min(n - 1, Math.ceil(cy + 4)); y++)
      for (let x = Math.max(0, Math.floor(cx - 4)); x <= Math.min(n - 1, Math.ceil(cx + 4)); x++)
        im[y * n + x] += 200 * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma));
  }
  return im;
}

function randomPositions(n: number, count: number, seed: number): [number, number][] {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return Array.from({ length: count }, () => [rand() * n, rand() * n]);
}

/** A constant field on a coarse grid. */
function uniformGrid(n: number, dx: number, dy: number) {
  const axis = Float32Array.from({ length: 9 }, (_, i) => (i * (n - 1)) / 8);
  return { xs: axis, ys: axis, dx: new Float32Array(81).fill(dx), dy: new Float32Array(81).fill(dy) };
}

/** Max |a - b| over the interior (a border of `margin` pixels left out), relative to max |b|. */
function interiorError(a: Float32Array, b: Float32Array, n: number, margin: number): number {
  let err = 0;
  let peak = 0;
  for (let y = margin; y < n - margin; y++) for (let x = margin; x < n - margin; x++) {
    err = Math.max(err, Math.abs(a[y * n + x] - b[y * n + x]));
    peak = Math.max(peak, Math.abs(b[y * n + x]));
  }
  return err / peak;
}

describe('image deformation (B-splines)', () => {
  const n = 96;
  const pos = randomPositions(n, 300, 7);
  const im = particles(n, pos);

  for (const degree of [3, 5, 7] as SplineDegree[]) {
    it(`degree ${degree}: resamples a particle image at a sub-pixel shift like the analytic image`, async () => {
      // Particles 2.4 px wide (sigma 0.6 px, as in PIV recordings) are not band-limited and no
      // interpolation recovers them to better than some percent; with sigma 1 px it can.
      const wide = particles(n, pos, 0, 0, 1);
      // Image 0 is sampled at x - d/2: its content moves by +d/2.
      const [dx, dy] = [1.3, -0.7];
      const out = await native().deformPair({ im0: wide, im1: wide, height: n, width: n, degree, ...uniformGrid(n, dx, dy) });
      const e0 = interiorError(out.im0, particles(n, pos, dx / 2, dy / 2, 1), n, 8);
      const e1 = interiorError(out.im1, particles(n, pos, -dx / 2, -dy / 2, 1), n, 8);
      const bound = degree === 7 ? 0.01 : degree === 5 ? 0.015 : 0.04;
      assert.ok(e0 < bound && e1 < bound, `relative errors ${e0}, ${e1}`);
    });
  }

  it('septic splines resample particle images more accurately than quintic ones', async () => {
    const grid = uniformGrid(n, 0.7, 0.3);
    const truth = particles(n, pos, 0.35, 0.15);
    const e = async (degree: SplineDegree) =>
      interiorError((await native().deformPair({ im0: im, im1: im, height: n, width: n, degree, ...grid })).im0, truth, n, 8);
    const [e5, e7] = [await e(5), await e(7)];
    assert.ok(e7 < e5, `septic ${e7} vs quintic ${e5}`);
  });

  it('coefficients computed once (splinePair) give the same images as pixels prefiltered per call', async () => {
    const im1 = particles(n, pos, 0.5, 0.25);
    const grid = { xs: Float32Array.of(10, 50, 90), ys: Float32Array.of(5, 60, 95), dx: Float32Array.of(1, 2, 3, 0, -1, 2, 1.5, 0.5, -2), dy: Float32Array.of(0, 1, -1, 2, 0.5, 0, -0.5, 1, 0) };
    const spline = await native().splinePair({ im0: im, im1, height: n, width: n, degree: 7 });
    assert.equal(spline.valid0, null);
    const a = await native().deformPair({ spline, height: n, width: n, ...grid });
    const b = await native().deformPair({ im0: im, im1, height: n, width: n, degree: 7, ...grid }, 2);
    assert.deepEqual(a.im0, b.im0);
    assert.deepEqual(a.im1, b.im1);
  });

  it('gives NaN outside the image and where the nearest source pixel is NaN (masked)', async () => {
    const masked = im.slice();
    for (let y = 40; y < 50; y++) for (let x = 40; x < 50; x++) masked[y * n + x] = Number.NaN;
    const spline = await native().splinePair({ im0: masked, im1: im, height: n, width: n });
    assert.ok(spline.valid0 instanceof Uint8Array && spline.valid0[45 * n + 45] === 0 && spline.valid0[0] === 1);
    assert.equal(spline.valid1, null);
    const out = await native().deformPair({ spline, height: n, width: n, ...uniformGrid(n, 10, 0) });
    // Image 0 is sampled at x - 5: column 2 reads outside, (45, 50) reads the masked (45, 45).
    assert.ok(Number.isNaN(out.im0[50 * n + 2]));
    assert.ok(Number.isNaN(out.im0[45 * n + 50]));
    assert.ok(Number.isFinite(out.im0[20 * n + 50]));
    // Image 1 is sampled at x + 5: the last columns read outside.
    assert.ok(Number.isNaN(out.im1[50 * n + n - 2]));
    assert.ok(Number.isFinite(out.im1[50 * n + 20]));
  });

  it('the generic and the SIMD kernels agree', function () {
    // Each kernel in its own process: FLUIDIMAGE_SIMD is read once, at the first deformation.
    const script = `
      const { native } = await import(${JSON.stringify(new URL('../native.js', import.meta.url).href)});
      const n = 64;
      const im = Float32Array.from({ length: n * n }, (_, k) => Math.sin(k * 0.37) * 100 + (k % 13));
      const axis = Float32Array.of(0, 21, 42, 63);
      const dx = Float32Array.from({ length: 16 }, (_, k) => Math.sin(k) * 3);
      const dy = Float32Array.from({ length: 16 }, (_, k) => Math.cos(k) * 2);
      const out = [];
      for (const degree of [3, 5, 7]) {
        const r = await native().deformPair({ im0: im, im1: im, height: n, width: n, degree, xs: axis, ys: axis, dx, dy });
        out.push(Array.from(r.im0), Array.from(r.im1));
      }
      process.stdout.write(JSON.stringify({ kernel: native().deformKernel, out }));`;
    const run = (simd: string | undefined) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, FLUIDIMAGE_SIMD: simd }, encoding: 'utf8',
    })) as { kernel: string; out: (number | null)[][] };
    const generic = run('generic');
    const auto = run(undefined);
    assert.equal(generic.kernel, 'generic');
    if (auto.kernel === 'generic') this.skip();
    for (let a = 0; a < generic.out.length; a++) for (let k = 0; k < generic.out[a].length; k++) {
      const [g, s] = [generic.out[a][k], auto.out[a][k]];
      if (g === null || s === null) assert.equal(g, s, `NaN at ${k}`);
      else assert.ok(Math.abs(g - s) < 1e-3 * (1 + Math.abs(g)), `array ${a} pixel ${k}: ${g} vs ${s}`);
    }
  });

  it('validates its arguments', async () => {
    const grid = uniformGrid(n, 1, 1);
    assert.throws(() => native().deformPair({ im0: im, im1: im, height: n, width: n, degree: 6 as SplineDegree, ...grid }), /degree/);
    const spline = await native().splinePair({ im0: im, im1: im, height: n, width: n });
    assert.throws(() => native().deformPair({ spline, height: n / 2, width: n * 2, ...grid }), /spline/);
    assert.throws(() => native().splinePair({ im0: im, im1: im.subarray(1), height: n, width: n }), /im1/);
  });
});
