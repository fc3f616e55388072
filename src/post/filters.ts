/**
 * Spatial smoothing of gridded scalars ([ny, nx], x fastest). Both filters skip NaN
 * points (they neither spread nor count), so rejected vectors do not contaminate their
 * neighbours; a point whose whole neighbourhood is NaN stays NaN.
 */
import { axisLines } from './grid.js';

/** Median over the (2r+1) x (2r+1) neighbourhood, truncated at the borders. */
export function medianFilter(f: ArrayLike<number>, nx: number, ny: number, radius = 1): Float32Array {
  if (!(Number.isInteger(radius) && radius >= 0)) throw new Error(`median filter: radius must be an integer >= 0, got ${radius}`);
  const out = new Float32Array(nx * ny);
  const window = new Float64Array((2 * radius + 1) ** 2);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      let count = 0;
      for (let jj = Math.max(0, j - radius); jj <= Math.min(ny - 1, j + radius); jj++) {
        for (let ii = Math.max(0, i - radius); ii <= Math.min(nx - 1, i + radius); ii++) {
          const value = f[jj * nx + ii];
          if (!Number.isNaN(value)) window[count++] = value;
        }
      }
      out[j * nx + i] = medianOf(window, count);
    }
  }
  return out;
}

/** Median of the first `count` values (sorted in place); NaN when count is 0. */
function medianOf(values: Float64Array, count: number): number {
  if (count === 0) return Number.NaN;
  const part = values.subarray(0, count).sort();
  const m = count >> 1;
  return count % 2 === 1 ? part[m] : 0.5 * (part[m - 1] + part[m]);
}

/**
 * Gaussian of standard deviation `sigma` (in grid points), separable, truncated at 3 sigma.
 * Weights are renormalised over the finite points that fall inside the grid, so borders
 * and holes are not pulled towards zero.
 */
export function gaussianFilter(f: ArrayLike<number>, nx: number, ny: number, sigma = 1): Float32Array {
  if (!(sigma > 0)) throw new Error(`gaussian filter: sigma must be > 0, got ${sigma}`);
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * radius + 1);
  for (let k = -radius; k <= radius; k++) kernel[k + radius] = Math.exp(-(k * k) / (2 * sigma * sigma));
  // Values and weights are filtered separately: the ratio is the normalised convolution.
  const n = nx * ny;
  const values = new Float64Array(n);
  const weights = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    const value = f[p];
    if (!Number.isNaN(value)) {
      values[p] = value;
      weights[p] = 1;
    }
  }
  const tmpValues = new Float64Array(n);
  const tmpWeights = new Float64Array(n);
  convolve1d(values, weights, tmpValues, tmpWeights, nx, ny, kernel, radius, 'x');
  convolve1d(tmpValues, tmpWeights, values, weights, nx, ny, kernel, radius, 'y');
  const out = new Float32Array(n);
  for (let p = 0; p < n; p++) out[p] = weights[p] > 0 ? values[p] / weights[p] : Number.NaN;
  return out;
}

/** One separable pass over values and weights (zero outside the grid). */
function convolve1d(
  values: Float64Array, weights: Float64Array, outValues: Float64Array, outWeights: Float64Array,
  nx: number, ny: number, kernel: Float64Array, radius: number, axis: 'x' | 'y',
): void {
  const { n, stride, lines, lineStep } = axisLines(axis, nx, ny);
  for (let line = 0; line < lines; line++) {
    const base = line * lineStep;
    for (let i = 0; i < n; i++) {
      let sv = 0;
      let sw = 0;
      for (let k = Math.max(-radius, -i); k <= Math.min(radius, n - 1 - i); k++) {
        const p = base + (i + k) * stride;
        const w = kernel[k + radius];
        sv += w * values[p];
        sw += w * weights[p];
      }
      outValues[base + i * stride] = sv;
      outWeights[base + i * stride] = sw;
    }
  }
}
