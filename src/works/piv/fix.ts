/**
 * The fix step (after every pass): rejected vectors become NaN and get a reason.
 * Same tests and order as Fluidimage: correlation peak, magnitude, then neighbours.
 */
import { native } from '../../native.js';
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
    // Normalised median test (Westerweel & Scarano 2005), in the native core: the residual of
    // each vector from the median of its valid 8-neighbours over their median residual plus
    // epsilon, the larger component; border vectors see linearly extrapolated ghost cells.
    const residuals = native().medianResiduals({ dx, dy, ny, nx, epsilon: p.medianEpsilon });
    for (let i = 0; i < n; i++) {
      const r = residuals[i];
      if (r > p.thresholdMedian) errors.add(i, ERROR_CODES.median, `${ERROR_MESSAGES.median} (residual = ${r.toFixed(2)})`);
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
