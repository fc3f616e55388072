/**
 * Shared pieces of the preprocessing filters: the float32 image type, window geometry
 * as scipy.ndimage defines it, and border padding, so that the filters themselves are
 * plain loops over a padded array with no bounds tests.
 */
import { BOUNDARY_MODES } from '../../params/preproc.js';

/** A grey image: row-major, top row first. */
export interface Img {
  width: number;
  height: number;
  data: Float32Array;
}

export type Boundary = (typeof BOUNDARY_MODES)[number];

/** [ny, nx] from a size N or [ny, nx]. */
export function shape2(size: number | readonly number[]): [number, number] {
  return typeof size === 'number' ? [size, size] : [size[0]!, size[1]!];
}

/**
 * Pixels a window of `size` reaches before and after its centre. scipy's convention:
 * the centre is at size // 2, so an even window reaches one pixel less after it.
 */
export function reach(size: number): [number, number] {
  const before = size >> 1;
  return [before, size - 1 - before];
}

/** Source index of the padded coordinate `i` (may be outside [0, n)), or -1 for a constant (0). */
export function sourceIndex(i: number, n: number, mode: Boundary): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 'nearest':
      return i < 0 ? 0 : n - 1;
    case 'wrap':
      return ((i % n) + n) % n;
    case 'mirror': {
      if (n === 1) return 0;
      const period = 2 * n - 2;
      const m = ((i % period) + period) % period;
      return m < n ? m : period - m;
    }
    case 'constant':
      return -1;
    case 'reflect': {
      const period = 2 * n;
      const m = ((i % period) + period) % period;
      return m < n ? m : period - 1 - m;
    }
  }
}

/** The image padded by [top, bottom, left, right] pixels with the border rule `mode`. */
export function pad(im: Img, top: number, bottom: number, left: number, right: number, mode: Boundary): Img {
  const { width: nx, height: ny, data } = im;
  const pw = nx + left + right;
  const ph = ny + top + bottom;
  const out = new Float32Array(pw * ph);
  const cols = new Int32Array(pw);
  for (let x = 0; x < pw; x++) cols[x] = sourceIndex(x - left, nx, mode);
  for (let y = 0; y < ph; y++) {
    const sy = sourceIndex(y - top, ny, mode);
    if (sy < 0) continue; // constant: zeros
    const src = sy * nx;
    const dst = y * pw;
    out.set(data.subarray(src, src + nx), dst + left);
    for (let x = 0; x < left; x++) out[dst + x] = cols[x]! < 0 ? 0 : data[src + cols[x]!]!;
    for (let x = left + nx; x < pw; x++) out[dst + x] = cols[x]! < 0 ? 0 : data[src + cols[x]!]!;
  }
  return { width: pw, height: ph, data: out };
}

/** Smallest and largest value (NaN ignored); [0, 0] for an empty or all-NaN image. */
export function minMax(data: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}

/**
 * Linear map of the image's own range onto [lo, hi] (skimage's rescale_intensity with
 * in_range='image'), in place. A constant image becomes lo.
 */
export function rescaleInPlace(data: Float32Array, lo: number, hi: number): void {
  const [a, b] = minMax(data);
  const scale = b > a ? (hi - lo) / (b - a) : 0;
  for (let i = 0; i < data.length; i++) data[i] = lo + (data[i]! - a) * scale;
}
