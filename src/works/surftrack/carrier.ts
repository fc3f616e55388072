/**
 * The fringe carrier: normalisation of a crop, measurement of the carrier wavenumber on
 * the mean reference, and the demodulation (carrier removal and band-pass in Fourier
 * space) that turns fringes into a complex field whose argument is the fringe phase.
 *
 * Wavenumbers are in Fluidimage's units: k_x periods over the crop width l_x (so k_x / l_x
 * cycles per pixel), k_y periods over the crop height.
 */
import { fft2, fftFreq } from './fft.js';

/** A rectangle of the image, Python-slice style (ends excluded). */
export interface Crop {
  xmin: number;
  xmax: number;
  ymin: number;
  ymax: number;
}

export interface Carrier {
  /** Periods over the crop width / height. */
  kx: number;
  ky: number;
}

/** A complex field [ny, nx], x fastest. */
export interface ComplexField {
  re: Float64Array;
  im: Float64Array;
  ny: number;
  nx: number;
}

/**
 * The crop as float64, each row divided by its mean (uneven lighting along the rows), then
 * the overall mean removed (Fluidimage's frame_normalize). A black row stays zero.
 */
export function normalizeCrop(data: ArrayLike<number>, width: number, crop: Crop): Float64Array {
  const nx = crop.xmax - crop.xmin;
  const ny = crop.ymax - crop.ymin;
  const out = new Float64Array(nx * ny);
  let total = 0;
  for (let y = 0; y < ny; y++) {
    const src = (crop.ymin + y) * width + crop.xmin;
    let sum = 0;
    for (let x = 0; x < nx; x++) sum += data[src + x];
    const mean = sum / nx;
    const scale = mean > 0 ? 1 / mean : 0;
    const row = y * nx;
    for (let x = 0; x < nx; x++) {
      const v = data[src + x] * scale;
      out[row + x] = v;
      total += v;
    }
  }
  const mean = total / out.length;
  for (let k = 0; k < out.length; k++) out[k] -= mean;
  return out;
}

/**
 * The carrier of a (normalised, mean reference) fringe image: the strongest Fourier peak
 * away from the mean (|bins| > 2 along both axes around zero), in the half plane k_x > 0,
 * refined to 1/sur of a bin by evaluating the discrete-time Fourier transform on the same
 * grid as Fluidimage's zero-padded FFT (size l * sur), but only around the peak.
 */
export function measureCarrier(ref: Float64Array, ny: number, nx: number, sur: number): Carrier {
  const re = Float64Array.from(ref);
  const im = new Float64Array(ref.length);
  fft2(re, im, ny, nx);
  let best = -1;
  let bx = 0;
  let by = 0;
  for (let y = 0; y < ny; y++) {
    const fy = Math.round(fftFreq(y, ny) * ny);
    for (let x = 0; x < nx; x++) {
      const fx = Math.round(fftFreq(x, nx) * nx);
      if (fx < 0 || (fx === 0 && fy <= 0)) continue;
      if (Math.abs(fx) <= 2 && Math.abs(fy) <= 2) continue;
      const k = y * nx + x;
      const p = re[k] * re[k] + im[k] * im[k];
      if (p > best) {
        best = p;
        bx = fx;
        by = fy;
      }
    }
  }
  if (best <= 0) throw new Error('no fringes in the reference images (their spectrum has no peak)');
  if (sur === 1) return { kx: bx, ky: by };
  return refinePeak(ref, ny, nx, bx, by, sur);
}

/** |DTFT|^2 on kx = bx + a / sur, ky = by + b / sur, a, b in [-sur, sur]: the maximum. */
function refinePeak(ref: Float64Array, ny: number, nx: number, bx: number, by: number, sur: number): Carrier {
  const nc = 2 * sur + 1;
  // Row sums S_y(kx) = sum_x ref[y, x] exp(-2 pi i kx x / nx), for each candidate kx.
  const sr = new Float64Array(nc * ny);
  const si = new Float64Array(nc * ny);
  const cos = new Float64Array(nx);
  const sin = new Float64Array(nx);
  for (let a = 0; a < nc; a++) {
    const kx = bx + (a - sur) / sur;
    for (let x = 0; x < nx; x++) {
      const ang = (-2 * Math.PI * kx * x) / nx;
      cos[x] = Math.cos(ang);
      sin[x] = Math.sin(ang);
    }
    for (let y = 0; y < ny; y++) {
      let r = 0;
      let i = 0;
      const row = y * nx;
      for (let x = 0; x < nx; x++) {
        r += ref[row + x] * cos[x];
        i += ref[row + x] * sin[x];
      }
      sr[a * ny + y] = r;
      si[a * ny + y] = i;
    }
  }
  let best = -1;
  let kxBest = bx;
  let kyBest = by;
  const cy = new Float64Array(ny);
  const sy = new Float64Array(ny);
  for (let b = 0; b < nc; b++) {
    const ky = by + (b - sur) / sur;
    for (let y = 0; y < ny; y++) {
      const ang = (-2 * Math.PI * ky * y) / ny;
      cy[y] = Math.cos(ang);
      sy[y] = Math.sin(ang);
    }
    for (let a = 0; a < nc; a++) {
      let r = 0;
      let i = 0;
      for (let y = 0; y < ny; y++) {
        const u = sr[a * ny + y];
        const v = si[a * ny + y];
        r += u * cy[y] - v * sy[y];
        i += u * sy[y] + v * cy[y];
      }
      const p = r * r + i * i;
      if (p > best) {
        best = p;
        kxBest = bx + (a - sur) / sur;
        kyBest = by + (b - sur) / sur;
      }
    }
  }
  return { kx: kxBest, ky: kyBest };
}

/**
 * The band-pass applied after the carrier is moved to zero, in FFT order [ny, nx]:
 * a Gaussian of width |k| / slicer around zero (Fluidimage's filt1), times notches of
 * width |k| / 10 at -k, where the mean of the image lands, and at +k (filt2, filt3).
 */
export function bandFilter(ny: number, nx: number, carrier: Carrier, slicer: number): Float64Array {
  const cx = carrier.kx / nx;
  const cy = carrier.ky / ny;
  const k2 = cx * cx + cy * cy;
  const s2 = k2 / (slicer * slicer);
  const n2 = k2 / 100;
  const filter = new Float64Array(ny * nx);
  for (let y = 0; y < ny; y++) {
    const v = fftFreq(y, ny);
    for (let x = 0; x < nx; x++) {
      const u = fftFreq(x, nx);
      const g = Math.exp(-(u * u + v * v) / (2 * s2));
      const dm = (u + cx) ** 2 + (v + cy) ** 2;
      const dp = (u - cx) ** 2 + (v - cy) ** 2;
      filter[y * nx + x] = g * (1 - Math.exp(-dm / (2 * n2))) * (1 - Math.exp(-dp / (2 * n2)));
    }
  }
  return filter;
}

/**
 * The analytic fringe field of a normalised crop: multiplied by exp(-2 pi i k.x) (the
 * carrier lobe moves to zero), band-passed, back in real space; then one pixel out of
 * `red` kept along both axes. Its argument is the fringe phase minus the carrier's.
 */
export function demodulate(frame: Float64Array, ny: number, nx: number, carrier: Carrier, filter: Float64Array, red: number): ComplexField {
  const re = new Float64Array(ny * nx);
  const im = new Float64Array(ny * nx);
  const gx = gainTable(nx, carrier.kx);
  const gy = gainTable(ny, carrier.ky);
  for (let y = 0; y < ny; y++) {
    const cy = gy.cos[y];
    const sy = gy.sin[y];
    const row = y * nx;
    for (let x = 0; x < nx; x++) {
      // exp(-i (a + b)) from the tables of exp(-i a) and exp(-i b).
      const c = gx.cos[x] * cy - gx.sin[x] * sy;
      const s = gx.sin[x] * cy + gx.cos[x] * sy;
      re[row + x] = frame[row + x] * c;
      im[row + x] = frame[row + x] * s;
    }
  }
  fft2(re, im, ny, nx);
  for (let k = 0; k < re.length; k++) {
    re[k] *= filter[k];
    im[k] *= filter[k];
  }
  fft2(re, im, ny, nx, true);
  return subsample({ re, im, ny, nx }, red);
}

/** cos and sin of -2 pi k j / n, j < n. */
function gainTable(n: number, k: number): { cos: Float64Array; sin: Float64Array } {
  const cos = new Float64Array(n);
  const sin = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const a = (-2 * Math.PI * k * j) / n;
    cos[j] = Math.cos(a);
    sin[j] = Math.sin(a);
  }
  return { cos, sin };
}

/** Every `red`-th pixel along both axes, starting at 0. */
function subsample(f: ComplexField, red: number): ComplexField {
  if (red === 1) return f;
  const ny = Math.ceil(f.ny / red);
  const nx = Math.ceil(f.nx / red);
  const re = new Float64Array(ny * nx);
  const im = new Float64Array(ny * nx);
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < nx; x++) {
      re[y * nx + x] = f.re[y * red * f.nx + x * red];
      im[y * nx + x] = f.im[y * red * f.nx + x * red];
    }
  }
  return { re, im, ny, nx };
}
