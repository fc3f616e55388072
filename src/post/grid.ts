/**
 * A vector field on a regular grid, the common input of post-processing (derivatives,
 * filters, spectra) and of the colour maps of `fluidimage view`.
 */
import type { PassResult, PivResult } from '../results/piv_result.js';

export interface GridField {
  nx: number;
  ny: number;
  /** Column coordinates of the grid (pixels), one per column, increasing. */
  x: Float64Array;
  /** Row coordinates of the grid (pixels, downwards), one per row, increasing. */
  y: Float64Array;
  /** Displacement along x, [ny, nx] flattened with x fastest; NaN where unknown. */
  u: Float32Array;
  /** Displacement along y (downwards), same layout. */
  v: Float32Array;
}

/** The last pass of a result (throws when there is none). */
export function lastPass(result: PivResult): PassResult {
  const pass = result.passes[result.passes.length - 1];
  if (pass === undefined) throw new Error('PIV result without passes');
  return pass;
}

/**
 * The field on the final regular grid of the last pass (no NaN), or undefined when the
 * file has none. The grid shape is read from the coordinates themselves (the rows are the
 * runs of equal iyvecs_final), so that a final grid of another shape than the pass's works.
 */
export function finalGrid(result: PivResult): GridField | undefined {
  const final = lastPass(result).final;
  if (final === undefined) return undefined;
  const { ixvecs_final: ix, iyvecs_final: iy, deltaxs_final: u, deltays_final: v } = final;
  const n = u.length;
  if (n === 0 || ix.length !== n || iy.length !== n) return undefined;
  let nx = 1;
  while (nx < n && iy[nx] === iy[0]) nx++;
  if (n % nx !== 0) return undefined;
  const ny = n / nx;
  return { nx, ny, x: Float64Array.from(ix.subarray(0, nx)), y: axisEvery(iy, nx, ny), u, v };
}

/**
 * The last pass on its own grid (NaN where rejected), or undefined when its vectors do
 * not form a grid of more than one row and column.
 */
export function passGrid(pass: PassResult): GridField | undefined {
  const [ny, nx] = pass.shape_grid;
  if (nx < 2 || ny < 2 || nx * ny !== pass.xs.length) return undefined;
  return { nx, ny, x: Float64Array.from(pass.xs.subarray(0, nx)), y: axisEvery(pass.ys, nx, ny), u: pass.deltaxs, v: pass.deltays };
}

/** The final grid when there is one, else the last pass's grid. */
export function bestGrid(result: PivResult): GridField | undefined {
  return finalGrid(result) ?? passGrid(lastPass(result));
}

/** values[0], values[step], ... (count values): the y axis of an x-fastest grid. */
function axisEvery(values: Float32Array, step: number, count: number): Float64Array {
  const out = new Float64Array(count);
  for (let j = 0; j < count; j++) out[j] = values[j * step];
  return out;
}

/** Magnitude sqrt(u² + v²) at each grid point (NaN stays NaN). */
export function magnitude(u: ArrayLike<number>, v: ArrayLike<number>): Float32Array {
  const out = new Float32Array(u.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.sqrt(u[i] * u[i] + v[i] * v[i]);
  return out;
}

/**
 * The lines of an ny x nx grid (x fastest) along one axis: `lines` lines of `n` points,
 * line k starting at k * lineStep, consecutive points `stride` apart. One loop over this
 * serves both directions.
 */
export function axisLines(axis: 'x' | 'y', nx: number, ny: number): { n: number; stride: number; lines: number; lineStep: number } {
  return axis === 'x' ? { n: nx, stride: 1, lines: ny, lineStep: nx } : { n: ny, stride: nx, lines: nx, lineStep: 1 };
}
