/**
 * DCT-II and its exact inverse through one complex FFT of the same length (Makhoul 1980),
 * for the Neumann Poisson solver of the least-squares phase unwrapping.
 *
 * Forward: X_k = sum_j x_j cos(pi k (2j + 1) / (2n)) (unnormalised).
 */
import { plan } from './fft.js';

interface DctPlan {
  n: number;
  /** exp(-i pi k / (2n)). */
  cr: Float64Array;
  ci: Float64Array;
  re: Float64Array;
  im: Float64Array;
}

const dctPlans = new Map<number, DctPlan>();

function dctPlan(n: number): DctPlan {
  let p = dctPlans.get(n);
  if (p === undefined) {
    const cr = new Float64Array(n);
    const ci = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      cr[k] = Math.cos((-Math.PI * k) / (2 * n));
      ci[k] = Math.sin((-Math.PI * k) / (2 * n));
    }
    p = { n, cr, ci, re: new Float64Array(n), im: new Float64Array(n) };
    dctPlans.set(n, p);
  }
  return p;
}

/** DCT-II of x (length n) into out (may be x). */
export function dct(x: Float64Array, out: Float64Array): void {
  const p = dctPlan(x.length);
  const { n, re, im, cr, ci } = p;
  // Even samples in order, then odd samples reversed: the DCT becomes a DFT.
  const half = (n + 1) >> 1;
  for (let j = 0; j < half; j++) re[j] = x[2 * j];
  for (let j = 0; 2 * j + 1 < n; j++) re[n - 1 - j] = x[2 * j + 1];
  im.fill(0);
  plan(n).forward(re, im);
  for (let k = 0; k < n; k++) out[k] = re[k] * cr[k] - im[k] * ci[k];
}

/** Inverse of {@link dct}: x from X (length n) into out (may be X). */
export function idct(X: Float64Array, out: Float64Array): void {
  const p = dctPlan(X.length);
  const { n, re, im, cr, ci } = p;
  // V_k = exp(+i pi k / (2n)) (X_k - i X_{n-k}), V_0 = X_0: undoes the forward's last step.
  re[0] = X[0];
  im[0] = 0;
  for (let k = 1; k < n; k++) {
    const a = X[k];
    const b = -X[n - k];
    // (a + i b) * conj(c)
    re[k] = a * cr[k] + b * ci[k];
    im[k] = b * cr[k] - a * ci[k];
  }
  plan(n).inverse(re, im);
  const half = (n + 1) >> 1;
  for (let j = 0; j < half; j++) out[2 * j] = re[j];
  for (let j = 0; 2 * j + 1 < n; j++) out[2 * j + 1] = re[n - 1 - j];
}

/** 2D transform of a [ny, nx] array in place: rows, then columns. */
function separable(a: Float64Array, ny: number, nx: number, f: (x: Float64Array, out: Float64Array) => void): void {
  for (let y = 0; y < ny; y++) {
    const row = a.subarray(y * nx, (y + 1) * nx);
    f(row, row);
  }
  const col = new Float64Array(ny);
  for (let x = 0; x < nx; x++) {
    for (let y = 0, k = x; y < ny; y++, k += nx) col[y] = a[k];
    f(col, col);
    for (let y = 0, k = x; y < ny; y++, k += nx) a[k] = col[y];
  }
}

export const dct2 = (a: Float64Array, ny: number, nx: number): void => separable(a, ny, nx, dct);
export const idct2 = (a: Float64Array, ny: number, nx: number): void => separable(a, ny, nx, idct);
