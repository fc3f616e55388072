/**
 * Temporal statistics over the images of one item (Fluidimage's temporal_median,
 * temporal_percentile, temporal_minima): at each pixel, the k-th smallest of the values
 * of all the images, or of all the images times a spatial window [ny, nx] (borders
 * reflected, as scipy). The time extent is always the whole item: choose it with
 * series.str_subset ("i-2:i+3": 5 images).
 */
import { pad, reach, type Img } from './image.js';
import { minimumFilter, percentileRank, selectKth } from './rank.js';

export type TemporalKind = 'median' | 'percentile' | 'minima';

/** The rank (0-based) of the statistic among `count` values. */
export function temporalRank(kind: TemporalKind, count: number, percentile: number): number {
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
  // One contiguous, padded cube: monomorphic access in the pixel loop.
  const [top, bottom] = reach(sy);
  const [left, right] = reach(sx);
  const pw = nx + left + right;
  const ph = ny + top + bottom;
  const plane = pw * ph;
  const cube = new Float32Array(n * plane);
  for (let t = 0; t < n; t++) {
    const im: Img = { width: nx, height: ny, data: stack[t]! };
    cube.set(sy * sx === 1 ? stack[t]! : pad(im, top, bottom, left, right, 'reflect').data, t * plane);
  }
  const buf = new Float32Array(count);
  const out = new Float32Array(npix);
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < nx; x++) {
      let c = 0;
      for (let t = 0; t < n; t++) {
        for (let r = 0; r < sy; r++) {
          const o = t * plane + (y + r) * pw + x;
          for (let q = 0; q < sx; q++) buf[c++] = cube[o + q]!;
        }
      }
      out[y * nx + x] = selectKth(buf, c, k);
    }
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
