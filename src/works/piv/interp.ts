/**
 * Interpolation helpers for fields on rectilinear grids (the grids of PIV passes):
 * filling rejected (NaN) vectors from their neighbours, bilinear interpolation to
 * arbitrary points with nearest-value extrapolation outside the grid.
 */

/**
 * Replaces NaN values by the mean of their valid 8-neighbours, repeating until none
 * is left (a front moving inwards from the valid vectors). All-NaN fields become 0.
 */
export function fillNaN(values: Float32Array, ny: number, nx: number): Float32Array {
  const out = Float32Array.from(values);
  let missing: number[] = [];
  for (let i = 0; i < out.length; i++) if (Number.isNaN(out[i])) missing.push(i);
  if (missing.length === out.length) return out.fill(0);
  while (missing.length > 0) {
    const still: number[] = [];
    const updates: [number, number][] = [];
    for (const idx of missing) {
      const iy = Math.floor(idx / nx);
      const ix = idx - iy * nx;
      let s = 0;
      let c = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const y = iy + dy;
        if (y < 0 || y >= ny) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const x = ix + dx;
          if ((dx === 0 && dy === 0) || x < 0 || x >= nx) continue;
          const v = out[y * nx + x];
          if (!Number.isNaN(v)) {
            s += v;
            c++;
          }
        }
      }
      if (c > 0) updates.push([idx, s / c]);
      else still.push(idx);
    }
    // Apply after the sweep so the result does not depend on the visiting order.
    for (const [idx, v] of updates) out[idx] = v;
    missing = still;
  }
  return out;
}

/** Index i such that axis[i] <= v < axis[i+1], clamped to [0, n-2]; axis increasing. */
function cell(axis: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = axis.length - 1;
  if (hi < 1) return 0;
  if (v <= axis[0]) return 0;
  if (v >= axis[hi]) return hi - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (axis[mid] <= v) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Bilinear interpolation of `values` (ny*nx, x fastest, no NaN) given on the grid
 * xAxis x yAxis, at points (px[i], py[i]). Outside the grid the nearest edge value
 * is used (no extrapolation of gradients).
 */
export function interpGrid(xAxis: ArrayLike<number>, yAxis: ArrayLike<number>, values: Float32Array,
  px: ArrayLike<number>, py: ArrayLike<number>): Float32Array {
  const nx = xAxis.length;
  const ny = yAxis.length;
  const out = new Float32Array(px.length);
  for (let k = 0; k < px.length; k++) {
    const x = Math.min(Math.max(px[k], xAxis[0]), xAxis[nx - 1]);
    const y = Math.min(Math.max(py[k], yAxis[0]), yAxis[ny - 1]);
    const i = cell(xAxis, x);
    const j = cell(yAxis, y);
    const tx = nx > 1 ? (x - xAxis[i]) / (xAxis[i + 1] - xAxis[i]) : 0;
    const ty = ny > 1 ? (y - yAxis[j]) / (yAxis[j + 1] - yAxis[j]) : 0;
    const i1 = Math.min(i + 1, nx - 1);
    const j1 = Math.min(j + 1, ny - 1);
    const v00 = values[j * nx + i];
    const v01 = values[j * nx + i1];
    const v10 = values[j1 * nx + i];
    const v11 = values[j1 * nx + i1];
    out[k] = (1 - ty) * ((1 - tx) * v00 + tx * v01) + ty * ((1 - tx) * v10 + tx * v11);
  }
  return out;
}

/**
 * interpGrid at the nodes of another grid (qx x qy, x fastest), for several fields on the
 * same geometry at once: cells and weights are found once per column and per row instead
 * of once per point and field. Values equal those of interpGrid at the same points.
 */
export function interpToGrid(xAxis: ArrayLike<number>, yAxis: ArrayLike<number>, fields: readonly Float32Array[],
  qx: ArrayLike<number>, qy: ArrayLike<number>): Float32Array[] {
  const nx = xAxis.length;
  const ny = yAxis.length;
  const axisWeights = (axis: ArrayLike<number>, n: number, q: ArrayLike<number>) => {
    const lo = new Int32Array(q.length);
    const hi = new Int32Array(q.length);
    const t = new Float64Array(q.length);
    for (let k = 0; k < q.length; k++) {
      const v = Math.min(Math.max(q[k], axis[0]), axis[n - 1]);
      const c = cell(axis, v);
      lo[k] = c;
      hi[k] = Math.min(c + 1, n - 1);
      t[k] = n > 1 ? (v - axis[c]) / (axis[c + 1] - axis[c]) : 0;
    }
    return { lo, hi, t };
  };
  const wx = axisWeights(xAxis, nx, qx);
  const wy = axisWeights(yAxis, ny, qy);
  return fields.map((values) => {
    const out = new Float32Array(qx.length * qy.length);
    for (let j = 0; j < qy.length; j++) {
      const row0 = wy.lo[j] * nx;
      const row1 = wy.hi[j] * nx;
      const ty = wy.t[j];
      const base = j * qx.length;
      for (let i = 0; i < qx.length; i++) {
        const i0 = wx.lo[i];
        const i1 = wx.hi[i];
        const tx = wx.t[i];
        out[base + i] = (1 - ty) * ((1 - tx) * values[row0 + i0] + tx * values[row0 + i1]) +
          ty * ((1 - tx) * values[row1 + i0] + tx * values[row1 + i1]);
      }
    }
    return out;
  });
}

/**
 * 3x3 binomial smoothing ([1 2 1] x [1 2 1] / 16, edges renormalised) of a field
 * without NaN: used on the predictor of a deformation pass, whose noise would otherwise
 * be fed back into the images and add up over iterations.
 */
export function smooth3(values: Float32Array, ny: number, nx: number): Float32Array {
  const out = new Float32Array(values.length);
  const w = [1, 2, 1];
  for (let iy = 0; iy < ny; iy++) {
    for (let ix = 0; ix < nx; ix++) {
      let s = 0;
      let ws = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const y = iy + dy;
        if (y < 0 || y >= ny) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const x = ix + dx;
          if (x < 0 || x >= nx) continue;
          const k = w[dy + 1] * w[dx + 1];
          s += k * values[y * nx + x];
          ws += k;
        }
      }
      out[iy * nx + ix] = s / ws;
    }
  }
  return out;
}
