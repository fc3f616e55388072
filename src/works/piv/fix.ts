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
  if (!Number.isFinite(p.thresholdDiffNeighbour)) return;
  const reject: [number, number][] = [];
  for (let iy = 0; iy < ny; iy++) {
    for (let ix = 0; ix < nx; ix++) {
      const i = iy * nx + ix;
      if (Number.isNaN(dx[i])) continue;
      let sx = 0;
      let sy = 0;
      let c = 0;
      for (let jy = Math.max(0, iy - 1); jy <= Math.min(ny - 1, iy + 1); jy++) {
        for (let jx = Math.max(0, ix - 1); jx <= Math.min(nx - 1, ix + 1); jx++) {
          const j = jy * nx + jx;
          if (j === i || Number.isNaN(dx[j])) continue;
          sx += dx[j];
          sy += dy[j];
          c++;
        }
      }
      if (c === 0) continue;
      const diff = Math.hypot(dx[i] - sx / c, dy[i] - sy / c);
      if (diff > p.thresholdDiffNeighbour) reject.push([i, diff]);
    }
  }
  for (const [i, diff] of reject) {
    errors.add(i, ERROR_CODES.diffNeighbour, `${ERROR_MESSAGES.diffNeighbour} (diff = ${diff.toFixed(2)})`);
    dx[i] = dy[i] = Number.NaN;
  }
}
