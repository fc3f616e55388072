import assert from 'node:assert/strict';
import { derivative, divergence, vorticity } from '../post/derivatives.js';
import { gaussianFilter, medianFilter } from '../post/filters.js';
import { bestGrid, finalGrid, magnitude, passGrid, type GridField } from '../post/grid.js';
import { spectrum1d } from '../post/spectra.js';
import type { PivResult } from '../results/piv_result.js';

/** A field on the grid x = xs, y = ys (x fastest) from a function of (x, y). */
function gridOf(xs: number[], ys: number[], fn: (x: number, y: number) => [number, number]): GridField {
  const nx = xs.length;
  const ny = ys.length;
  const u = new Float32Array(nx * ny);
  const v = new Float32Array(nx * ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) [u[j * nx + i], v[j * nx + i]] = fn(xs[i], ys[j]);
  }
  return { nx, ny, x: Float64Array.from(xs), y: Float64Array.from(ys), u, v };
}

function assertAllClose(values: ArrayLike<number>, expected: number, tol: number, what: string): void {
  for (let i = 0; i < values.length; i++) {
    assert.ok(Math.abs(values[i] - expected) <= tol, `${what}[${i}] = ${values[i]}, expected ${expected}`);
  }
}

// Non-uniform spacing (like a PIV grid whose last window is moved to the border).
const XS = [7.5, 23.5, 39.5, 55.5, 71.5, 81];
const YS = [7.5, 23.5, 39.5, 49];

describe('post-processing: derivatives', () => {
  it('solid-body rotation u = -w y, v = w x: vorticity 2w everywhere, divergence 0', () => {
    const w = 0.01;
    const field = gridOf(XS, YS, (x, y) => [-w * y, w * x]);
    assertAllClose(vorticity(field), 2 * w, 1e-6, 'vorticity');
    assertAllClose(divergence(field), 0, 1e-6, 'divergence');
  });

  it('pure expansion u = a (x - x0), v = a (y - y0): divergence 2a, vorticity 0', () => {
    const a = 0.02;
    const field = gridOf(XS, YS, (x, y) => [a * (x - 40), a * (y - 30)]);
    assertAllClose(divergence(field), 2 * a, 1e-6, 'divergence');
    assertAllClose(vorticity(field), 0, 1e-6, 'vorticity');
  });

  it('central differences inside (exact for a parabola on a uniform grid), one-sided at the borders', () => {
    const xs = [0, 1, 2, 3, 4];
    const field = gridOf(xs, [0, 1], (x) => [x * x, 0]);
    const d = derivative(field.u, field, 'x');
    assert.deepEqual(Array.from(d.subarray(0, 5)), [1, 2, 4, 6, 7]);
  });

  it('goes one-sided next to a NaN point and gives NaN where nothing is finite', () => {
    const field = gridOf([0, 1, 2, 3], [0, 1], (x) => [3 * x, 0]);
    field.u[1] = Number.NaN;
    const d = derivative(field.u, field, 'x');
    assert.ok(Number.isNaN(d[0]), 'first point: its only neighbour is NaN');
    assert.equal(d[1], 3, 'a NaN point between two finite ones gets the central difference');
    assert.equal(d[2], 3, 'one-sided forward');
    assert.equal(d[3], 3);
    const lone = gridOf([0], [0, 1], () => [1, 1]);
    assert.ok(Number.isNaN(derivative(lone.u, lone, 'x')[0]), 'a single column has no x derivative');
  });
});

describe('post-processing: grids of a result', () => {
  const nx = 3;
  const ny = 2;
  const xs = Float32Array.from({ length: nx * ny }, (_, i) => (i % nx) * 16 + 7.5);
  const ys = Float32Array.from({ length: nx * ny }, (_, i) => Math.floor(i / nx) * 16 + 7.5);
  const dx = Float32Array.from({ length: nx * ny }, (_, i) => i);
  const dy = Float32Array.from({ length: nx * ny }, (_, i) => -i);
  const result: PivResult = {
    names: ['a.png', 'b.png'], paths: ['/a.png', '/b.png'], shape_images: [32, 48], params: {},
    passes: [{
      xs, ys, deltaxs: dx, deltays: dy, correls_max: new Float32Array(nx * ny).fill(0.9),
      errors: { keys: new Int32Array(0), values: [], codes: new Int32Array(0) }, shape_grid: [ny, nx],
      final: { ixvecs_final: xs.map(Math.round), iyvecs_final: ys.map(Math.round), deltaxs_final: dx, deltays_final: dy },
    }],
  };

  it('reads the final grid (axes from the coordinates) and the pass grid', () => {
    const f = finalGrid(result)!;
    assert.equal(f.nx, 3);
    assert.equal(f.ny, 2);
    assert.deepEqual(Array.from(f.x), [8, 24, 40]);
    assert.deepEqual(Array.from(f.y), [8, 24]);
    const p = passGrid(result.passes[0])!;
    assert.deepEqual(Array.from(p.x), [7.5, 23.5, 39.5]);
    assert.deepEqual(Array.from(p.y), [7.5, 23.5]);
    assert.equal(bestGrid(result)!.x[0], 8, 'the final grid is preferred');
    const withoutFinal: PivResult = { ...result, passes: [{ ...result.passes[0], final: undefined }] };
    assert.equal(finalGrid(withoutFinal), undefined);
    assert.equal(bestGrid(withoutFinal)!.x[0], 7.5);
  });

  it('magnitude', () => {
    assert.deepEqual(Array.from(magnitude([3, Number.NaN], [4, 0])), [5, Number.NaN]);
  });
});

describe('post-processing: filters', () => {
  it('the median filter removes an isolated outlier and skips NaN', () => {
    const nx = 5;
    const ny = 5;
    const f = new Float32Array(nx * ny).fill(1);
    f[12] = 100;
    f[6] = Number.NaN;
    const m = medianFilter(f, nx, ny, 1);
    assertAllClose(m, 1, 0, 'median');
    const allNaN = medianFilter(new Float32Array(4).fill(Number.NaN), 2, 2);
    assert.ok(allNaN.every(Number.isNaN));
  });

  it('the gaussian filter keeps constant and linear fields (normalised at borders) and fills holes', () => {
    const nx = 9;
    const ny = 7;
    const constant = new Float32Array(nx * ny).fill(2);
    constant[20] = Number.NaN;
    assertAllClose(gaussianFilter(constant, nx, ny, 1.5), 2, 1e-6, 'constant');
    const linear = Float32Array.from({ length: nx * ny }, (_, p) => 3 * (p % nx));
    const g = gaussianFilter(linear, nx, ny, 1);
    // Symmetric kernel: exact away from the x borders (3 sigma = 3 points).
    for (let j = 0; j < ny; j++) for (let i = 3; i < nx - 3; i++) assert.ok(Math.abs(g[j * nx + i] - 3 * i) < 1e-5);
    const spike = new Float32Array(nx * ny);
    spike[3 * nx + 4] = 1;
    const s = gaussianFilter(spike, nx, ny, 1);
    assert.ok(s[3 * nx + 4] < 1 && s[3 * nx + 5] > 0, 'a spike is spread');
    assert.throws(() => gaussianFilter(spike, nx, ny, 0), /sigma/);
  });
});

describe('post-processing: spectra', () => {
  it('a sinusoid of 3 periods along x gives a peak at k = 2 pi 3 / L, power = variance', () => {
    const nx = 32;
    const ny = 4;
    const spacing = 8;
    const amplitude = 2;
    const f = Float32Array.from({ length: nx * ny }, (_, p) => 5 + amplitude * Math.cos((2 * Math.PI * 3 * (p % nx)) / nx));
    const s = spectrum1d(f, nx, ny, spacing, 'x');
    assert.equal(s.lines, ny);
    assert.equal(s.k.length, nx / 2 + 1);
    const peak = s.power.indexOf(Math.max(...s.power));
    assert.equal(peak, 3);
    assert.ok(Math.abs(s.k[3] - (2 * Math.PI * 3) / (nx * spacing)) < 1e-12);
    const total = s.power.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - amplitude ** 2 / 2) < 1e-4, `Parseval: ${total}`);
    const alongY = spectrum1d(f, nx, ny, spacing, 'y');
    assert.ok(alongY.power.every((p) => p < 1e-8), 'constant along y');
  });
});
