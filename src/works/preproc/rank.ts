/**
 * Rank filters over a sliding window (median, percentile, minimum), exact, with
 * scipy.ndimage's window placement and border modes. NaN pixels count as 0.
 *
 * - Sliding histogram (Huang), the general method: each value is replaced by its level
 *   (integer images: the value itself; float images: its rank among the distinct values,
 *   from a radix sort); the window is walked in a snake, so each step updates one column
 *   or one row of the window (cost per pixel grows with the window's side, not its area);
 *   counts are kept per level and per block of 16, 256, ... levels, so the k-th level is
 *   found from the top in at most 16 steps per tree level.
 * - Sorted window, for float images and windows up to 5x5 (where ranking a million
 *   distinct floats would cost more than the filter): the window's values are kept
 *   sorted, one merge pass per pixel.
 * - Minimum: separable, van Herk / Gil-Werman (3 comparisons per pixel and direction,
 *   whatever the window).
 */
import { pad, reach, type Boundary, type Img } from './image.js';

/**
 * Float data in windows up to this many pixels use the sorted window (ranking 1M
 * distinct floats costs more than the whole filter); otherwise the sliding histogram.
 */
const SORTED_MAX_AREA = 25;

/** The k-th smallest of a[0..n) (0-based); reorders a. */
export function selectKth(a: Float32Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 12) {
    const mid = (lo + hi) >> 1;
    // Median of three as pivot: sorted samples guard against the worst case.
    let x = a[lo]!;
    let y = a[mid]!;
    let z = a[hi]!;
    if (x > y) { const t = x; x = y; y = t; }
    if (y > z) { y = z; }
    if (x > y) { y = x; }
    const pivot = y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  // Short ranges: insertion sort.
  for (let i = lo + 1; i <= hi; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= lo && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
  return a[k]!;
}

/** scipy's rank for a percentile of `size` values (100 gives the maximum). */
export function percentileRank(size: number, percentile: number): number {
  return Math.min(size - 1, Math.floor((size * percentile) / 100));
}

/** The k-th smallest value (0-based) of each window of `size` [ny, nx] around each pixel. */
export function rankFilter(im: Img, size: readonly [number, number], k: number, mode: Boundary): Float32Array {
  const [sy, sx] = size;
  if (k < 0 || k >= sy * sx) throw new RangeError(`rank ${k} outside a window of ${sy * sx} pixels`);
  const [top, bottom] = reach(sy);
  const [left, right] = reach(sx);
  const padded = pad(im, top, bottom, left, right, mode);
  const pd = padded.data;
  for (let i = 0; i < pd.length; i++) if (pd[i] !== pd[i]) pd[i] = 0; // NaN: comparisons would fail
  if (k === 0) return minimumPadded(padded, sy, sx);
  const range = integerRange(padded.data);
  return range === null && sy * sx <= SORTED_MAX_AREA
    ? sortedWindow(padded, im.width, im.height, sy, sx, k)
    : slidingHistogram(pd, padded.width, padded.height, 1, im.width, im.height, sy, sx, k, range);
}

/** Minimum over each window (separable). */
export function minimumFilter(im: Img, size: readonly [number, number], mode: Boundary): Float32Array {
  const [sy, sx] = size;
  const [top, bottom] = reach(sy);
  const [left, right] = reach(sx);
  return minimumPadded(pad(im, top, bottom, left, right, mode), sy, sx);
}

/**
 * Small windows: the window's values are kept sorted; sliding one pixel along a row
 * removes the (sorted) leaving column and inserts the (sorted) entering column in a
 * single merge pass over the window, so the k-th value is read directly.
 */
function sortedWindow(p: Img, nx: number, ny: number, sy: number, sx: number, k: number): Float32Array {
  const pw = p.width;
  const src = p.data;
  const n = sy * sx;
  const out = new Float32Array(nx * ny);
  // Column x of the current row band, sorted: cols[x * sy .. x * sy + sy).
  const cols = new Float64Array(pw * sy);
  let cur = new Float64Array(n);
  let next = new Float64Array(n);
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < pw; x++) {
      const o = x * sy;
      for (let r = 0; r < sy; r++) {
        const v = src[(y + r) * pw + x]!;
        let j = o + r - 1;
        while (j >= o && cols[j]! > v) {
          cols[j + 1] = cols[j]!;
          j--;
        }
        cols[j + 1] = v;
      }
    }
    cur.set(cols.subarray(0, n));
    cur.sort();
    out[y * nx] = cur[k]!;
    for (let x = 1; x < nx; x++) {
      const rem = (x - 1) * sy; // leaving column
      const add = (x + sx - 1) * sy; // entering column
      const remEnd = rem + sy;
      const addEnd = add + sy;
      let r = rem;
      let a = add;
      let m = 0;
      for (let i = 0; i < n; i++) {
        const v = cur[i]!;
        if (r < remEnd && v === cols[r]!) {
          r++;
          continue;
        }
        while (a < addEnd && cols[a]! < v) next[m++] = cols[a++]!;
        next[m++] = v;
      }
      while (a < addEnd) next[m++] = cols[a++]!;
      const t = cur;
      cur = next;
      next = t;
      out[y * nx + x] = cur[k]!;
    }
  }
  return out;
}

/** Integer levels of the values: their rank among the distinct values. */
interface Levels {
  levels: Int32Array;
  /** Number of levels. */
  count: number;
  /** Value of level l: unique[l], or l + base when `unique` is null. */
  unique: Float32Array | null;
  base: number;
}

/** [min, max] when every value is an integer and the range is moderate, else null. */
export function integerRange(data: Float32Array): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v !== Math.floor(v)) return null; // also NaN and infinities
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return hi - lo < 1 << 20 ? [lo, hi] : null;
}

/** Radix-sort key of a float32: unsigned order = numeric order. */
function sortKeys(data: Float32Array): Uint32Array {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const keys = new Uint32Array(data.length);
  for (let i = 0; i < keys.length; i++) {
    const b = bits[i]!;
    keys[i] = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
  }
  return keys;
}

/** Indices of `data` in increasing order of value (LSD radix sort, 3 passes of 11 bits). */
function argsort(data: Float32Array): Int32Array {
  const n = data.length;
  let keys: Uint32Array = sortKeys(data);
  let idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  let keys2: Uint32Array = new Uint32Array(n);
  let idx2 = new Int32Array(n);
  const counts = new Int32Array(2048);
  for (let shift = 0; shift < 32; shift += 11) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[(keys[i]! >>> shift) & 2047]!++;
    let sum = 0;
    for (let d = 0; d < 2048; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const d = (keys[i]! >>> shift) & 2047;
      const to = counts[d]!++;
      keys2[to] = keys[i]!;
      idx2[to] = idx[i]!;
    }
    [keys, keys2] = [keys2, keys];
    [idx, idx2] = [idx2, idx];
  }
  return idx;
}

/** Levels of the values; `range` from integerRange (integer data need no sorting). */
function toLevels(data: Float32Array, range: [number, number] | null): Levels {
  const levels = new Int32Array(data.length);
  // Integer data with a moderate range (raw camera images): the level is the value itself.
  if (range !== null) {
    const lo = range[0];
    for (let i = 0; i < data.length; i++) levels[i] = data[i]! - lo;
    return { levels, count: range[1] - lo + 1, unique: null, base: lo };
  }
  const order = argsort(data);
  const unique = new Float32Array(data.length);
  let count = 0;
  for (let j = 0; j < order.length; j++) {
    const v = data[order[j]!]!;
    if (count === 0 || v !== unique[count - 1]) unique[count++] = v;
    levels[order[j]!] = count - 1;
  }
  return { levels, count, unique: unique.subarray(0, count), base: 0 };
}

/**
 * The k-th value of each window of sy x sx pixels over `planes` stacked padded images
 * (`data`: planes x ph x pw; planes > 1 for the temporal tools with a spatial window).
 */
export function slidingHistogram(data: Float32Array, pw: number, ph: number, planes: number, nx: number, ny: number,
  sy: number, sx: number, k: number, range: [number, number] | null): Float32Array {
  const plane = pw * ph;
  const { levels: lev, count, unique, base } = toLevels(data, range);
  // Counts per level and per block of 16, 256, ... levels (a 16-ary tree stored level
  // by level in one array, the top level holding at most 16 counters): the k-th value
  // is found from the top in at most 16 steps per tree level, whatever the data.
  const offsets: number[] = [0];
  let size = count;
  while (size > 16) {
    offsets.push(offsets[offsets.length - 1]! + size);
    size = (size + 15) >> 4;
  }
  const depth = offsets.length;
  const tree = new Int32Array(offsets[depth - 1]! + 16);
  const off = Int32Array.from(offsets);
  const top = off[depth - 1]!;
  const outLevels = new Int32Array(nx * ny);
  for (let t = 0; t < planes; t++) {
    for (let r = 0; r < sy; r++) {
      for (let c = 0; c < sx; c++) {
        const l = lev[t * plane + r * pw + c]!;
        for (let d = 0; d < depth; d++) tree[off[d]! + (l >> (4 * d))]!++;
      }
    }
  }
  let x = 0;
  for (let y = 0; y < ny; y++) {
    const forward = (y & 1) === 0;
    for (let step = 0; step < nx; step++) {
      // Descend: at each tree level, skip whole blocks while they hold <= rem values.
      let rem = k;
      let i = top;
      while (rem >= tree[i]!) rem -= tree[i++]!;
      let node = i - top;
      for (let d = depth - 2; d >= 0; d--) {
        const o = off[d]!;
        i = o + (node << 4);
        while (rem >= tree[i]!) rem -= tree[i++]!;
        node = i - o;
      }
      outLevels[y * nx + x] = node;
      if (step === nx - 1) break;
      // Slide one column: drop the column leaving the window, add the one entering it.
      const leave = forward ? x : x + sx - 1;
      const enter = forward ? x + sx : x - 1;
      for (let t = 0; t < planes; t++) {
        for (let r = 0, j = t * plane + y * pw; r < sy; r++, j += pw) {
          const a = lev[j + leave]!;
          const b = lev[j + enter]!;
          if (a === b) continue;
          for (let d = 0, sh = 0; d < depth; d++, sh += 4) {
            tree[off[d]! + (a >> sh)]!--;
            tree[off[d]! + (b >> sh)]!++;
          }
        }
      }
      x += forward ? 1 : -1;
    }
    if (y === ny - 1) break;
    // Slide one row down.
    for (let t = 0; t < planes; t++) {
      const rowOut = t * plane + y * pw + x;
      const rowIn = t * plane + (y + sy) * pw + x;
      for (let c = 0; c < sx; c++) {
        const a = lev[rowOut + c]!;
        const b = lev[rowIn + c]!;
        if (a === b) continue;
        for (let d = 0, sh = 0; d < depth; d++, sh += 4) {
          tree[off[d]! + (a >> sh)]!--;
          tree[off[d]! + (b >> sh)]!++;
        }
      }
    }
  }
  const out = new Float32Array(nx * ny);
  if (unique === null) for (let i = 0; i < out.length; i++) out[i] = outLevels[i]! + base;
  else for (let i = 0; i < out.length; i++) out[i] = unique[outLevels[i]!]!;
  return out;
}

/**
 * Running minimum over `s` consecutive rows (`rows` of length `w` in `src`), van Herk /
 * Gil-Werman on whole rows: prefix minima within blocks of s rows (forward), suffix minima
 * (backward), then min(suffix[y], prefix[y + s - 1]).
 */
function minRows(src: Float32Array, rows: number, w: number, s: number): Float32Array {
  const outRows = rows - s + 1;
  const out = new Float32Array(outRows * w);
  if (s === 1) {
    out.set(src.subarray(0, outRows * w));
    return out;
  }
  const g = new Float32Array(rows * w);
  const h = new Float32Array(rows * w);
  for (let r = 0; r < rows; r++) {
    const o = r * w;
    if (r % s === 0) g.set(src.subarray(o, o + w), o);
    else for (let i = 0; i < w; i++) g[o + i] = Math.min(g[o - w + i]!, src[o + i]!);
  }
  for (let r = rows - 1; r >= 0; r--) {
    const o = r * w;
    if (r % s === s - 1 || r === rows - 1) h.set(src.subarray(o, o + w), o);
    else for (let i = 0; i < w; i++) h[o + i] = Math.min(h[o + w + i]!, src[o + i]!);
  }
  for (let y = 0; y < outRows; y++) {
    const a = y * w;
    const b = (y + s - 1) * w;
    for (let i = 0; i < w; i++) out[a + i] = Math.min(h[a + i]!, g[b + i]!);
  }
  return out;
}

/** Running minimum along each row (same scheme as minRows, within a row). */
function minCols(src: Float32Array, rows: number, pw: number, s: number): Float32Array {
  const w = pw - s + 1;
  const out = new Float32Array(rows * w);
  const g = new Float32Array(pw);
  const h = new Float32Array(pw);
  for (let r = 0; r < rows; r++) {
    const o = r * pw;
    // Blocks of s pixels start at 0: prefix minima forward, suffix minima backward.
    for (let i = 0, j = 0; i < pw; i++, j = j === s - 1 ? 0 : j + 1) g[i] = j === 0 ? src[o + i]! : Math.min(g[i - 1]!, src[o + i]!);
    const lastStart = pw - 1 - ((pw - 1) % s);
    for (let i = pw - 1, j = pw - 1 - lastStart; i >= 0; i--, j = j === 0 ? s - 1 : j - 1) {
      h[i] = j === s - 1 || i === pw - 1 ? src[o + i]! : Math.min(h[i + 1]!, src[o + i]!);
    }
    const d = r * w;
    for (let i = 0; i < w; i++) out[d + i] = Math.min(h[i]!, g[i + s - 1]!);
  }
  return out;
}

/** Minimum over sy x sx windows of a padded image: along rows, then along columns. */
function minimumPadded(p: Img, sy: number, sx: number): Float32Array {
  const nx = p.width - sx + 1;
  return minRows(minCols(p.data, p.height, p.width, sx), p.height, nx, sy);
}
