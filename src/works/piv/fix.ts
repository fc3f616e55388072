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
  /** Signal-to-noise minima (peak / second peak, peak / mean |correlation|); 0 or absent: off. */
  peakRatioMin?: number;
  peakToMeanMin?: number;
  /** Global range [min, max] of dx and dy (pixels); null or absent: off. */
  rangeX?: number[] | null;
  rangeY?: number[] | null;
  /** Global standard deviation filter: factor of the standard deviation; Infinity or absent: off. */
  globalStdFactor?: number;
}

/** Per-vector signal-to-noise inputs of a pass (each absent when its test is off). */
export interface PeakQuality {
  /** Height of the second highest peak (NaN: none). */
  second?: Float32Array;
  /** First peak over the mean of |correlation| (NaN: no peak). */
  peakToMean?: Float32Array;
}

/** Whether a displacement lies outside the global range (false when the range is off). */
export function outsideRange(p: FixParams, dx: number, dy: number): boolean {
  const out = (r: number[] | null | undefined, d: number) => r != null && (d < r[0] || d > r[1]);
  return out(p.rangeX, dx) || out(p.rangeY, dy);
}

/**
 * Global standard deviation filter: the mean and standard deviation of the valid vectors,
 * each component; the vectors farther than `factor` standard deviations are rejected.
 */
function globalStd(dx: Float32Array, dy: Float32Array, errors: VectorErrors, factor: number): void {
  const n = dx.length;
  let c = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(dx[i])) continue;
    sx += dx[i];
    sy += dy[i];
    c++;
  }
  if (c < 2) return;
  const mx = sx / c;
  const my = sy / c;
  let vx = 0;
  let vy = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(dx[i])) continue;
    vx += (dx[i] - mx) ** 2;
    vy += (dy[i] - my) ** 2;
  }
  const limX = factor * Math.sqrt(vx / c);
  const limY = factor * Math.sqrt(vy / c);
  for (let i = 0; i < n; i++) {
    if (Math.abs(dx[i] - mx) > limX || Math.abs(dy[i] - my) > limY) {
      errors.add(i, ERROR_CODES.globalStd, ERROR_MESSAGES.globalStd);
    }
  }
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
  ny: number, nx: number, p: FixParams, quality: PeakQuality = {}): void {
  const n = dx.length;
  const { second, peakToMean } = quality;
  for (let i = 0; i < n; i++) {
    if (correl[i] < p.correlMin) errors.add(i, ERROR_CODES.correlMin, ERROR_MESSAGES.correlMin);
    if (dx[i] * dx[i] + dy[i] * dy[i] > p.displacementMax * p.displacementMax) {
      errors.add(i, ERROR_CODES.displacementMax, ERROR_MESSAGES.displacementMax);
    }
    // No second peak (or a negative one): nothing competes with the first.
    const ratio = second && second[i] > 0 ? correl[i] / second[i] : Number.POSITIVE_INFINITY;
    if (ratio < (p.peakRatioMin ?? 0)) errors.add(i, ERROR_CODES.peakRatio, `${ERROR_MESSAGES.peakRatio} (ratio = ${ratio.toFixed(2)})`);
    if (peakToMean && peakToMean[i] < (p.peakToMeanMin ?? 0)) {
      errors.add(i, ERROR_CODES.peakToMean, `${ERROR_MESSAGES.peakToMean} (ratio = ${peakToMean[i].toFixed(2)})`);
    }
    if (outsideRange(p, dx[i], dy[i])) errors.add(i, ERROR_CODES.globalRange, ERROR_MESSAGES.globalRange);
  }
  for (let i = 0; i < n; i++) if (errors.isWrong(i)) dx[i] = dy[i] = Number.NaN;
  if (p.globalStdFactor !== undefined && Number.isFinite(p.globalStdFactor)) {
    globalStd(dx, dy, errors, p.globalStdFactor);
    for (let i = 0; i < n; i++) if (errors.isWrong(i)) dx[i] = dy[i] = Number.NaN;
  }
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
 * within the neighbour threshold (and displacement_max, and the global range). Returns
 * the replaced indices.
 */
export function replaceBySecondaryPeaks(dx: Float32Array, dy: Float32Array, correl: Float32Array, errors: VectorErrors,
  peaks: SecondaryPeaks, ny: number, nx: number, p: FixParams & { maxDistance: number }): number[] {
  const replaced: number[] = [];
  if (peaks.count === 0) return replaced;
  const mean = new Float64Array(3);
  for (let iy = 0; iy < ny; iy++) {
    for (let ix = 0; ix < nx; ix++) {
      const i = iy * nx + ix;
      if (!errors.isWrong(i) || errors.codes[i] === ERROR_CODES.outside || errors.codes[i] === ERROR_CODES.other) continue;
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
        if (d <= bestDist && Math.hypot(peaks.dx[o], peaks.dy[o]) <= p.displacementMax && !outsideRange(p, peaks.dx[o], peaks.dy[o])) {
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
