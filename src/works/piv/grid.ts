/**
 * Grids of interrogation windows. Positions are exact: a window of N pixels starting
 * at column s is centred at s + (N - 1) / 2.
 */

export interface Region {
  /** Rows [y0, y1) and columns [x0, x1) of the image used for PIV. */
  y0: number;
  y1: number;
  x0: number;
  x1: number;
}

export interface Grid {
  /** Window shape [ny, nx]. */
  shape: [number, number];
  /** Top-left corners of the windows along each axis. */
  startsY: number[];
  startsX: number[];
  /** Window centres along each axis (exact, may be half-integers). */
  ys: number[];
  xs: number[];
}

/** Parses Fluidimage's `mask.strcrop` ("y0:y1, x0:x1", Python slices, ends excluded). */
export function parseStrcrop(strcrop: string | null, shape: [number, number]): Region {
  const [ny, nx] = shape;
  if (strcrop === null || strcrop.trim() === '') return { y0: 0, y1: ny, x0: 0, x1: nx };
  const parts = strcrop.split(',');
  const bad = () => new Error(`Expected "y0:y1, x0:x1" (Python slices, e.g. "30:250, 100:") for mask.strcrop but received ${JSON.stringify(strcrop)}`);
  if (parts.length !== 2) throw bad();
  const slice = (s: string, n: number): [number, number] => {
    const m = /^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*$/.exec(s);
    if (!m) throw bad();
    const norm = (v: string | undefined, def: number) => {
      if (v === undefined) return def;
      const k = Number(v);
      return Math.min(n, Math.max(0, k < 0 ? n + k : k));
    };
    return [norm(m[1], 0), norm(m[2], n)];
  };
  const [y0, y1] = slice(parts[0], ny);
  const [x0, x1] = slice(parts[1], nx);
  if (y1 <= y0 || x1 <= x0) {
    throw new Error(`mask.strcrop ${JSON.stringify(strcrop)} selects an empty region of the ${ny}x${nx} image`);
  }
  return { y0, y1, x0, x1 };
}

/** Rounding half to even, as Python and numpy do: grids and shifts must match Fluidimage's. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Window step for an overlap fraction (at least one pixel). */
export function stepFor(size: number, overlap: number): number {
  return Math.max(1, size - roundHalfEven(overlap * size));
}

/**
 * Starts along one axis of [a, b), following Fluidimage: regular steps from a while
 * the window ends strictly before b; then one more window aligned on the end b when
 * the gap to the last regular window is larger than floor(step / 2.5).
 */
export function axisStarts(a: number, b: number, size: number, step: number): number[] {
  const starts: number[] = [];
  for (let s = a; s + size < b; s += step) starts.push(s);
  const lastMax = b - size;
  if (lastMax < a) return starts;
  if (starts.length === 0 || lastMax - starts[starts.length - 1] > Math.floor(step / 2.5)) starts.push(lastMax);
  return starts;
}

/** The grid of a pass; throws when the window does not fit in the region. */
export function makeGrid(region: Region, shape: [number, number], overlap: number): Grid {
  const [h, w] = shape;
  const startsY = axisStarts(region.y0, region.y1, h, stepFor(h, overlap));
  const startsX = axisStarts(region.x0, region.x1, w, stepFor(w, overlap));
  if (startsY.length === 0 || startsX.length === 0) {
    throw new Error(`The interrogation window ${h}x${w} does not fit in the ${region.y1 - region.y0}x${region.x1 - region.x0} region of the image`);
  }
  return {
    shape,
    startsY,
    startsX,
    ys: startsY.map((s) => s + (h - 1) / 2),
    xs: startsX.map((s) => s + (w - 1) / 2),
  };
}
