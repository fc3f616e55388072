/**
 * Histogram equalisation, global and local. Outputs are rescaled to the input's
 * [min, max], so that the result can be written in the input's bit depth (skimage
 * returns values in [0, 1]: Fluidimage rescales for the adaptive and local variants
 * only, and its globally equalised images come out black once saved as integers).
 */
import { minMax, rescaleInPlace, type Img } from './image.js';

/** Bin of each value, numpy.histogram-style: nbins equal bins over [lo, hi], hi in the last. */
export function binIndices(data: Float32Array, lo: number, hi: number, nbins: number): Int32Array {
  const bins = new Int32Array(data.length);
  const scale = nbins / (hi - lo);
  for (let i = 0; i < data.length; i++) {
    const b = Math.floor((data[i]! - lo) * scale);
    bins[i] = b < 0 ? 0 : b >= nbins ? nbins - 1 : b;
  }
  return bins;
}

/**
 * skimage's equalize_hist: the normalised cumulative histogram, interpolated linearly
 * between bin centres (np.interp), then rescaled to the input range.
 */
export function equalizeHistGlobal(data: Float32Array, nbins: number): Float32Array {
  const [lo, hi] = minMax(data);
  if (!(hi > lo)) return data.slice();
  const bins = binIndices(data, lo, hi, nbins);
  const cdf = new Float64Array(nbins);
  for (let i = 0; i < bins.length; i++) cdf[bins[i]!]!++;
  for (let b = 1; b < nbins; b++) cdf[b]! += cdf[b - 1]!;
  const total = cdf[nbins - 1]!;
  for (let b = 0; b < nbins; b++) cdf[b]! /= total;
  const width = (hi - lo) / nbins;
  const c0 = lo + width / 2;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const t = (data[i]! - c0) / width;
    if (t <= 0) out[i] = cdf[0]!;
    else if (t >= nbins - 1) out[i] = cdf[nbins - 1]!;
    else {
      const j = Math.floor(t);
      const f = t - j;
      out[i] = cdf[j]! + f * (cdf[j + 1]! - cdf[j]!);
    }
  }
  rescaleInPlace(out, lo, hi);
  return out;
}

/** Half-widths of the rows of a disk of radius r (x^2 + y^2 <= r^2), dy = -r..r. */
function diskHalfWidths(r: number): Int32Array {
  const hw = new Int32Array(2 * r + 1);
  for (let dy = -r; dy <= r; dy++) hw[dy + r] = Math.floor(Math.sqrt(r * r - dy * dy));
  return hw;
}

/**
 * Local equalisation (skimage's rank.equalize over a disk): each pixel becomes the
 * fraction of its neighbours (inside the image) whose grey level is <= its own, with
 * `nbins` grey levels; then rescaled to the input range. A sliding histogram along each
 * row updates only the two ends of every disk row; the cumulative count uses coarse
 * blocks of levels.
 */
export function equalizeHistLocal(im: Img, radius: number, nbins: number): Float32Array {
  const { width: nx, height: ny, data } = im;
  const [lo, hi] = minMax(data);
  if (!(hi > lo)) return data.slice();
  const q = binIndices(data, lo, hi, nbins);
  const hw = diskHalfWidths(radius);
  const shift = Math.max(2, Math.ceil(Math.log2(nbins) / 2));
  const fine = new Int32Array(nbins);
  const coarse = new Int32Array((nbins >> shift) + 1);
  const out = new Float32Array(nx * ny);
  for (let y = 0; y < ny; y++) {
    fine.fill(0);
    coarse.fill(0);
    let pop = 0;
    const dy0 = Math.max(-radius, -y);
    const dy1 = Math.min(radius, ny - 1 - y);
    for (let dy = dy0; dy <= dy1; dy++) {
      const o = (y + dy) * nx;
      const x1 = Math.min(hw[dy + radius]!, nx - 1);
      for (let x = 0; x <= x1; x++) {
        const l = q[o + x]!;
        fine[l]!++;
        coarse[l >> shift]!++;
        pop++;
      }
    }
    for (let x = 0; x < nx; x++) {
      const g = q[y * nx + x]!;
      const gb = g >> shift;
      let count = 0;
      for (let b = 0; b < gb; b++) count += coarse[b]!;
      for (let l = gb << shift; l <= g; l++) count += fine[l]!;
      out[y * nx + x] = count / pop;
      if (x === nx - 1) break;
      for (let dy = dy0; dy <= dy1; dy++) {
        const o = (y + dy) * nx;
        const w = hw[dy + radius]!;
        const leave = x - w;
        if (leave >= 0) {
          const l = q[o + leave]!;
          fine[l]!--;
          coarse[l >> shift]!--;
          pop--;
        }
        const enter = x + 1 + w;
        if (enter < nx) {
          const l = q[o + enter]!;
          fine[l]!++;
          coarse[l >> shift]!++;
          pop++;
        }
      }
    }
  }
  rescaleInPlace(out, lo, hi);
  return out;
}
