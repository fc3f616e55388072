/**
 * One-dimensional spatial spectra of a gridded field: the power spectrum of each grid line
 * along one axis (mean removed, no window), averaged over the lines. PIV grids are small
 * (tens to a few hundred points a line), so a direct DFT with a precomputed table is
 * simpler than an FFT and fast enough.
 */

export interface Spectrum1d {
  /** Wavenumbers 2*pi*m / (n * spacing), m = 0 .. floor(n/2), in rad per coordinate unit. */
  k: Float64Array;
  /**
   * One-sided power, so that sum(power) equals the mean over lines of the variance of the
   * line (Parseval): bins other than 0 and n/2 hold both signs of the wavenumber.
   */
  power: Float64Array;
  /** Number of lines averaged (lines holding a NaN are skipped). */
  lines: number;
}

/**
 * Spectrum of f ([ny, nx], x fastest) along `axis` with grid spacing `spacing`
 * (uniform spacing assumed).
 */
export function spectrum1d(f: ArrayLike<number>, nx: number, ny: number, spacing: number, axis: 'x' | 'y'): Spectrum1d {
  const n = axis === 'x' ? nx : ny;
  const stride = axis === 'x' ? 1 : nx;
  const lineCount = axis === 'x' ? ny : nx;
  const lineStep = axis === 'x' ? nx : 1;
  const nk = Math.floor(n / 2) + 1;
  const cos = new Float64Array(n);
  const sin = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    cos[t] = Math.cos((2 * Math.PI * t) / n);
    sin[t] = Math.sin((2 * Math.PI * t) / n);
  }
  const power = new Float64Array(nk);
  const line = new Float64Array(n);
  let used = 0;
  for (let l = 0; l < lineCount; l++) {
    let mean = 0;
    let finite = true;
    for (let i = 0; i < n; i++) {
      const value = f[l * lineStep + i * stride];
      if (!Number.isFinite(value)) {
        finite = false;
        break;
      }
      line[i] = value;
      mean += value;
    }
    if (!finite) continue;
    mean /= n;
    for (let m = 0; m < nk; m++) {
      let re = 0;
      let im = 0;
      for (let i = 0; i < n; i++) {
        const t = (m * i) % n;
        re += (line[i] - mean) * cos[t];
        im -= (line[i] - mean) * sin[t];
      }
      const both = m === 0 || 2 * m === n ? 1 : 2;
      power[m] += (both * (re * re + im * im)) / (n * n);
    }
    used++;
  }
  if (used > 0) for (let m = 0; m < nk; m++) power[m] /= used;
  const k = new Float64Array(nk);
  for (let m = 0; m < nk; m++) k[m] = (2 * Math.PI * m) / (n * spacing);
  return { k, power, lines: used };
}
