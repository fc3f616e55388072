/**
 * The fix step (after every pass): rejected vectors become NaN and get a reason.
 * Same tests and order as Fluidimage: correlation peak, magnitude, then neighbours.
 */
import { ERROR_CODES, ERROR_MESSAGES, type VectorErrors } from './errors.js';

export interface FixParams {
  correlMin: number;
  /** Pixels; Infinity: off. */
  displacementMax: number;
  /** Pixels; Infinity: off. */
  thresholdDiffNeighbour: number;
  /** Normalised median test threshold (Westerweel & Scarano 2005); Infinity: off. */
  thresholdMedian: number;
  /** Noise level of the median test, pixels. */
  medianEpsilon: number;
}

/**
 * Mean of the valid (non-NaN) 8-neighbours of vector (iy, ix), and how many there are,
 * written to `out` ([mean x, mean y, count]; NaN means when there are none): no tuple
 * allocated per vector.
 */
function neighbourMean(dx: Float32Array, dy: Float32Array, ny: number, nx: number, iy: number, ix: number, out: Float64Array): void {
  let sx = 0;
  let sy = 0;
  let c = 0;
  for (let jy = Math.max(0, iy - 1); jy <= Math.min(ny - 1, iy + 1); jy++) {
    for (let jx = Math.max(0, ix - 1); jx <= Math.min(nx - 1, ix + 1); jx++) {
      const j = jy * nx + jx;
      if ((jy === iy && jx === ix) || Number.isNaN(dx[j])) continue;
      sx += dx[j];
      sy += dy[j];
      c++;
    }
  }
  out[0] = c === 0 ? Number.NaN : sx / c;
  out[1] = c === 0 ? Number.NaN : sy / c;
  out[2] = c;
}

/** Median of the first n values (sorted in place by insertion: n is at most 8 here). */
function median(values: Float64Array, n: number): number {
  for (let i = 1; i < n; i++) {
    const v = values[i];
    let j = i - 1;
    while (j >= 0 && values[j] > v) {
      values[j + 1] = values[j];
      j--;
    }
    values[j + 1] = v;
  }
  const m = n >> 1;
  return n % 2 ? values[m] : 0.5 * (values[m - 1] + values[m]);
}

/**
 * The field padded by one ghost row/column on each side, extrapolated linearly from
 * the two inner neighbours (2 u1 - u2, never using the border vector itself): border
 * vectors then get a full, centred 3x3 neighbourhood, and a strong linear gradient
 * does not make them look like outliers.
 */
function padLinear(v: Float32Array, ny: number, nx: number): Float32Array {
  const px = nx + 2;
  const out = new Float32Array((ny + 2) * px).fill(Number.NaN);
  for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) out[(j + 1) * px + i + 1] = v[j * nx + i];
  const ext = (a: number, b: number) => 2 * a - b;
  for (let j = 1; j <= ny; j++) {
    if (nx >= 2) {
      out[j * px] = ext(out[j * px + 1], out[j * px + 2]);
      out[j * px + nx + 1] = ext(out[j * px + nx], out[j * px + nx - 1]);
    }
  }
  if (ny >= 2) {
    for (let i = 0; i < px; i++) {
      out[i] = ext(out[px + i], out[2 * px + i]);
      out[(ny + 1) * px + i] = ext(out[ny * px + i], out[(ny - 1) * px + i]);
    }
  }
  return out;
}

/**
 * Normalised median test: the residual of a vector from the median of its valid
 * 8-neighbours, divided by the median residual of the neighbours plus epsilon; the larger
 * of the two components is compared with the threshold. Needs 3 valid neighbours.
 */
function medianTest(dx: Float32Array, dy: Float32Array, ny: number, nx: number, threshold: number, eps: number): [number, number][] {
  const out: [number, number][] = [];
  const pu = padLinear(dx, ny, nx);
  const pv = padLinear(dy, ny, nx);
  const px = nx + 2;
  // Scratch buffers for the (at most 8) neighbours: no allocation per vector.
  const nu = new Float64Array(8);
  const nv = new Float64Array(8);
  const du = new Float64Array(8);
  const dv = new Float64Array(8);
  for (let iy = 0; iy < ny; iy++) {
    for (let ix = 0; ix < nx; ix++) {
      const i = iy * nx + ix;
      if (Number.isNaN(dx[i])) continue;
      let c = 0;
      for (let jy = iy; jy <= iy + 2; jy++) {
        for (let jx = ix; jx <= ix + 2; jx++) {
          if (jy === iy + 1 && jx === ix + 1) continue;
          const u = pu[jy * px + jx];
          const v = pv[jy * px + jx];
          if (Number.isNaN(u) || Number.isNaN(v)) continue;
          nu[c] = u;
          nv[c] = v;
          c++;
        }
      }
      if (c < 3) continue;
      const mu = median(nu, c);
      const mv = median(nv, c);
      for (let k = 0; k < c; k++) {
        du[k] = Math.abs(nu[k] - mu);
        dv[k] = Math.abs(nv[k] - mv);
      }
      const ru = median(du, c);
      const rv = median(dv, c);
      const r = Math.max(Math.abs(dx[i] - mu) / (ru + eps), Math.abs(dy[i] - mv) / (rv + eps));
      if (r > threshold) out.push([i, r]);
    }
  }
  return out;
}

/**
 * Applies the tests in place on dx/dy. The neighbour test compares each vector with
 * the mean of its valid 8-neighbours (the vectors that passed the first two tests);
 * all vectors are judged against the same field, so the result does not depend on
 * the visiting order.
 */
export function applyFix(dx: Float32Array, dy: Float32Array, correl: Float32Array, errors: VectorErrors,
  ny: number, nx: number, p: FixParams): void {
  const n = dx.length;
  for (let i = 0; i < n; i++) {
    if (correl[i] < p.correlMin) errors.add(i, ERROR_CODES.correlMin, ERROR_MESSAGES.correlMin);
    if (dx[i] * dx[i] + dy[i] * dy[i] > p.displacementMax * p.displacementMax) {
      errors.add(i, ERROR_CODES.displacementMax, ERROR_MESSAGES.displacementMax);
    }
  }
  for (let i = 0; i < n; i++) if (errors.isWrong(i)) dx[i] = dy[i] = Number.NaN;
  if (Number.isFinite(p.thresholdMedian)) {
    for (const [i, r] of medianTest(dx, dy, ny, nx, p.thresholdMedian, p.medianEpsilon)) {
      errors.add(i, ERROR_CODES.median, `${ERROR_MESSAGES.median} (residual = ${r.toFixed(2)})`);
    }
    for (let i = 0; i < n; i++) if (errors.isWrong(i)) dx[i] = dy[i] = Number.NaN;
  }
  if (!Number.isFinite(p.thresholdDiffNeighbour)) return;
  const reject: [number, number][] = [];
  const mean = new Float64Array(3);
  for (let iy = 0; iy < ny; iy++) {
    for (let ix = 0; ix < nx; ix++) {
      const i = iy * nx + ix;
      if (Number.isNaN(dx[i])) continue;
      neighbourMean(dx, dy, ny, nx, iy, ix, mean);
      if (mean[2] === 0) continue;
      const ex = dx[i] - mean[0];
      const ey = dy[i] - mean[1];
      const diff = Math.sqrt(ex * ex + ey * ey);
      if (diff > p.thresholdDiffNeighbour) reject.push([i, diff]);
    }
  }
  for (const [i, diff] of reject) {
    errors.add(i, ERROR_CODES.diffNeighbour, `${ERROR_MESSAGES.diffNeighbour} (diff = ${diff.toFixed(2)})`);
    dx[i] = dy[i] = Number.NaN;
  }
}

/** Secondary correlation peaks of a pass: `count` per vector (NaN where none). */
export interface SecondaryPeaks {
  count: number;
  dx: Float32Array;
  dy: Float32Array;
  correl: Float32Array;
}

/**
 * Gives rejected vectors a second chance (Fluidimage's secondary peaks): among the
 * secondary peaks whose height is at least 60% of the first and above correl_min, the
 * one closest to the mean of the valid neighbours replaces the vector when it is
 * within the neighbour threshold (and displacement_max). Returns the replaced indices.
 */
export function replaceBySecondaryPeaks(dx: Float32Array, dy: Float32Array, correl: Float32Array, errors: VectorErrors,
  peaks: SecondaryPeaks, ny: number, nx: number, p: FixParams & { maxDistance: number }): number[] {
  const replaced: number[] = [];
  if (peaks.count === 0) return replaced;
  const mean = new Float64Array(3);
  for (let iy = 0; iy < ny; iy++) {
    for (let ix = 0; ix < nx; ix++) {
      const i = iy * nx + ix;
      if (!errors.isWrong(i) || errors.codes[i] >= ERROR_CODES.outside) continue;
      neighbourMean(dx, dy, ny, nx, iy, ix, mean);
      const [mx, my] = [mean[0], mean[1]];
      if (mean[2] < 2) continue;
      let best = -1;
      let bestDist = p.maxDistance;
      for (let q = 0; q < peaks.count; q++) {
        const o = i * peaks.count + q;
        const h = peaks.correl[o];
        if (!(h >= p.correlMin) || !(h >= 0.6 * correl[i])) continue;
        const d = Math.hypot(peaks.dx[o] - mx, peaks.dy[o] - my);
        if (d <= bestDist && Math.hypot(peaks.dx[o], peaks.dy[o]) <= p.displacementMax) {
          best = o;
          bestDist = d;
        }
      }
      if (best < 0) continue;
      dx[i] = peaks.dx[best];
      dy[i] = peaks.dy[best];
      correl[i] = peaks.correl[best];
      errors.clear(i);
      replaced.push(i);
    }
  }
  return replaced;
}
