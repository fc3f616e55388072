/**
 * A scalar of the gridded field (vorticity, magnitude, ...) as a colour map over the plot:
 * bilinear interpolation between grid points, constant over the half cell beyond the
 * outer points, nothing further out. The interpolation indices and weights are computed
 * once per column and per row, so the inner loop is a few multiplications and a lookup.
 */
import type { Canvas } from './canvas.js';
import { imageX, imageY, type PlotFrame } from './frame.js';

export interface ScalarGrid {
  nx: number;
  ny: number;
  x: Float64Array;
  y: Float64Array;
  /** [ny, nx], x fastest; NaN = no colour. */
  values: Float32Array;
}

/** Per output pixel along one axis: left grid index (-1 = outside) and weight of the next one. */
interface AxisMap {
  index: Int32Array;
  weight: Float32Array;
}

function axisMap(axis: Float64Array, count: number, toImage: (k: number) => number): AxisMap {
  const index = new Int32Array(count).fill(-1);
  const weight = new Float32Array(count);
  const n = axis.length;
  const halfFirst = n > 1 ? (axis[1] - axis[0]) / 2 : 0.5;
  const halfLast = n > 1 ? (axis[n - 1] - axis[n - 2]) / 2 : 0.5;
  let i = 0;
  for (let k = 0; k < count; k++) {
    const c = toImage(k);
    if (c < axis[0] - halfFirst || c > axis[n - 1] + halfLast) continue;
    if (n === 1 || c <= axis[0]) {
      index[k] = 0;
      continue;
    }
    if (c >= axis[n - 1]) {
      index[k] = n - 2;
      weight[k] = 1;
      continue;
    }
    // Output pixels go in increasing order: the grid cell only moves forward.
    while (i < n - 2 && axis[i + 1] <= c) i++;
    index[k] = i;
    weight[k] = (c - axis[i]) / (axis[i + 1] - axis[i]);
  }
  return { index, weight };
}

/**
 * Draws `grid` coloured through `lut` between min and max, with opacity `alpha`
 * (below 1 to let the image show through).
 */
export function drawScalarField(canvas: Canvas, frame: PlotFrame, grid: ScalarGrid, lut: Int32Array, min: number, max: number, alpha: number): void {
  const { nx, values } = grid;
  const cols = axisMap(grid.x, frame.width, (k) => imageX(frame, frame.left + k));
  const rows = axisMap(grid.y, frame.height, (k) => imageY(frame, frame.top + k));
  const d = canvas.data;
  const gain = max > min ? 255 / (max - min) : 0;
  const stepX = nx > 1 ? 1 : 0;
  const stepY = grid.ny > 1 ? nx : 0;
  for (let r = 0; r < frame.height; r++) {
    const j = rows.index[r];
    const Y = frame.top + r;
    if (j < 0 || Y < 0 || Y >= canvas.height) continue;
    const ty = rows.weight[r];
    for (let c = 0; c < frame.width; c++) {
      const i = cols.index[c];
      const X = frame.left + c;
      if (i < 0 || X < 0 || X >= canvas.width) continue;
      const tx = cols.weight[c];
      const p00 = j * nx + i;
      const v00 = values[p00];
      const v10 = values[p00 + stepX];
      const v01 = values[p00 + stepY];
      const v11 = values[p00 + stepY + stepX];
      let v = (1 - ty) * ((1 - tx) * v00 + tx * v10) + ty * ((1 - tx) * v01 + tx * v11);
      if (Number.isNaN(v)) {
        // A NaN corner: the nearest corner's value, if it has one.
        v = ty < 0.5 ? (tx < 0.5 ? v00 : v10) : tx < 0.5 ? v01 : v11;
        if (Number.isNaN(v)) continue;
      }
      let level = Math.round((v - min) * gain);
      level = level < 0 ? 0 : level > 255 ? 255 : level;
      const colour = lut[level];
      const p = (Y * canvas.width + X) * 4;
      d[p] += (((colour >> 16) & 255) - d[p]) * alpha;
      d[p + 1] += (((colour >> 8) & 255) - d[p + 1]) * alpha;
      d[p + 2] += ((colour & 255) - d[p + 2]) * alpha;
      d[p + 3] = 255;
    }
  }
}
