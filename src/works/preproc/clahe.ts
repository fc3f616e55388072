/**
 * Contrast limited adaptive histogram equalisation (CLAHE, Zuiderveld 1994), written
 * from the algorithm's description:
 *
 * 1. the image is split into tiles of about `tile` pixels (an even split: tile edges at
 *    floor(k ny / nty));
 * 2. each tile gets a histogram of `nbins` bins over the image's [min, max], clipped at
 *    clip_limit x (pixels of the tile) per bin (skimage's convention; at least 1), the
 *    clipped excess spread evenly over all bins (repeated until nothing exceeds);
 * 3. the tile's mapping is its normalised cumulative histogram;
 * 4. each pixel takes the mappings of the (up to) four tiles whose centres surround it,
 *    evaluated at its bin, interpolated bilinearly (beyond the outer tile centres the
 *    nearest tiles are used, so the border is interpolated along one axis only);
 * 5. the result is rescaled to the input's [min, max].
 */
import { minMax, rescaleInPlace, type Img } from './image.js';
import { binIndices } from './equalize.js';

/** Upper bound on tiles x bins (the mappings are kept in memory). */
const MAX_TABLE = 64 * 1024 * 1024;

/** Tile edges along one axis: n + 1 positions, an even split into `tiles` parts. */
function edges(size: number, tiles: number): Int32Array {
  const e = new Int32Array(tiles + 1);
  for (let k = 0; k <= tiles; k++) e[k] = Math.floor((k * size) / tiles);
  return e;
}

/** For each coordinate, the two surrounding tile centres and the weight of the second. */
function interpolation(size: number, e: Int32Array): { a: Int32Array; b: Int32Array; w: Float64Array } {
  const tiles = e.length - 1;
  const centre = (k: number) => (e[k]! + e[k + 1]! - 1) / 2;
  const a = new Int32Array(size);
  const b = new Int32Array(size);
  const w = new Float64Array(size);
  let k = 0;
  for (let i = 0; i < size; i++) {
    if (tiles === 1 || i <= centre(0)) {
      b[i] = 0;
      continue; // a = b = 0, w = 0
    }
    if (i >= centre(tiles - 1)) {
      a[i] = b[i] = tiles - 1;
      continue;
    }
    while (centre(k + 1) < i) k++;
    a[i] = k;
    b[i] = k + 1;
    w[i] = (i - centre(k)) / (centre(k + 1) - centre(k));
  }
  return { a, b, w };
}

/** Clips a histogram at `limit` and spreads the excess evenly, until (nearly) nothing exceeds. */
export function clipHistogram(h: Float64Array, limit: number): void {
  const nbins = h.length;
  for (let iter = 0; iter < 64; iter++) {
    let excess = 0;
    for (let b = 0; b < nbins; b++) {
      if (h[b]! > limit) {
        excess += h[b]! - limit;
        h[b] = limit;
      }
    }
    const share = excess / nbins;
    for (let b = 0; b < nbins; b++) h[b]! += share;
    // Bins at the limit overflow again by `share`: stop once that is negligible.
    if (share <= 1e-9 * limit) return;
  }
}

export function clahe(im: Img, tile: readonly [number, number], nbins: number, clipLimit: number): Float32Array {
  const { width: nx, height: ny, data } = im;
  const [lo, hi] = minMax(data);
  if (!(hi > lo)) return data.slice();
  const nty = Math.max(1, Math.min(ny, Math.round(ny / tile[0])));
  const ntx = Math.max(1, Math.min(nx, Math.round(nx / tile[1])));
  if (nty * ntx * nbins > MAX_TABLE) {
    throw new Error(`equalize_hist_adapt: ${nty}x${ntx} tiles of ${nbins} bins is too many; use larger tiles (window_shape) or fewer bins`);
  }
  const ey = edges(ny, nty);
  const ex = edges(nx, ntx);
  const bins = binIndices(data, lo, hi, nbins);
  // One mapping (normalised cumulative clipped histogram) per tile.
  const maps = new Float32Array(nty * ntx * nbins);
  const h = new Float64Array(nbins);
  for (let ty = 0; ty < nty; ty++) {
    for (let tx = 0; tx < ntx; tx++) {
      h.fill(0);
      for (let y = ey[ty]!; y < ey[ty + 1]!; y++) {
        const o = y * nx;
        for (let x = ex[tx]!; x < ex[tx + 1]!; x++) h[bins[o + x]!]!++;
      }
      const pixels = (ey[ty + 1]! - ey[ty]!) * (ex[tx + 1]! - ex[tx]!);
      if (clipLimit > 0 && clipLimit < 1) clipHistogram(h, Math.max(1, clipLimit * pixels));
      let total = 0;
      for (let b = 0; b < nbins; b++) total += h[b]!;
      const m = (ty * ntx + tx) * nbins;
      let cum = 0;
      for (let b = 0; b < nbins; b++) {
        cum += h[b]!;
        maps[m + b] = cum / total;
      }
    }
  }
  const iy = interpolation(ny, ey);
  const ix = interpolation(nx, ex);
  const out = new Float32Array(nx * ny);
  for (let y = 0; y < ny; y++) {
    const rowA = iy.a[y]! * ntx;
    const rowB = iy.b[y]! * ntx;
    const wy = iy.w[y]!;
    for (let x = 0; x < nx; x++) {
      const i = y * nx + x;
      const bin = bins[i]!;
      const xa = ix.a[x]!;
      const xb = ix.b[x]!;
      const wx = ix.w[x]!;
      const top = (1 - wx) * maps[(rowA + xa) * nbins + bin]! + wx * maps[(rowA + xb) * nbins + bin]!;
      const bottom = (1 - wx) * maps[(rowB + xa) * nbins + bin]! + wx * maps[(rowB + xb) * nbins + bin]!;
      out[i] = (1 - wy) * top + wy * bottom;
    }
  }
  rescaleInPlace(out, lo, hi);
  return out;
}
