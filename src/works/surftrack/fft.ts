/**
 * Complex FFTs of any length in TypeScript (split real/imaginary Float64Arrays), for the
 * surface tracking, whose image crops have arbitrary sizes (380, 650, 165, ...).
 *
 * Lengths with only the factors 2, 3, 4, 5 go through a mixed-radix Stockham transform
 * (no bit reversal, contiguous inner loops); any other length through Bluestein's chirp-z
 * algorithm on top of a power-of-two transform. Plans are cached per length; a plan owns
 * scratch buffers, so it is not reentrant, which is fine: one JS thread uses it at a time.
 */

export interface Fft1d {
  readonly n: number;
  /** In place: X_k = sum_j x_j exp(-2 pi i j k / n). */
  forward(re: Float64Array, im: Float64Array): void;
  /** In place, scaled by 1/n (the exact inverse of forward). */
  inverse(re: Float64Array, im: Float64Array): void;
}

/** Factors of n in {4, 2, 3, 5} (4 first: fewer passes), or null if another prime divides n. */
function smallFactors(n: number): number[] | null {
  const factors: number[] = [];
  let m = n;
  for (const p of [4, 2, 3, 5]) {
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
      // Angles reduced exactly so that large n keep full precision.
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
   * One Stockham pass: x viewed as [p][m][l]... in the decimation-in-frequency layout:
   * input index j*l*m... Here: input x[(q*m + k)*l + s]? We use the classic formulation
   * y[(k*p + r)*l + s] = sum_q x[(q*m + k)*l + s] w^(q r) * twiddle, with m the remaining
   * length, which orders the output naturally after the last pass.
   */
  private pass(p: number, l: number, m: number, xr: Float64Array, xi: Float64Array,
    yr: Float64Array, yi: Float64Array, sign: number): void {
    const n = this.n;
    const cos = this.cos;
    const sin = this.sin;
    const ml = m * l;
    for (let k = 0; k < m; k++) {
      // Twiddle w_{n/l}^{... } applied to input q: exp(-2 pi i q k l / n).
      for (let s = 0; s < l; s++) {
        const base = k * l + s;
        if (p === 2) {
          const ar = xr[base], ai = xi[base];
          const br = xr[base + ml], bi = xi[base + ml];
          const t = k * l;
          const c = cos[t], d = sign * sin[t];
          const dr = ar - br, di = ai - bi;
          const o = (k * 2) * l + s;
          yr[o] = ar + br;
          yi[o] = ai + bi;
          yr[o + l] = dr * c - di * d;
          yi[o + l] = dr * d + di * c;
        } else if (p === 4) {
          const ar = xr[base], ai = xi[base];
          const br = xr[base + ml], bi = xi[base + ml];
          const cr = xr[base + 2 * ml], ci = xi[base + 2 * ml];
          const er = xr[base + 3 * ml], ei = xi[base + 3 * ml];
          // 4-point DFT; -i multiplications carry the sign of the transform.
          const s0r = ar + cr, s0i = ai + ci;
          const s1r = ar - cr, s1i = ai - ci;
          const s2r = br + er, s2i = bi + ei;
          const s3r = br - er, s3i = bi - ei;
          const z0r = s0r + s2r, z0i = s0i + s2i;
          const z2r = s0r - s2r, z2i = s0i - s2i;
          // -i * sign * s3
          const z1r = s1r + sign * s3i, z1i = s1i - sign * s3r;
          const z3r = s1r - sign * s3i, z3i = s1i + sign * s3r;
          const t = k * l;
          const o = (k * 4) * l + s;
          yr[o] = z0r;
          yi[o] = z0i;
          let c = cos[t], d = sign * sin[t];
          yr[o + l] = z1r * c - z1i * d;
          yi[o + l] = z1r * d + z1i * c;
          c = cos[2 * t];
          d = sign * sin[2 * t];
          yr[o + 2 * l] = z2r * c - z2i * d;
          yi[o + 2 * l] = z2r * d + z2i * c;
          c = cos[(3 * t) % n];
          d = sign * sin[(3 * t) % n];
          yr[o + 3 * l] = z3r * c - z3i * d;
          yi[o + 3 * l] = z3r * d + z3i * c;
        } else {
          // Generic small radix (3, 5): direct p-point DFT, then twiddles.
          const o = (k * p) * l + s;
          const step = n / p;
          for (let r = 0; r < p; r++) {
            let sr = 0;
            let si = 0;
            for (let q = 0; q < p; q++) {
              const w = ((q * r) % p) * step;
              const c = cos[w], d = sign * sin[w];
              const vr = xr[base + q * ml], vi = xi[base + q * ml];
              sr += vr * c - vi * d;
              si += vr * d + vi * c;
            }
            const t = (r * k * l) % n;
            const c = cos[t], d = sign * sin[t];
            yr[o + r * l] = sr * c - si * d;
            yi[o + r * l] = sr * d + si * c;
          }
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
 * Rows are transformed in place through subarray views, columns through a gathered copy.
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

/** Transforms every column with `py`, gathering a block of columns at a time for locality. */
function transformColumns(re: Float64Array, im: Float64Array, ny: number, nx: number, py: Fft1d, inverse: boolean): void {
  const cr = new Float64Array(ny);
  const ci = new Float64Array(ny);
  for (let x = 0; x < nx; x++) {
    for (let y = 0, k = x; y < ny; y++, k += nx) {
      cr[y] = re[k];
      ci[y] = im[k];
    }
    if (inverse) py.inverse(cr, ci);
    else py.forward(cr, ci);
    for (let y = 0, k = x; y < ny; y++, k += nx) {
      re[k] = cr[y];
      im[k] = ci[y];
    }
  }
}

/** Signed frequency of FFT bin k of n, in cycles per sample (numpy's fftfreq). */
export function fftFreq(k: number, n: number): number {
  return (k <= (n - 1) / 2 ? k : k - n) / n;
}
