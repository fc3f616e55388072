/**
 * Per-vector uncertainty of the last pass (piv0.uncertainty; README, "Per-vector
 * uncertainty"): correlation statistics (Wieneke 2015) of its windows by the native core
 * (native/uncertainty.h), combined and calibrated here, then carried to the final grid.
 */
import { native } from '../../native.js';
import type { Grid } from './grid.js';
import { fillNaN, interpToGrid } from './interp.js';
import type { PassResult } from '../../results/piv_result.js';

/**
 * Calibrated on the synthetic cases of scripts/bench-accuracy.ts: the half-size of the
 * neighbourhood of correlated contributions (native/uncertainty.h), the factor of the random
 * part, the largest offset (px) between the statistics' peak and the vector that still gives
 * a value, and the cap of a sigma in medians of the pass's (sparse or edge windows whose
 * statistics stand far off the field's).
 */
const NEIGHBOURHOOD = 1;
const CALIBRATION = 0.95;
const MAX_OFFSET = 1;
const CAP = 5;

/** The windows of the pass as correlated: images, window 0's corners and shape, window 1's corners and padding. */
export interface PassWindows {
  im0: Float32Array;
  im1: Float32Array;
  height: number;
  width: number;
  starts0: Int32Array;
  starts1: Int32Array;
  h0: number;
  w0: number;
  /** Offset of a window-0-sized window centred in window 1 (0 when both have one size). */
  padY: number;
  padX: number;
}

/**
 * uncertainty_x, uncertainty_y of the pass's vectors (px, 1 sigma), one native call for all
 * windows, in the images the pass correlated (deformed by the predictor `pred`: they match
 * up to the residual). The random part (scaled by the calibrated factor) is combined with
 * the offset between the statistics' own 3-point peak and the vector. NaN where the vector
 * is NaN or that peak is more than MAX_OFFSET away (the statistics then describe another peak).
 */
export async function vectorUncertainty(win: PassWindows, result: PassResult, pred: [Float32Array, Float32Array] | undefined,
  minValidFraction: number, threads: number): Promise<{ uncertainty_x: Float32Array; uncertainty_y: Float32Array }> {
  const n = result.deltaxs.length;
  const rx = new Float32Array(n);
  const ry = new Float32Array(n);
  const startsB = new Int32Array(2 * n);
  // Window 1 as large as window 0 (centred in it when larger), and the displacement left
  // between the two: the residual of a deformed pass, the sub-window shift of another.
  for (let k = 0; k < n; k++) {
    startsB[2 * k] = win.starts1[2 * k] + win.padY;
    startsB[2 * k + 1] = win.starts1[2 * k + 1] + win.padX;
    rx[k] = result.deltaxs[k] - (pred ? pred[0][k] : 0) - (startsB[2 * k + 1] - win.starts0[2 * k + 1]);
    ry[k] = result.deltays[k] - (pred ? pred[1][k] : 0) - (startsB[2 * k] - win.starts0[2 * k]);
  }
  const out = await native().correlationUncertainty({
    im0: win.im0, im1: win.im1, height: win.height, width: win.width, h: win.h0, w: win.w0,
    starts0: win.starts0, starts1: startsB, rx, ry, neighbourhood: NEIGHBOURHOOD, minValidFraction,
  }, threads);
  const combine = (sigma: Float32Array, offset: Float32Array) => {
    for (let k = 0; k < n; k++) {
      const o = offset[k];
      const r = CALIBRATION * sigma[k];
      sigma[k] = Math.abs(o) <= MAX_OFFSET ? Math.sqrt(r * r + o * o) : Number.NaN;
    }
    return sigma;
  };
  const ux = combine(out.sigmaX, out.offsetX);
  const uy = combine(out.sigmaY, out.offsetY);
  // The cap, from the median of both components (typed-array sort: numeric, NaN last).
  const all = new Float32Array(2 * n);
  all.set(ux);
  all.set(uy, n);
  all.sort();
  let finite = 0;
  while (finite < all.length && !Number.isNaN(all[finite])) finite++;
  if (finite > 0) {
    const cap = CAP * all[finite >> 1];
    for (const u of [ux, uy]) for (let k = 0; k < n; k++) if (u[k] > cap) u[k] = cap;
  }
  return { uncertainty_x: ux, uncertainty_y: uy };
}

/**
 * uncertainty_x_final, uncertainty_y_final: the vectors' uncertainty interpolated to the
 * final grid (ixs x iys, the pass's grid rounded) like the displacement, NaN where the final
 * value is NaN (mask) or does not come from the vector there: rejected and filled, or
 * replaced by the TPS smoothing (`field`, the final field on the pass's grid, farther than
 * `replacedAbove` px from the vector).
 */
export function finalUncertainty(last: PassResult, grid: Grid, field: { dx: Float32Array; dy: Float32Array }, ixs: number[], iys: number[],
  replacedAbove: number): { uncertainty_x_final: Float32Array; uncertainty_y_final: Float32Array } {
  const [ny, nx] = last.shape_grid;
  const ux = last.extra!.uncertainty_x;
  const uy = last.extra!.uncertainty_y;
  const [fx, fy] = interpToGrid(grid.xs, grid.ys, [fillNaN(ux, ny, nx), fillNaN(uy, ny, nx)], ixs, iys);
  const final = last.final!;
  for (let k = 0; k < fx.length; k++) {
    const notOwn = Number.isNaN(ux[k]) || Number.isNaN(uy[k]) || Number.isNaN(final.deltaxs_final[k]) ||
      Math.abs(field.dx[k] - last.deltaxs[k]) > replacedAbove || Math.abs(field.dy[k] - last.deltays[k]) > replacedAbove;
    if (notOwn) fx[k] = fy[k] = Number.NaN;
  }
  return { uncertainty_x_final: fx, uncertainty_y_final: fy };
}
