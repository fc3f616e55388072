/**
 * Spatial derivatives of a gridded field: second-order central differences inside,
 * first-order one-sided differences at the borders (and next to NaN points), spacing taken
 * from the grid coordinates (which need not be uniform).
 *
 * Coordinates are those of the result: x along columns, y along rows, downwards. So the
 * vorticity dv/dx - du/dy is positive for a rotation that is clockwise on screen
 * (counter-clockwise in the (x, y-down) frame); multiply by -1 for the usual y-up frame.
 * Units: displacement per pixel (per image pair); divide by dt for 1/s.
 */
import { axisLines, type GridField } from './grid.js';

/**
 * d f / d(axis) where f is [ny, nx] (x fastest) and the derivative is taken along x
 * (axis 'x') or y (axis 'y'). NaN where neither neighbour pair gives a finite value.
 */
export function derivative(f: ArrayLike<number>, field: Pick<GridField, 'nx' | 'ny' | 'x' | 'y'>, axis: 'x' | 'y'): Float32Array {
  const { nx, ny } = field;
  const out = new Float32Array(nx * ny);
  const coord = axis === 'x' ? field.x : field.y;
  const { n, stride, lines, lineStep } = axisLines(axis, nx, ny);
  for (let line = 0; line < lines; line++) {
    const base = line * lineStep;
    for (let i = 0; i < n; i++) {
      out[base + i * stride] = n < 2 ? Number.NaN : diffAt(f, base, stride, coord, n, i);
    }
  }
  return out;
}

/** Derivative at point i of a line: central when both neighbours are finite, else one-sided. */
function diffAt(f: ArrayLike<number>, base: number, stride: number, coord: ArrayLike<number>, n: number, i: number): number {
  const fi = f[base + i * stride];
  const prev = i > 0 ? f[base + (i - 1) * stride] : Number.NaN;
  const next = i < n - 1 ? f[base + (i + 1) * stride] : Number.NaN;
  const okPrev = Number.isFinite(prev);
  const okNext = Number.isFinite(next);
  if (okPrev && okNext) return (next - prev) / (coord[i + 1] - coord[i - 1]);
  if (!Number.isFinite(fi)) return Number.NaN;
  if (okNext) return (next - fi) / (coord[i + 1] - coord[i]);
  if (okPrev) return (fi - prev) / (coord[i] - coord[i - 1]);
  return Number.NaN;
}

/** dv/dx - du/dy (image frame, y downwards; see the module comment for the sign). */
export function vorticity(field: GridField): Float32Array {
  const dvdx = derivative(field.v, field, 'x');
  const dudy = derivative(field.u, field, 'y');
  for (let i = 0; i < dvdx.length; i++) dvdx[i] -= dudy[i];
  return dvdx;
}

/** du/dx + dv/dy (the same in both frames). */
export function divergence(field: GridField): Float32Array {
  const dudx = derivative(field.u, field, 'x');
  const dvdy = derivative(field.v, field, 'y');
  for (let i = 0; i < dudx.length; i++) dudx[i] += dvdy[i];
  return dudx;
}
