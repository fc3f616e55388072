/**
 * Time average of vector fields: partial sums that can be computed anywhere (one
 * worker, one rank) and added together, then turned into mean and RMS fluctuations.
 */

/** Sums over the fields seen so far, on one fixed grid of n points. */
export class FieldSums {
  /** Layout: [count, sum dx, sum dy, sum dx^2, sum dy^2, sum dx*dy] per point, packed by quantity. */
  readonly data: Float64Array;

  constructor(readonly n: number, data?: Float64Array) {
    this.data = data ?? new Float64Array(6 * n);
    if (this.data.length !== 6 * n) throw new Error(`FieldSums: expected ${6 * n} values, got ${this.data.length}`);
  }

  /** Adds one field; NaN values (rejected vectors) are skipped point by point. */
  add(dx: ArrayLike<number>, dy: ArrayLike<number>): void {
    const n = this.n;
    const d = this.data;
    for (let i = 0; i < n; i++) {
      const u = dx[i];
      const v = dy[i];
      if (Number.isNaN(u) || Number.isNaN(v)) continue;
      d[i] += 1;
      d[n + i] += u;
      d[2 * n + i] += v;
      d[3 * n + i] += u * u;
      d[4 * n + i] += v * v;
      d[5 * n + i] += u * v;
    }
  }

  /** Adds the sums of another worker. */
  merge(other: FieldSums): void {
    for (let i = 0; i < this.data.length; i++) this.data[i] += other.data[i];
  }

  /** Mean and RMS fluctuations (NaN where no value was seen). */
  result(): { count: Float32Array; mean_dx: Float32Array; mean_dy: Float32Array; rms_dx: Float32Array; rms_dy: Float32Array; cov_dxdy: Float32Array } {
    const n = this.n;
    const d = this.data;
    const out = {
      count: new Float32Array(n), mean_dx: new Float32Array(n), mean_dy: new Float32Array(n),
      rms_dx: new Float32Array(n), rms_dy: new Float32Array(n), cov_dxdy: new Float32Array(n),
    };
    for (let i = 0; i < n; i++) {
      const c = d[i];
      out.count[i] = c;
      if (c === 0) {
        out.mean_dx[i] = out.mean_dy[i] = out.rms_dx[i] = out.rms_dy[i] = out.cov_dxdy[i] = Number.NaN;
        continue;
      }
      const mu = d[n + i] / c;
      const mv = d[2 * n + i] / c;
      out.mean_dx[i] = mu;
      out.mean_dy[i] = mv;
      // Population variance; clamp tiny negative values from rounding.
      out.rms_dx[i] = Math.sqrt(Math.max(0, d[3 * n + i] / c - mu * mu));
      out.rms_dy[i] = Math.sqrt(Math.max(0, d[4 * n + i] / c - mv * mv));
      out.cov_dxdy[i] = d[5 * n + i] / c - mu * mv;
    }
    return out;
  }
}
