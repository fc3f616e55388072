/**
 * 2D phase unwrapping of a wrapped phase field [ny, nx] (x fastest).
 *
 * - `least_squares` (default): the unweighted least-squares solution of Ghiglia & Romero
 *   (1994) (a Neumann Poisson equation for the wrapped phase gradients, solved with DCTs),
 *   then made congruent with the wrapped data (phi = psi + 2 pi n, n chosen nearest to the
 *   least-squares field). Noise or a shadow only spoils its own neighbourhood, where path
 *   following would carry a wrong 2 pi jump to the end of the row.
 * - `rows_columns`: Fluidimage's `np.unwrap` along the rows, then along the columns.
 */
import { dct2, idct2 } from './dct.js';

import type { UnwrapMethod } from '../../params/surftrack.js';

export type { UnwrapMethod };

const TWO_PI = 2 * Math.PI;

/** The angle in [-pi, pi) congruent to v. */
export function wrap(v: number): number {
  return v - TWO_PI * Math.floor((v + Math.PI) / TWO_PI);
}

export function unwrap(psi: Float64Array, ny: number, nx: number, method: UnwrapMethod): Float64Array {
  return method === 'least_squares' ? unwrapLeastSquares(psi, ny, nx) : unwrapRowsColumns(psi, ny, nx);
}

/** Least-squares unwrapping made congruent with psi; the result has the values of psi + 2 pi n. */
function unwrapLeastSquares(psi: Float64Array, ny: number, nx: number): Float64Array {
  // Divergence of the wrapped gradients (zero gradient across the borders: Neumann).
  const rho = new Float64Array(ny * nx);
  for (let y = 0; y < ny; y++) {
    const row = y * nx;
    for (let x = 0; x < nx; x++) {
      const k = row + x;
      let r = 0;
      if (x < nx - 1) r += wrap(psi[k + 1] - psi[k]);
      if (x > 0) r -= wrap(psi[k] - psi[k - 1]);
      if (y < ny - 1) r += wrap(psi[k + nx] - psi[k]);
      if (y > 0) r -= wrap(psi[k] - psi[k - nx]);
      rho[k] = r;
    }
  }
  dct2(rho, ny, nx);
  // The discrete Laplacian is diagonal in the DCT-II basis.
  const cy = Float64Array.from({ length: ny }, (_, m) => 2 * Math.cos((Math.PI * m) / ny));
  const cx = Float64Array.from({ length: nx }, (_, n) => 2 * Math.cos((Math.PI * n) / nx));
  for (let m = 0; m < ny; m++) {
    for (let n = 0; n < nx; n++) {
      const k = m * nx + n;
      rho[k] = k === 0 ? 0 : rho[k] / (cy[m] + cx[n] - 4);
    }
  }
  idct2(rho, ny, nx);
  // Congruence: the least-squares field is smooth but biased where the data hold
  // residues; the nearest psi + 2 pi n keeps the measured values exactly.
  const out = new Float64Array(ny * nx);
  for (let k = 0; k < out.length; k++) out[k] = psi[k] + TWO_PI * Math.round((rho[k] - psi[k]) / TWO_PI);
  return out;
}

/** np.unwrap along x (each row), then along y (each column) of the result. */
function unwrapRowsColumns(psi: Float64Array, ny: number, nx: number): Float64Array {
  const out = Float64Array.from(psi);
  for (let y = 0; y < ny; y++) unwrapLine(out, y * nx, 1, nx);
  for (let x = 0; x < nx; x++) unwrapLine(out, x, nx, ny);
  return out;
}

/** np.unwrap of a strided line in place: steps larger than pi become their wrapped value. */
function unwrapLine(a: Float64Array, start: number, stride: number, n: number): void {
  let offset = 0;
  let previous = a[start];
  for (let j = 1, k = start + stride; j < n; j++, k += stride) {
    const raw = a[k];
    const step = raw - previous;
    offset += wrap(step) - step;
    previous = raw;
    a[k] = raw + offset;
  }
}
