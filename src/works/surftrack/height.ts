/**
 * From fringe phase to surface height, with the geometry of crossed-optical-axes
 * profilometry (Takeda & Mutoh 1983; Maurel et al. 2009), as Fluidimage's `convphase`:
 *
 *     h = L dphi / (dphi - 2 pi D / lambda)
 *
 * L = distance_object (camera and projector to the reference surface), D = distance_lens
 * (between the camera and projector lenses), lambda = wave_proj (fringe wavelength on the
 * reference surface), dphi = phase of the frame minus phase of the reference. For small
 * heights dphi ~ -2 pi D h / (lambda L): a height of lambda L / D shifts the fringes by
 * one period.
 */

export interface Geometry {
  /** distance_object, m. */
  distanceObject: number;
  /** distance_lens, m (its sign sets the sign of the heights). */
  distanceLens: number;
  /** wave_proj, m. */
  waveProj: number;
}

/** 2 pi D / lambda: the phase that corresponds to the singular height h = L. */
function phaseScale(g: Geometry): number {
  return (2 * Math.PI * g.distanceLens) / g.waveProj;
}

export function phaseToHeight(dphi: number, g: Geometry): number {
  return (g.distanceObject * dphi) / (dphi - phaseScale(g));
}

/** The inverse relation, dphi = 2 pi D h / (lambda (h - L)) (synthetic data, tests). */
export function heightToPhase(h: number, g: Geometry): number {
  return (phaseScale(g) * h) / (h - g.distanceObject);
}

/**
 * Parallax correction (Fluidimage's `correct_pos`): the camera sees a point at height h
 * and horizontal position X at the apparent position X L / (L - h), so the height found
 * at grid point Q belongs at P = Q (1 - h / L) (positions from the crop centre). The field
 * is resampled on the grid: h'(P) = h(Q) where Q - Q h(Q) / L = P, solved by fixed-point
 * iterations with bilinear interpolation; NaN where Q falls outside the grid. Positions
 * only enter through h / L: the pixel size cancels out.
 */
export function correctPositions(h: Float64Array, ny: number, nx: number, distanceObject: number): Float64Array {
  const out = new Float64Array(ny * nx);
  const xc = nx / 2;
  const yc = ny / 2;
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      // Q = P / (1 - h(Q)/L), iterated from Q = P.
      let qx = i;
      let qy = j;
      let value = Number.NaN;
      for (let it = 0; it < 3; it++) {
        value = bilinear(h, ny, nx, qx, qy);
        if (!Number.isFinite(value)) break;
        const f = 1 / (1 - value / distanceObject);
        qx = xc + (i - xc) * f;
        qy = yc + (j - yc) * f;
      }
      out[j * nx + i] = Number.isFinite(value) ? bilinear(h, ny, nx, qx, qy) : Number.NaN;
    }
  }
  return out;
}

/** Bilinear value at (x, y) in grid units; NaN outside the grid. */
function bilinear(f: Float64Array, ny: number, nx: number, x: number, y: number): number {
  if (!(x >= 0 && y >= 0 && x <= nx - 1 && y <= ny - 1)) return Number.NaN;
  const i = Math.min(Math.floor(x), Math.max(nx - 2, 0));
  const j = Math.min(Math.floor(y), Math.max(ny - 2, 0));
  const tx = x - i;
  const ty = y - j;
  const i1 = Math.min(i + 1, nx - 1);
  const j1 = Math.min(j + 1, ny - 1);
  return (1 - ty) * ((1 - tx) * f[j * nx + i] + tx * f[j * nx + i1]) + ty * ((1 - tx) * f[j1 * nx + i] + tx * f[j1 * nx + i1]);
}
