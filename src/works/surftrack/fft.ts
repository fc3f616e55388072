/**
 * Complex FFTs of any length in TypeScript (split real/imaginary Float64Arrays), for the
 * surface tracking, whose image crops have arbitrary sizes (380, 650, 165, ...).
 *
 * Lengths whose prime factors are at most 31 go through a mixed-radix Stockham transform
 * (no bit reversal; radix 2 and 4 butterflies written out, other radices as small direct
 * DFTs); any other length through Bluestein's chirp-z algorithm on top of a power-of-two
 * transform. Plans are cached per length; a plan owns scratch buffers, so it is not
 * reentrant, which is fine: one JS thread uses it at a time.
 */

export interface Fft1d {
  readonly n: number;
  /** In place: X_k = sum_j x_j exp(-2 pi i j k / n). */
  forward(re: Float64Array, im: Float64Array): void;
  /** In place, scaled by 1/n (the exact inverse of forward). */
  inverse(re: Float64Array, im: Float64Array): void;
}

/** Radices of the mixed-radix transform (4 first: fewer passes); larger primes use Bluestein. */
const RADICES = [4, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31];

/** Factors of n among RADICES, or null if a larger prime divides n. */
function smallFactors(n: number): number[] | null {
  const factors: number[] = [];
  let m = n;
  for (const p of RADICES) {
    while (m % p === 0) {
      factors.push(p);
      m /= p;
    }
  }
  return m === 1 ? factors : null;
}

/**
 * Stockham autosort mixed-radix FFT: each pass reads one buffer and writes the other, so
 * the output is in natural order without a permutation step.
 */
class StockhamFft implements Fft1d {
  private readonly factors: number[];
  /** Twiddles exp(-2 pi i k / n), k < n. */
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly bre: Float64Array;
  private readonly bim: Float64Array;

  constructor(readonly n: number, factors: number[]) {
    this.factors = factors;
    this.cos = new Float64Array(n);
    this.sin = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const a = (-2 * Math.PI * k) / n;
      this.cos[k] = Math.cos(a);
      this.sin[k] = Math.sin(a);
    }
    this.bre = new Float64Array(n);
    this.bim = new Float64Array(n);
  }

  forward(re: Float64Array, im: Float64Array): void {
    this.run(re, im, 1);
  }

  inverse(re: Float64Array, im: Float64Array): void {
    this.run(re, im, -1);
    const s = 1 / this.n;
    for (let k = 0; k < this.n; k++) {
      re[k] *= s;
      im[k] *= s;
    }
  }

  /** sign 1: forward, -1: backward (conjugate twiddles). */
  private run(re: Float64Array, im: Float64Array, sign: number): void {
    const n = this.n;
    if (n === 1) return;
    let xr = re;
    let xi = im;
    let yr = this.bre;
    let yi = this.bim;
    // After a pass with radix p: `l` = product of radices done, `m` = n / (l * p) remaining.
    let l = 1;
    for (const p of this.factors) {
      const m = n / (l * p);
      this.pass(p, l, m, xr, xi, yr, yi, sign);
      [xr, yr] = [yr, xr];
      [xi, yi] = [yi, xi];
      l *= p;
    }
    if (xr !== re) {
      re.set(xr);
      im.set(xi);
    }
  }

  /**
   * One radix-p pass with stride l (product of the radices done) and m = n / (l p):
   * y[(k p + r) l + s] = exp(-2 pi i r k l / n) * sum_q x[(k + q m) l + s] exp(-2 pi i q r / p).
   * The twiddles depend on k only: they are fetched once per k, outside the loop over s.
   */
  private pass(p: number, l: number, m: number, xr: Float64Array, xi: Float64Array,
    yr: Float64Array, yi: Float64Array, sign: number): void {
    if (p === 2) this.pass2(l, m, xr, xi, yr, yi, sign);
    else if (p === 4) this.pass4(l, m, xr, xi, yr, yi, sign);
    else this.passGeneric(p, l, m, xr, xi, yr, yi, sign);
  }

  private pass2(l: number, m: number, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array, sign: number): void {
    const ml = m * l;
    for (let k = 0; k < m; k++) {
      const c = this.cos[k * l], d = sign * this.sin[k * l];
      const ib = k * l;
      const ob = 2 * k * l;
      for (let s = 0; s < l; s++) {
        const i0 = ib + s;
        const ar = xr[i0], ai = xi[i0];
        const br = xr[i0 + ml], bi = xi[i0 + ml];
        const dr = ar - br, di = ai - bi;
        const o = ob + s;
        yr[o] = ar + br;
        yi[o] = ai + bi;
        yr[o + l] = dr * c - di * d;
        yi[o + l] = dr * d + di * c;
      }
    }
  }

  private pass4(l: number, m: number, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array, sign: number): void {
    const ml = m * l;
    const n = this.n;
    for (let k = 0; k < m; k++) {
      const t = k * l;
      const c1 = this.cos[t], d1 = sign * this.sin[t];
      const c2 = this.cos[2 * t], d2 = sign * this.sin[2 * t];
      const c3 = this.cos[(3 * t) % n], d3 = sign * this.sin[(3 * t) % n];
      const ib = k * l;
      const ob = 4 * k * l;
      for (let s = 0; s < l; s++) {
        const i0 = ib + s;
        const ar = xr[i0], ai = xi[i0];
        const br = xr[i0 + ml], bi = xi[i0 + ml];
        const cr = xr[i0 + 2 * ml], ci = xi[i0 + 2 * ml];
        const er = xr[i0 + 3 * ml], ei = xi[i0 + 3 * ml];
        // 4-point DFT; the multiplications by -i carry the sign of the transform.
        const s0r = ar + cr, s0i = ai + ci;
        const s1r = ar - cr, s1i = ai - ci;
        const s2r = br + er, s2i = bi + ei;
        const s3r = br - er, s3i = bi - ei;
        const z1r = s1r + sign * s3i, z1i = s1i - sign * s3r;
        const z2r = s0r - s2r, z2i = s0i - s2i;
        const z3r = s1r - sign * s3i, z3i = s1i + sign * s3r;
        const o = ob + s;
        yr[o] = s0r + s2r;
        yi[o] = s0i + s2i;
        yr[o + l] = z1r * c1 - z1i * d1;
        yi[o + l] = z1r * d1 + z1i * c1;
        yr[o + 2 * l] = z2r * c2 - z2i * d2;
        yi[o + 2 * l] = z2r * d2 + z2i * c2;
        yr[o + 3 * l] = z3r * c3 - z3i * d3;
        yi[o + 3 * l] = z3r * d3 + z3i * c3;
      }
    }
  }

  private readonly matrices = new Map<number, { wc: Float64Array; ws: Float64Array; wsConj: Float64Array }>();
  private readonly scratch = { tc: new Float64Array(32), ts: new Float64Array(32), vr: new Float64Array(32), vi: new Float64Array(32) };

  /** The p-point DFT matrix exp(-2 pi i q r / p), [r][q], and the sines of its inverse. */
  private dftMatrix(p: number): { wc: Float64Array; ws: Float64Array; wsConj: Float64Array } {
    let mat = this.matrices.get(p);
    if (mat === undefined) {
      const wc = new Float64Array(p * p);
      const ws = new Float64Array(p * p);
      const step = this.n / p;
      for (let r = 0; r < p; r++) {
        for (let q = 0; q < p; q++) {
          const w = ((q * r) % p) * step;
          wc[r * p + q] = this.cos[w];
          ws[r * p + q] = this.sin[w];
        }
      }
      mat = { wc, ws, wsConj: ws.map((v) => -v) };
      this.matrices.set(p, mat);
    }
    return mat;
  }

  /** Radices other than 2 and 4: a direct p-point DFT with a precomputed p x p matrix. */
  private passGeneric(p: number, l: number, m: number, xr: Float64Array, xi: Float64Array,
    yr: Float64Array, yi: Float64Array, sign: number): void {
    const n = this.n;
    const ml = m * l;
    const mat = this.dftMatrix(p);
    const wc = mat.wc;
    const ws = sign > 0 ? mat.ws : mat.wsConj;
    const { tc, ts, vr, vi } = this.scratch;
    for (let k = 0; k < m; k++) {
      for (let r = 0; r < p; r++) {
        const t = (r * k * l) % n;
        tc[r] = this.cos[t];
        ts[r] = sign * this.sin[t];
      }
      const ib = k * l;
      const ob = p * k * l;
      for (let s = 0; s < l; s++) {
        for (let q = 0; q < p; q++) {
          vr[q] = xr[ib + s + q * ml];
          vi[q] = xi[ib + s + q * ml];
        }
        for (let r = 0; r < p; r++) {
          let sr = 0;
          let si = 0;
          const row = r * p;
          for (let q = 0; q < p; q++) {
            const c = wc[row + q], d = ws[row + q];
            sr += vr[q] * c - vi[q] * d;
            si += vr[q] * d + vi[q] * c;
          }
          const o = ob + s + r * l;
          yr[o] = sr * tc[r] - si * ts[r];
          yi[o] = sr * ts[r] + si * tc[r];
        }
      }
    }
  }
}

/** Bluestein: a length-n DFT as a circular convolution of length m = 2^k >= 2n - 1. */
class BluesteinFft implements Fft1d {
  private readonly inner: Fft1d;
  /** Chirp exp(-i pi j^2 / n). */
  private readonly wr: Float64Array;
  private readonly wi: Float64Array;
  /** FFT of the conjugate chirp, wrapped to length m. */
  private readonly br: Float64Array;
  private readonly bi: Float64Array;
  private readonly ar: Float64Array;
  private readonly ai: Float64Array;

  constructor(readonly n: number) {
    let m = 1;
    while (m < 2 * n - 1) m *= 2;
    this.inner = plan(m);
    this.wr = new Float64Array(n);
    this.wi = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      // j^2 mod 2n keeps the angle small, hence exact, for large j.
      const a = (-Math.PI * ((j * j) % (2 * n))) / n;
      this.wr[j] = Math.cos(a);
      this.wi[j] = Math.sin(a);
    }
    this.br = new Float64Array(m);
    this.bi = new Float64Array(m);
    this.br[0] = 1;
    for (let j = 1; j < n; j++) {
      this.br[j] = this.br[m - j] = this.wr[j];
      this.bi[j] = this.bi[m - j] = -this.wi[j];
    }
    this.inner.forward(this.br, this.bi);
    this.ar = new Float64Array(m);
    this.ai = new Float64Array(m);
  }

  forward(re: Float64Array, im: Float64Array): void {
    const { n, wr, wi, ar, ai, br, bi } = this;
    ar.fill(0);
    ai.fill(0);
    for (let j = 0; j < n; j++) {
      ar[j] = re[j] * wr[j] - im[j] * wi[j];
      ai[j] = re[j] * wi[j] + im[j] * wr[j];
    }
    this.inner.forward(ar, ai);
    for (let k = 0; k < ar.length; k++) {
      const r = ar[k] * br[k] - ai[k] * bi[k];
      ai[k] = ar[k] * bi[k] + ai[k] * br[k];
      ar[k] = r;
    }
    this.inner.inverse(ar, ai);
    for (let k = 0; k < n; k++) {
      re[k] = ar[k] * wr[k] - ai[k] * wi[k];
      im[k] = ar[k] * wi[k] + ai[k] * wr[k];
    }
  }

  inverse(re: Float64Array, im: Float64Array): void {
    // ifft(x) = conj(fft(conj(x))) / n
    const n = this.n;
    for (let k = 0; k < n; k++) im[k] = -im[k];
    this.forward(re, im);
    const s = 1 / n;
    for (let k = 0; k < n; k++) {
      re[k] *= s;
      im[k] = -im[k] * s;
    }
  }
}

const plans = new Map<number, Fft1d>();

/** The (cached) plan for length n >= 1. */
export function plan(n: number): Fft1d {
  if (!Number.isInteger(n) || n < 1) throw new Error(`FFT length must be a positive integer, got ${n}`);
  let p = plans.get(n);
  if (p === undefined) {
    const factors = smallFactors(n);
    p = factors !== null ? new StockhamFft(n, factors) : new BluesteinFft(n);
    plans.set(n, p);
  }
  return p;
}

/**
 * In-place 2D FFT of a [ny, nx] complex array (x fastest); `inverse` scales by 1/(nx ny).
 * Rows are transformed in place through subarray views, columns through gathered copies.
 */
export function fft2(re: Float64Array, im: Float64Array, ny: number, nx: number, inverse = false): void {
  const px = plan(nx);
  const py = plan(ny);
  for (let y = 0; y < ny; y++) {
    const r = re.subarray(y * nx, (y + 1) * nx);
    const i = im.subarray(y * nx, (y + 1) * nx);
    if (inverse) px.inverse(r, i);
    else px.forward(r, i);
  }
  transformColumns(re, im, ny, nx, py, inverse);
}

/** Columns gathered at a time: one cache line of each row serves several columns. */
const COLUMN_BLOCK = 8;

/** Transforms every column with `py`, gathering blocks of columns into contiguous buffers. */
function transformColumns(re: Float64Array, im: Float64Array, ny: number, nx: number, py: Fft1d, inverse: boolean): void {
  const bre = new Float64Array(COLUMN_BLOCK * ny);
  const bim = new Float64Array(COLUMN_BLOCK * ny);
  for (let x0 = 0; x0 < nx; x0 += COLUMN_BLOCK) {
    const nb = Math.min(COLUMN_BLOCK, nx - x0);
    for (let y = 0; y < ny; y++) {
      const row = y * nx + x0;
      for (let b = 0; b < nb; b++) {
        bre[b * ny + y] = re[row + b];
        bim[b * ny + y] = im[row + b];
      }
    }
    for (let b = 0; b < nb; b++) {
      const cr = bre.subarray(b * ny, (b + 1) * ny);
      const ci = bim.subarray(b * ny, (b + 1) * ny);
      if (inverse) py.inverse(cr, ci);
      else py.forward(cr, ci);
    }
    for (let y = 0; y < ny; y++) {
      const row = y * nx + x0;
      for (let b = 0; b < nb; b++) {
        re[row + b] = bre[b * ny + y];
        im[row + b] = bim[b * ny + y];
      }
    }
  }
}

/** Signed frequency of FFT bin k of n, in cycles per sample (numpy's fftfreq). */
export function fftFreq(k: number, n: number): number {
  return (k <= (n - 1) / 2 ? k : k - n) / n;
}
