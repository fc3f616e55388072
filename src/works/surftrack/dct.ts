/**
 * DCT-II and its exact inverse through complex FFTs of the same length (Makhoul 1980),
 * for the Neumann Poisson solver of the least-squares phase unwrapping. Two real
 * sequences go through one complex FFT (one as the real part, one as the imaginary part),
 * which halves the cost of the 2D transforms.
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

/** Even samples in order, then odd samples reversed: the DCT becomes a DFT. */
function permute(x: Float64Array, v: Float64Array, n: number): void {
  const half = (n + 1) >> 1;
  for (let j = 0; j < half; j++) v[j] = x[2 * j];
  for (let j = 0; 2 * j + 1 < n; j++) v[n - 1 - j] = x[2 * j + 1];
}

function unpermute(v: Float64Array, x: Float64Array, n: number): void {
  const half = (n + 1) >> 1;
  for (let j = 0; j < half; j++) x[2 * j] = v[j];
  for (let j = 0; 2 * j + 1 < n; j++) x[2 * j + 1] = v[n - 1 - j];
}

/** DCT-II of a and b (same length n) into outA, outB (may be a, b). */
function dctPair(a: Float64Array, b: Float64Array, outA: Float64Array, outB: Float64Array): void {
  const { n, re, im, cr, ci } = dctPlan(a.length);
  permute(a, re, n);
  permute(b, im, n);
  plan(n).forward(re, im);
  // Spectra of the two real inputs from Z_k and Z_{n-k}: V1 = (Z_k + conj Z_{n-k}) / 2,
  // V2 = (Z_k - conj Z_{n-k}) / 2i; then X_k = Re(exp(-i pi k / 2n) V_k).
  for (let k = 0; k < n; k++) {
    const m = k === 0 ? 0 : n - k;
    const zr = re[k], zi = im[k], wr = re[m], wi = im[m];
    const v1r = (zr + wr) / 2, v1i = (zi - wi) / 2;
    const v2r = (zi + wi) / 2, v2i = (wr - zr) / 2;
    outA[k] = v1r * cr[k] - v1i * ci[k];
    outB[k] = v2r * cr[k] - v2i * ci[k];
  }
}

/** Inverse of {@link dctPair}. */
function idctPair(A: Float64Array, B: Float64Array, outA: Float64Array, outB: Float64Array): void {
  const { n, re, im, cr, ci } = dctPlan(A.length);
  // V_k = exp(+i pi k / 2n) (X_k - i X_{n-k}), V_0 = X_0, for each input; the two
  // (Hermitian) spectra travel as Z = V1 + i V2, whose inverse FFT is v1 + i v2.
  for (let k = 0; k < n; k++) {
    const a1 = A[k], b1 = k === 0 ? 0 : -A[n - k];
    const a2 = B[k], b2 = k === 0 ? 0 : -B[n - k];
    const v1r = a1 * cr[k] + b1 * ci[k], v1i = b1 * cr[k] - a1 * ci[k];
    const v2r = a2 * cr[k] + b2 * ci[k], v2i = b2 * cr[k] - a2 * ci[k];
    re[k] = v1r - v2i;
    im[k] = v1i + v2r;
  }
  plan(n).inverse(re, im);
  unpermute(re, outA, n);
  unpermute(im, outB, n);
}

/** DCT-II of x (length n) into out (may be x). */
export function dct(x: Float64Array, out: Float64Array): void {
  dctPair(x, new Float64Array(x.length), out, new Float64Array(x.length));
}

/** Inverse of {@link dct}: x from X into out (may be X). */
export function idct(X: Float64Array, out: Float64Array): void {
  idctPair(X, new Float64Array(X.length), out, new Float64Array(X.length));
}

type PairTransform = (a: Float64Array, b: Float64Array, outA: Float64Array, outB: Float64Array) => void;

/** 2D transform of a [ny, nx] array in place: rows two at a time, then columns two at a time. */
function separable(a: Float64Array, ny: number, nx: number, f: PairTransform): void {
  const spareRow = new Float64Array(nx);
  for (let y = 0; y < ny; y += 2) {
    const r0 = a.subarray(y * nx, (y + 1) * nx);
    const r1 = y + 1 < ny ? a.subarray((y + 1) * nx, (y + 2) * nx) : spareRow.fill(0);
    f(r0, r1, r0, r1);
  }
  const c0 = new Float64Array(ny);
  const c1 = new Float64Array(ny);
  for (let x = 0; x < nx; x += 2) {
    const two = x + 1 < nx;
    for (let y = 0, k = x; y < ny; y++, k += nx) {
      c0[y] = a[k];
      c1[y] = two ? a[k + 1] : 0;
    }
    f(c0, c1, c0, c1);
    for (let y = 0, k = x; y < ny; y++, k += nx) {
      a[k] = c0[y];
      if (two) a[k + 1] = c1[y];
    }
  }
}

export const dct2 = (a: Float64Array, ny: number, nx: number): void => separable(a, ny, nx, dctPair);
export const idct2 = (a: Float64Array, ny: number, nx: number): void => separable(a, ny, nx, idctPair);
