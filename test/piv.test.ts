import assert from 'node:assert/strict';
import { pivSchema } from '../params/piv.js';
import { defaults, setAt } from '../params/schema.js';
import { ERROR_CODES, VectorErrors } from '../works/piv/errors.js';
import { applyFix } from '../works/piv/fix.js';
import { axisStarts, makeGrid, parseStrcrop, roundHalfEven, stepFor } from '../works/piv/grid.js';
import { fillNaN, interpGrid, interpToGrid } from '../works/piv/interp.js';
import { native } from '../native.js';
import type { PivResult } from '../results/piv_result.js';
import type { ParamTree } from '../params/tree.js';
import { WorkPIV, type PairImages } from '../works/piv/work.js';
import { makeField, type DisplacementField, type FieldSpec } from '../works/synth/fields.js';
import { renderPair } from '../works/synth/particles.js';

function params(sets: Record<string, unknown>): ParamTree {
  let p = defaults(pivSchema);
  for (const [k, v] of Object.entries(sets)) p = setAt(pivSchema, p, k, v);
  return p;
}

function synthPair(spec: FieldSpec, size: number, seed = 1, noise = 0.01): { pair: PairImages; field: DisplacementField } {
  const shape: [number, number] = [size, size];
  const field = makeField(spec, shape);
  const r = renderPair(field, { shape, density: 0.035, diameter: 2.5, bitDepth: 8, noise, seed });
  return {
    field,
    pair: {
      im0: Float32Array.from(r.im0), im1: Float32Array.from(r.im1), height: size, width: size,
      names: ['a.png', 'b.png'], paths: ['/a.png', '/b.png'],
    },
  };
}

/** RMS error, bias and count of the valid vectors of the last pass against the truth. */
function errorOf(result: PivResult, field: DisplacementField) {
  const last = result.passes[result.passes.length - 1];
  let se = 0;
  let bx = 0;
  let by = 0;
  let n = 0;
  let nan = 0;
  for (let k = 0; k < last.xs.length; k++) {
    if (Number.isNaN(last.deltaxs[k])) {
      nan++;
      continue;
    }
    const [tx, ty] = field(last.xs[k], last.ys[k]);
    const ex = last.deltaxs[k] - tx;
    const ey = last.deltays[k] - ty;
    se += ex * ex + ey * ey;
    bx += ex;
    by += ey;
    n++;
  }
  return { rms: Math.sqrt(se / (2 * n)), biasX: bx / n, biasY: by / n, n, nan };
}

describe('PIV grid (Fluidimage rules)', () => {
  it('rounds half to even like Python', () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, 3]);
    assert.equal(stepFor(33, 0.5), 17); // 33 - round(16.5) = 33 - 16
  });

  it('places windows with regular steps and the extra last one only for large gaps', () => {
    // Centres 16..80 in Fluidimage for len 100, window 32, overlap 0.5: starts 0..64, no extra.
    assert.deepEqual(axisStarts(0, 100, 32, 16), [0, 16, 32, 48, 64]);
    // len 110: gap 78 - 64 = 14 > floor(16 / 2.5) = 6: one more window aligned on the end.
    assert.deepEqual(axisStarts(0, 110, 32, 16), [0, 16, 32, 48, 64, 78]);
    // A window as large as the axis: one window.
    assert.deepEqual(axisStarts(0, 32, 32, 16), [0]);
    assert.deepEqual(axisStarts(0, 20, 32, 16), []);
  });

  it('gives exact (half-integer) centres and honours mask.strcrop', () => {
    const region = parseStrcrop('30:250, 100:', [300, 400]);
    assert.deepEqual(region, { y0: 30, y1: 250, x0: 100, x1: 400 });
    const g = makeGrid(region, [32, 32], 0.5);
    assert.equal(g.xs[0], 100 + 15.5);
    assert.equal(g.ys[0], 30 + 15.5);
    assert.ok(g.startsY[g.startsY.length - 1] + 32 <= 250);
    assert.throws(() => parseStrcrop('10:5, :', [100, 100]), /empty region/);
    assert.throws(() => parseStrcrop('abc', [100, 100]), /mask.strcrop/);
    assert.throws(() => makeGrid(parseStrcrop(null, [20, 20]), [32, 32], 0.5), /does not fit/);
  });
});

describe('PIV interpolation and fix', () => {
  it('fills holes from neighbours and interpolates linear fields exactly', () => {
    const nx = 5;
    const ny = 4;
    const xs = [0, 10, 20, 30, 40];
    const ys = [0, 10, 20, 30];
    const v = new Float32Array(nx * ny);
    for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) v[j * nx + i] = 2 * xs[i] - ys[j];
    const holes = Float32Array.from(v);
    holes[7] = Number.NaN;
    const filled = fillNaN(holes, ny, nx);
    assert.ok(!filled.some(Number.isNaN));
    assert.ok(Math.abs(filled[7] - v[7]) < 1e-4, 'a hole in a linear field is filled by the neighbour mean');
    const out = interpGrid(xs, ys, v, [5, 33, -10, 100], [5, 12, 0, 50]);
    assert.deepEqual(Array.from(out), [2 * 5 - 5, 2 * 33 - 12, 0, 2 * 40 - 30]);
    assert.ok(fillNaN(Float32Array.from([NaN, NaN]), 1, 2).every((x) => x === 0));
  });

  it('interpToGrid gives interpGrid\'s values at the nodes of the query grid', () => {
    let seed = 5;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (const [nx, ny] of [[1, 1], [1, 4], [7, 5], [13, 9]]) {
      const xs = Array.from({ length: nx }, (_, i) => 8 + 16 * i);
      const ys = Array.from({ length: ny }, (_, j) => 4 + 12 * j);
      const fields = [0, 1].map(() => Float32Array.from({ length: nx * ny }, () => rnd() * 10 - 5));
      // Query nodes inside, outside and on the grid's nodes.
      const qx = Float32Array.from({ length: 11 }, (_, i) => -20 + i * 0.37 * 16 * nx);
      const qy = [-3, 4, 10.5, 4 + 12 * (ny - 1), 200];
      const px = qy.flatMap(() => Array.from(qx));
      const py = qy.flatMap((y) => Array.from(qx, () => y));
      const got = interpToGrid(xs, ys, fields, qx, qy);
      fields.forEach((f, k) => assert.deepEqual(got[k], interpGrid(xs, ys, f, px, py), `${nx}x${ny}, field ${k}`));
    }
  });

  it('native median residuals equal a plain reference (NaN holes, ties, borders with ghost cells)', () => {
    let seed = 11;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const median = (v: number[]) => {
      const s = [...v].sort((a, b) => a - b);
      const m = s.length >> 1;
      return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
    };
    for (const [ny, nx] of [[1, 1], [2, 3], [6, 7], [15, 11]]) {
      // Values on a coarse lattice make ties; 15 % NaN makes neighbourhoods of 3 to 8.
      const field = () => Float32Array.from({ length: ny * nx }, () => (rnd() < 0.15 ? NaN : Math.round(rnd() * 8) / 2));
      const dx = field();
      const dy = field();
      for (let k = 0; k < dx.length; k++) if (Number.isNaN(dx[k])) dy[k] = NaN;
      const eps = 0.1;
      const got = native().medianResiduals({ dx, dy, ny, nx, epsilon: eps });
      // Ghost cells: the field padded by linear extrapolation (float32, as the native core).
      const at = (v: Float32Array, j: number, i: number): number => {
        if (j >= 0 && j < ny && i >= 0 && i < nx) return v[j * nx + i];
        if (j < 0 || j >= ny) {
          if (ny < 2) return NaN;
          const [a, b] = j < 0 ? [0, 1] : [ny - 1, ny - 2];
          return Math.fround(2 * at(v, a, i) - at(v, b, i));
        }
        if (nx < 2) return NaN;
        const [a, b] = i < 0 ? [0, 1] : [nx - 1, nx - 2];
        return Math.fround(2 * v[j * nx + a] - v[j * nx + b]);
      };
      for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
        const k = j * nx + i;
        const nu: number[] = [];
        const nv: number[] = [];
        for (let b = -1; b <= 1; b++) for (let a = -1; a <= 1; a++) {
          if (a === 0 && b === 0) continue;
          const u = at(dx, j + b, i + a);
          const v = at(dy, j + b, i + a);
          if (!Number.isNaN(u) && !Number.isNaN(v)) {
            nu.push(u);
            nv.push(v);
          }
        }
        let want = NaN;
        if (!Number.isNaN(dx[k]) && nu.length >= 3) {
          const mu = median(nu);
          const mv = median(nv);
          const ru = median(nu.map((u) => Math.abs(u - mu)));
          const rv = median(nv.map((v) => Math.abs(v - mv)));
          want = Math.max(Math.abs(dx[k] - mu) / (ru + eps), Math.abs(dy[k] - mv) / (rv + eps));
        }
        assert.ok(Object.is(got[k], want) || got[k] === want, `${ny}x${nx} at (${j}, ${i}): ${got[k]} vs ${want}`);
      }
    }
  });

  it('the normalised median test flags injected outliers and not good vectors of a sheared field', () => {
    const ny = 12;
    const nx = 12;
    const dx = new Float32Array(ny * nx);
    const dy = new Float32Array(ny * nx);
    // A strong smooth shear (2 px per vector along y, 0.5 along x) with small noise, and
    // three outliers well beyond the local variation (which normalises the residual).
    let s = 1;
    const noise = () => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.05;
    for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
      dx[j * nx + i] = 2 * j + noise();
      dy[j * nx + i] = 0.5 * i + noise();
    }
    const outliers = [5 * nx + 5, 2 * nx + 9, 10 * nx + 1];
    dx[outliers[0]] += 12;
    dy[outliers[1]] -= 4;
    dx[outliers[2]] = -7;
    const errors = new VectorErrors(ny * nx);
    applyFix(dx, dy, new Float32Array(ny * nx).fill(0.9), errors, ny, nx, {
      correlMin: 0.2, displacementMax: Infinity, thresholdDiffNeighbour: Infinity, thresholdMedian: 5, medianEpsilon: 0.1,
    });
    const stored = errors.toStored();
    assert.deepEqual(Array.from(stored.keys), [...outliers].sort((a, b) => a - b));
    assert.ok(Array.from(stored.codes).every((c) => c === ERROR_CODES.median));
    assert.match(stored.values[0], /^normalised median test \(residual = \d+\.\d\d\)$/);
  });

  it('rejects low correlation, large and outlying vectors with codes and Fluidimage messages', () => {
    const ny = 5;
    const nx = 5;
    const dx = new Float32Array(25).fill(1);
    const dy = new Float32Array(25).fill(0);
    const correl = new Float32Array(25).fill(0.8);
    correl[0] = 0.1;
    dx[12] = 9; // outlier in the middle
    dx[24] = 30; // too large
    const errors = new VectorErrors(25);
    applyFix(dx, dy, correl, errors, ny, nx, {
      correlMin: 0.2, displacementMax: 20, thresholdDiffNeighbour: 3, thresholdMedian: Infinity, medianEpsilon: 0.1,
    });
    const stored = errors.toStored();
    assert.deepEqual(Array.from(stored.keys), [0, 12, 24]);
    assert.deepEqual(Array.from(stored.codes), [ERROR_CODES.correlMin, ERROR_CODES.diffNeighbour, ERROR_CODES.displacementMax]);
    assert.equal(stored.values[0], 'correl < correl_min');
    assert.match(stored.values[1], /^diff neighbour too large \(diff = 8\.00\)$/);
    assert.ok(Number.isNaN(dx[12]) && Number.isNaN(dx[0]) && Number.isNaN(dx[24]));
    assert.equal(dx[11], 1, 'neighbours of the outlier are kept');
    // Two reasons for one vector are joined as Fluidimage does.
    const e2 = new VectorErrors(1);
    e2.add(0, 1, 'Correlation peak touching boundary.');
    e2.add(0, 2, 'correl < correl_min');
    assert.equal(e2.toStored().values[0], 'Correlation peak touching boundary. + correl < correl_min');
    assert.equal(e2.toStored().codes[0], 1);
  });
});

describe('PIV work on synthetic images', () => {
  it('recovers a uniform sub-pixel shift in one pass (RMS < 0.05 px, 32 px windows)', async () => {
    const { pair, field } = synthPair({ kind: 'uniform', dx: 3.3, dy: -1.7 }, 256);
    const result = await new WorkPIV(params({ 'piv0.shape_crop_im0': 32 })).calcul(pair);
    const e = errorOf(result, field);
    assert.equal(result.passes.length, 1);
    assert.deepEqual(result.passes[0].shape_grid, [15, 15]);
    assert.equal(e.nan, 0);
    assert.ok(e.rms < 0.05, `RMS ${e.rms}`);
    assert.ok(Math.abs(e.biasX) < 0.01 && Math.abs(e.biasY) < 0.01, `bias ${e.biasX}, ${e.biasY}`);
    const final = result.passes[0].final!;
    assert.equal(final.deltaxs_final.length, 225);
    assert.ok(!final.deltaxs_final.some(Number.isNaN));
    assert.ok(final.ixvecs_final.every(Number.isInteger));
  });

  it('recovers integer shifts exactly enough with every sub-pixel method', async () => {
    const { pair, field } = synthPair({ kind: 'uniform', dx: -4, dy: 2 }, 128, 3, 0);
    for (const method of ['2d_gaussian2', '2d_gaussian', 'centroid', 'no_subpix']) {
      const result = await new WorkPIV(params({ 'piv0.shape_crop_im0': 32, 'piv0.method_subpix': method })).calcul(pair);
      const e = errorOf(result, field);
      assert.ok(e.rms < (method === 'no_subpix' ? 1e-6 : 0.05), `${method}: RMS ${e.rms}`);
    }
  });

  it('needs the multipass for a 14 px shift with 16 px final windows, and gets it', async () => {
    const { pair, field } = synthPair({ kind: 'uniform', dx: 14, dy: -5.5 }, 256, 4);
    const single = errorOf(await new WorkPIV(params({ 'piv0.shape_crop_im0': 16 })).calcul(pair), field);
    assert.ok(single.nan + single.n > 0 && (single.rms > 1 || single.nan > single.n / 2),
      `a single 16 px pass cannot measure 14 px (RMS ${single.rms}, ${single.nan} rejected)`);
    const result = await new WorkPIV(params({ 'piv0.shape_crop_im0': 64, 'multipass.number': 3 })).calcul(pair);
    assert.deepEqual(result.passes.map((p) => p.shape_grid[0]), [7, 15, 31]);
    const e = errorOf(result, field);
    // Deformed by 7 px each, the outermost windows keep less than piv0.min_valid_fraction
    // of their pixels: those (and only those) are rejected.
    const last = result.passes[2];
    for (const k of last.errors.keys) {
      const x = last.xs[k];
      const y = last.ys[k];
      assert.ok(x < 16 || x > 240 || y < 16 || y > 240, `rejected vector inside at (${x}, ${y})`);
    }
    assert.ok(e.nan < 70, `${e.nan} rejected`);
    assert.ok(e.rms < 0.08, `RMS ${e.rms}`);
  });

  it('measures a vortex better with several passes than with one', async () => {
    const { pair, field } = synthPair({ kind: 'vortex', peak: 5, core: 30 }, 256, 5);
    const one = errorOf(await new WorkPIV(params({ 'piv0.shape_crop_im0': 64 })).calcul(pair), field);
    const three = errorOf(await new WorkPIV(params({ 'piv0.shape_crop_im0': 64, 'multipass.number': 3 })).calcul(pair), field);
    assert.ok(three.rms < 0.6 * one.rms, `3 passes ${three.rms} vs 1 pass ${one.rms}`);
    assert.ok(three.rms < 0.2, `RMS ${three.rms}`);
  });

  it('Gaussian window weighting (piv0.window_sigma) resolves a sinusoidal shear better and keeps a uniform shift unbiased', async () => {
    const sets = { 'piv0.shape_crop_im0': 64, 'multipass.number': 3 };
    const shear = synthPair({ kind: 'shear', amplitude: 4, wavelength: 64 }, 256, 3);
    const plain = errorOf(await new WorkPIV(params(sets)).calcul(shear.pair), shear.field);
    const weighted = errorOf(await new WorkPIV(params({ ...sets, 'piv0.window_sigma': 0.4 })).calcul(shear.pair), shear.field);
    assert.ok(weighted.rms < 0.8 * plain.rms, `weighted ${weighted.rms} px vs uniform weights ${plain.rms} px`);
    const uni = synthPair({ kind: 'uniform', dx: 3.3, dy: -1.7 }, 256, 4);
    const e = errorOf(await new WorkPIV(params({ ...sets, 'piv0.window_sigma': 0.4 })).calcul(uni.pair), uni.field);
    assert.ok(e.rms < 0.03 && Math.abs(e.biasX) < 0.01 && Math.abs(e.biasY) < 0.01, JSON.stringify(e));
  });

  it('rejects vectors where image 1 is blanked and fills them in the final field', async () => {
    const { pair } = synthPair({ kind: 'uniform', dx: 2.2, dy: 1.1 }, 256, 6);
    // A patch of pure noise in image 1: vectors there correlate poorly.
    const im1 = Float32Array.from(pair.im1);
    let s = 12345;
    for (let y = 96; y < 160; y++) for (let x = 96; x < 160; x++) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      im1[y * 256 + x] = s % 200;
    }
    const result = await new WorkPIV(params({ 'piv0.shape_crop_im0': 32 })).calcul({ ...pair, im1 });
    const last = result.passes[0];
    assert.ok(last.errors.keys.length >= 4, `${last.errors.keys.length} rejected`);
    for (const k of last.errors.keys) {
      assert.ok(Number.isNaN(last.deltaxs[k]));
      assert.ok(last.xs[k] > 60 && last.xs[k] < 196 && last.ys[k] > 60 && last.ys[k] < 196, 'rejections are in the patch');
    }
    const final = last.final!;
    assert.ok(!final.deltaxs_final.some(Number.isNaN));
    const mid = final.deltaxs_final[7 * 15 + 7];
    assert.ok(Math.abs(mid - 2.2) < 0.2, `filled value ${mid}`);
  });

  it('windows missing pixels (image borders of deformed images) are as accurate as the others', async () => {
    // Deformed images have no data where they were sampled outside the recording: border
    // windows miss a strip. Weighting lags by the pixels present in both windows (and
    // leaving out pixels without a partner) keeps them unbiased (0.05 px RMS without).
    const work = new WorkPIV(params({ 'piv0.shape_crop_im0': 32, 'multipass.number': 2 }));
    let sb = 0;
    let nb = 0;
    let si = 0;
    let ni = 0;
    for (const seed of [1, 2, 3]) {
      const { pair } = synthPair({ kind: 'uniform', dx: 3.3, dy: -1.7 }, 256, seed);
      const last = (await work.calcul(pair)).passes[1];
      const [gy, gx] = last.shape_grid;
      for (let j = 0; j < gy; j++) for (let i = 0; i < gx; i++) {
        const k = j * gx + i;
        const e = (last.deltaxs[k] - 3.3) ** 2 + (last.deltays[k] + 1.7) ** 2;
        if (Number.isNaN(e)) continue;
        if (i === 0 || j === 0 || i === gx - 1 || j === gy - 1) {
          sb += e;
          nb++;
        } else {
          si += e;
          ni++;
        }
      }
    }
    const border = Math.sqrt(sb / (2 * nb));
    const interior = Math.sqrt(si / (2 * ni));
    assert.ok(nb > 300, `${nb} border vectors`);
    assert.ok(border < 0.025 && border < 1.6 * interior, `border RMS ${border} px, interior ${interior} px`);
  });

  it('limits the search to piv0.displacement_max (pixels or percent)', async () => {
    const { pair } = synthPair({ kind: 'uniform', dx: 6, dy: 0 }, 128, 7);
    const limited = await new WorkPIV(params({ 'piv0.shape_crop_im0': 32, 'piv0.displacement_max': 3 })).calcul(pair);
    const p = limited.passes[0];
    assert.ok(p.errors.keys.length > p.xs.length / 2, 'most vectors beyond the search radius are rejected');
    const pct = await new WorkPIV(params({ 'piv0.shape_crop_im0': 32, 'piv0.displacement_max': '30%' })).calcul(pair);
    const q = pct.passes[0];
    assert.ok(q.errors.keys.length < q.xs.length / 10, '30% of 32 px = 9.6 px lets 6 px through');
  });

  it('masks: masked pixels do not bias correlations near a wall; masked regions give NaN (code 6)', async () => {
    const { pair } = synthPair({ kind: 'uniform', dx: 3.3, dy: -1.7 }, 256, 3);
    const n = 256;
    const im0 = Float32Array.from(pair.im0);
    const im1 = Float32Array.from(pair.im1);
    // A bright textured wall that does not move (columns 100-149), the same in both images.
    for (let y = 0; y < n; y++) for (let x = 100; x < 150; x++) im0[y * n + x] = im1[y * n + x] = 200 + 50 * Math.sin(0.7 * x + 0.3 * y);
    const mask = { data: Uint8Array.from({ length: n * n }, (_, i) => (i % n >= 100 && i % n < 150 ? 0 : 1)), height: n, width: n, source: 'wall' };
    const params3 = params({ 'piv0.shape_crop_im0': 64, 'multipass.number': 3 });
    const field = makeField({ kind: 'uniform', dx: 3.3, dy: -1.7 }, [n, n]);
    const unmasked = errorOf(await new WorkPIV(params3).calcul({ ...pair, im0, im1 }), field);
    const result = await new WorkPIV(params3, 1, mask).calcul({ ...pair, im0, im1 });
    const masked = errorOf(result, field);
    assert.ok(unmasked.rms > 0.3, `without the mask the wall spoils vectors (RMS ${unmasked.rms})`);
    assert.ok(masked.rms < 0.05, `with the mask: RMS ${masked.rms}`);
    const last = result.passes[2];
    for (let k = 0; k < last.xs.length; k++) {
      if (last.xs[k] > 110 && last.xs[k] < 140) {
        assert.ok(Number.isNaN(last.deltaxs[k]), `vector in the wall at x=${last.xs[k]}`);
      }
    }
    assert.ok(Array.from(last.errors.codes).every((c) => c === ERROR_CODES.outside));
    const f = last.final!;
    for (let k = 0; k < f.ixvecs_final.length; k++) {
      const inWall = f.ixvecs_final[k] >= 100 && f.ixvecs_final[k] < 150;
      assert.equal(Number.isNaN(f.deltaxs_final[k]), inWall, `final field at x=${f.ixvecs_final[k]}`);
    }
    const wrong = { ...mask, height: 128 };
    await assert.rejects(new WorkPIV(params3, 1, wrong).calcul({ ...pair, im0, im1 }), /mask wall is 256x128 but the images/);
  });

  it('secondary peaks replace vectors rejected because of a static pattern', async () => {
    const n = 256;
    const { pair } = synthPair({ kind: 'uniform', dx: 5, dy: 0 }, n, 3);
    // A fixed speckle (a dirty window) over the centre, in both images: its zero-displacement
    // peak wins in some windows; the particles' peak is then the second one.
    const dirt = renderPair(makeField({ kind: 'uniform' }, [n, n]), { shape: [n, n], density: 0.02, diameter: 3, bitDepth: 8, noise: 0, seed: 9 });
    const im0 = Float32Array.from(pair.im0);
    const im1 = Float32Array.from(pair.im1);
    for (let y = 64; y < 192; y++) for (let x = 64; x < 192; x++) {
      im0[y * n + x] += 0.8 * dirt.im0[y * n + x];
      im1[y * n + x] += 0.8 * dirt.im0[y * n + x];
    }
    const run = async (nb: number) => {
      const r = await new WorkPIV(params({ 'piv0.shape_crop_im0': 32, 'piv0.nb_peaks_to_search': nb })).calcul({ ...pair, im0, im1 });
      const p = r.passes[0];
      let nan = 0;
      for (let k = 0; k < p.xs.length; k++) {
        if (Number.isNaN(p.deltaxs[k])) nan++;
        else assert.ok(Math.hypot(p.deltaxs[k] - 5, p.deltays[k]) < 0.5, `vector ${k}: ${p.deltaxs[k]}, ${p.deltays[k]}`);
      }
      return nan;
    };
    const single = await run(1);
    const double = await run(2);
    assert.ok(single >= 2, `${single} rejected with one peak`);
    assert.ok(double < single, `${double} rejected with secondary peaks (vs ${single})`);
  });

  it('stores the TPS-smoothed field of the last pass (use_tps "last")', async () => {
    const { pair, field } = synthPair({ kind: 'vortex', peak: 4, core: 30 }, 256, 8);
    const result = await new WorkPIV(params({ 'piv0.shape_crop_im0': 64, 'multipass.number': 3 })).calcul(pair);
    const extra = result.passes[2].extra!;
    for (const key of ['xs_smooth', 'ys_smooth', 'deltaxs_smooth', 'deltays_smooth']) assert.ok(extra[key]?.length > 900, key);
    assert.equal(result.passes[0].extra, undefined);
    const f = result.passes[2].final!;
    let se = 0;
    for (let k = 0; k < f.deltaxs_final.length; k++) {
      const [tx, ty] = field(f.ixvecs_final[k], f.iyvecs_final[k]);
      se += (f.deltaxs_final[k] - tx) ** 2 + (f.deltays_final[k] - ty) ** 2;
    }
    assert.ok(Math.sqrt(se / (2 * f.deltaxs_final.length)) < 0.05);
  });

  it('images owned by the computation take the spline coefficients in place, with the same results', async () => {
    const { pair } = synthPair({ kind: 'uniform', dx: 3.3, dy: -1.7 }, 128, 5);
    const work = new WorkPIV(params({ 'piv0.shape_crop_im0': 32, 'multipass.number': 2 }));
    const kept = { ...pair, im0: pair.im0.slice(), im1: pair.im1.slice() };
    const owned = { ...pair, im0: pair.im0.slice(), im1: pair.im1.slice(), owned: true };
    const a = await work.calcul(kept);
    const b = await work.calcul(owned);
    assert.deepEqual(b.passes[1].deltaxs, a.passes[1].deltaxs);
    assert.deepEqual(b.passes[1].final, a.passes[1].final);
    assert.deepEqual(kept.im0, pair.im0, 'images not owned are left as they were');
    assert.notDeepEqual(owned.im0, pair.im0, 'owned images were used for the coefficients');
  });

  it('a larger window in image 1 serves the first pass; deformed passes correlate windows of one size', async () => {
    // A larger window 1 on deformed images only adds particles without partners (0.066 px RMS).
    const { pair, field } = synthPair({ kind: 'uniform', dx: 3.3, dy: -1.7 }, 256, 6);
    const r = await new WorkPIV(params({ 'piv0.shape_crop_im0': 32, 'piv0.shape_crop_im1': 48, 'multipass.number': 2 })).calcul(pair);
    const e = errorOf(r, field);
    assert.ok(e.rms < 0.03, `RMS ${e.rms}`);
  });

  it('gives the same results bit for bit with any number of threads inside a pair', async () => {
    const { pair } = synthPair({ kind: 'vortex', peak: 5, core: 40 }, 256, 8);
    const sets = { 'piv0.shape_crop_im0': 64, 'multipass.number': 3 };
    const one = await new WorkPIV(params(sets), 1).calcul({ ...pair, im0: pair.im0.slice(), im1: pair.im1.slice() });
    const three = await new WorkPIV(params(sets), 3).calcul({ ...pair, im0: pair.im0.slice(), im1: pair.im1.slice() });
    for (let k = 0; k < 3; k++) {
      assert.deepEqual(three.passes[k].deltaxs, one.passes[k].deltaxs, `pass ${k}`);
      assert.deepEqual(three.passes[k].deltays, one.passes[k].deltays, `pass ${k}`);
    }
    assert.deepEqual(three.passes[2].final, one.passes[2].final);
    assert.deepEqual(three.passes[2].extra, one.passes[2].extra);
  });

  it('predictor passes deformed with cubic splines (predictor_spline_degree 3): the last pass agrees with spline_degree everywhere', async () => {
    const { pair } = synthPair({ kind: 'vortex', peak: 3, core: 20 }, 128, 5);
    const run = (degree: number | null) => new WorkPIV(params({
      'piv0.shape_crop_im0': 32, 'multipass.number': 3, 'multipass.predictor_spline_degree': degree,
    }), 1).calcul(pair);
    const [cubic, septic] = [await run(3), await run(null)];
    // The second pass measured on cubic-deformed images: not the same numbers.
    assert.notDeepEqual(cubic.passes[1].deltaxs, septic.passes[1].deltaxs);
    const [a, b] = [cubic.passes[2], septic.passes[2]];
    let sum = 0;
    let n = 0;
    for (let k = 0; k < a.deltaxs.length; k++) {
      if (Number.isNaN(a.deltaxs[k]) || Number.isNaN(b.deltaxs[k])) continue;
      sum += (a.deltaxs[k] - b.deltaxs[k]) ** 2 + (a.deltays[k] - b.deltays[k]) ** 2;
      n++;
    }
    assert.ok(n > 0.9 * a.deltaxs.length && Math.sqrt(sum / n) < 0.02, `RMS difference ${Math.sqrt(sum / n)} over ${n} vectors`);
  });

  it('random configurations run, repeat bit for bit and give finite final fields (two pairs of different sizes at once)', async function () {
    this.timeout(60_000);
    let state = 11;
    const rnd = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];
    let runs = 0;
    for (let it = 0; it < 12; it++) {
      const sets: Record<string, unknown> = {
        'piv0.shape_crop_im0': pick([12, 16, 24, 32]), 'multipass.number': 1 + Math.floor(rnd() * 3), 'multipass.deform': rnd() < 0.8,
        'multipass.use_tps': pick([true, 'last', false]), 'piv0.nb_peaks_to_search': 1 + Math.floor(rnd() * 3),
        'piv0.window_sigma': rnd() < 0.5 ? null : 0.3 + rnd() * 0.4, 'multipass.spline_degree': pick([5, 7]),
        'piv0.grid.overlap': pick([0, 0.5, 0.75]), 'multipass.iterations_last': Math.floor(rnd() * 2),
        'piv0.method_subpix': pick(['2d_gaussian2', '2d_gaussian', 'centroid']), 'mask.strcrop': rnd() < 0.2 ? '6:-6, 4:-4' : null,
        'multipass.predictor_spline_degree': it % 2 ? 3 : null,
      };
      if (rnd() < 0.3) sets['piv0.shape_crop_im1'] = (sets['piv0.shape_crop_im0'] as number) + 8;
      const work = new WorkPIV(params(sets), 1 + Math.floor(rnd() * 2));
      const a = synthPair(pick([{ kind: 'uniform', dx: 3.3, dy: -1.7 }, { kind: 'vortex', peak: 3, core: 20 }] as FieldSpec[]), 64 + Math.floor(rnd() * 40), it).pair;
      const b = synthPair({ kind: 'uniform', dx: -1.2, dy: 2.4 }, 64 + Math.floor(rnd() * 40), it + 100).pair;
      const copy = (p: PairImages, owned: boolean): PairImages => ({ ...p, im0: p.im0.slice(), im1: p.im1.slice(), owned });
      const [ra, rb] = await Promise.all([work.calcul(copy(a, rnd() < 0.5)), work.calcul(copy(b, rnd() < 0.5))]);
      const again = await work.calcul(copy(a, rnd() < 0.5));
      assert.deepEqual(again.passes.at(-1)!.deltaxs, ra.passes.at(-1)!.deltaxs, JSON.stringify(sets));
      for (const r of [ra, rb]) assert.ok(r.passes.at(-1)!.final!.deltaxs_final.every(Number.isFinite), JSON.stringify(sets));
      runs++;
    }
    assert.equal(runs, 12);
  });

  it('rejects configurations that cannot work, naming the parameter', () => {
    assert.throws(() => new WorkPIV(params({ 'piv0.shape_crop_im0': 12, 'multipass.number': 3 })), /multipass.coeff_zoom/);
    assert.throws(() => new WorkPIV(params({ 'multipass.number': 3, 'multipass.coeff_zoom': [2] })), /multipass.coeff_zoom/);
  });
});
