/**
 * Temporal statistics over the images of one item (Fluidimage's temporal_median,
 * temporal_percentile, temporal_minima): at each pixel, the k-th smallest of the values
 * of all the images, or of all the images times a spatial window [ny, nx] (borders
 * reflected, as scipy; NaN counts as 0). The time extent is always the whole item: choose it with
 * series.str_subset ("i-2:i+3": 5 images).
 */
import { pad, reach } from './image.js';
import { integerRange, minimumFilter, percentileRank, selectKth, slidingHistogram } from './rank.js';

export type TemporalKind = 'median' | 'percentile' | 'minima';

/** The rank (0-based) of the statistic among `count` values. */
function temporalRank(kind: TemporalKind, count: number, percentile: number): number {
  if (kind === 'minima') return 0;
  if (kind === 'median') return count >> 1;
  return percentileRank(count, percentile);
}

/** The statistic image of a stack of images of the same size. */
export function temporalStatistic(stack: readonly Float32Array[], nx: number, ny: number, kind: TemporalKind,
  percentile: number, window: readonly [number, number] | null): Float32Array {
  const n = stack.length;
  const npix = nx * ny;
  const [sy, sx] = window ?? [1, 1];
  const count = n * sy * sx;
  const k = temporalRank(kind, count, percentile);
  if (k === 0) {
    // Minimum: over time, then (separable) over the spatial window.
    const m = stack[0]!.slice();
    for (let t = 1; t < n; t++) {
      const s = stack[t]!;
      for (let i = 0; i < npix; i++) if (s[i]! < m[i]!) m[i] = s[i]!;
    }
    return sy * sx === 1 ? m : minimumFilter({ width: nx, height: ny, data: m }, [sy, sx], 'reflect');
  }
  if (sy * sx > 1) {
    // A 3-D window over padded images: the sliding histogram updates n x sy values per
    // step instead of gathering n x sy x sx.
    const [top, bottom] = reach(sy);
    const [left, right] = reach(sx);
    const pw = nx + left + right;
    const plane = pw * (ny + top + bottom);
    const cube = new Float32Array(n * plane);
    stack.forEach((data, t) => cube.set(pad({ width: nx, height: ny, data }, top, bottom, left, right, 'reflect').data, t * plane));
    for (let i = 0; i < cube.length; i++) if (cube[i] !== cube[i]) cube[i] = 0; // NaN: comparisons would fail
    return slidingHistogram(cube, pw, ny + top + bottom, n, nx, ny, sy, sx, k, integerRange(cube));
  }
  // One value per image: gather and select. One contiguous cube keeps the access monomorphic.
  const cube = new Float32Array(n * npix);
  stack.forEach((data, t) => cube.set(data, t * npix));
  const buf = new Float32Array(n);
  const out = new Float32Array(npix);
  for (let i = 0; i < npix; i++) {
    let nan = false;
    for (let t = 0; t < n; t++) {
      const v = cube[t * npix + i]!;
      nan ||= v !== v;
      buf[t] = v;
    }
    if (nan) for (let t = 0; t < n; t++) if (buf[t] !== buf[t]) buf[t] = 0;
    out[i] = selectKth(buf, n, k);
  }
  return out;
}

/** Each image minus weight x the statistic (no clipping, as Fluidimage). */
export function subtractFromAll(stack: readonly Float32Array[], stat: Float32Array, weight: number): Float32Array[] {
  return stack.map((im) => {
    const out = new Float32Array(im.length);
    for (let i = 0; i < im.length; i++) out[i] = im[i]! - weight * stat[i]!;
    return out;
  });
}
