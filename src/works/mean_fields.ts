/**
 * Time average of vector fields: partial sums that can be computed anywhere (one
 * worker, one rank) and added together, then turned into mean and RMS fluctuations, and
 * the uncertainty of each mean value.
 */

/** Quantities summed per point. */
const NQ = 9;

/** Sums over the fields seen so far, on one fixed grid of n points. */
export class FieldSums {
  /**
   * Layout: [count, sum dx, sum dy, sum dx^2, sum dy^2, sum dx*dy, count of uncertainties,
   * sum sigma_x^2, sum sigma_y^2] per point, packed by quantity.
   */
  readonly data: Float64Array;

  constructor(readonly n: number, data?: Float64Array) {
    this.data = data ?? new Float64Array(NQ * n);
    if (this.data.length !== NQ * n) throw new Error(`FieldSums: expected ${NQ * n} values, got ${this.data.length}`);
  }

  /**
   * Adds one field; NaN values (rejected vectors) are skipped point by point. `sx`, `sy`:
   * the per-vector uncertainties of the field (uncertainty_x_final, ...), when it has them.
   */
  add(dx: ArrayLike<number>, dy: ArrayLike<number>, sx?: ArrayLike<number>, sy?: ArrayLike<number>): void {
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
      if (sx === undefined || sy === undefined || !(Number.isFinite(sx[i]) && Number.isFinite(sy[i]))) continue;
      d[6 * n + i] += 1;
      d[7 * n + i] += sx[i] * sx[i];
      d[8 * n + i] += sy[i] * sy[i];
    }
  }

  /** Adds the sums of another worker. */
  merge(other: FieldSums): void {
    for (let i = 0; i < this.data.length; i++) this.data[i] += other.data[i];
  }

  /**
   * Mean and RMS fluctuations (NaN where no value was seen), and the uncertainty of the
   * mean (px, 1 sigma): sqrt(max(s^2, mean sigma^2) / N), s^2 the sample variance of the N
   * values (N - 1 in the denominator; turbulence and random error together) and mean sigma^2
   * that of their per-vector uncertainties (random error alone): the larger of the two
   * estimates of one sample's variance, so that few samples (N = 1: only sigma) or a steady
   * flow still get an honest figure. NaN where neither is known.
   */
  result(): { count: Float32Array; mean_dx: Float32Array; mean_dy: Float32Array; rms_dx: Float32Array; rms_dy: Float32Array; cov_dxdy: Float32Array;
    uncertainty_mean_x: Float32Array; uncertainty_mean_y: Float32Array } {
    const n = this.n;
    const d = this.data;
    const out = {
      count: new Float32Array(n), mean_dx: new Float32Array(n), mean_dy: new Float32Array(n),
      rms_dx: new Float32Array(n), rms_dy: new Float32Array(n), cov_dxdy: new Float32Array(n),
      uncertainty_mean_x: new Float32Array(n), uncertainty_mean_y: new Float32Array(n),
    };
    for (let i = 0; i < n; i++) {
      const c = d[i];
      out.count[i] = c;
      if (c === 0) {
        out.mean_dx[i] = out.mean_dy[i] = out.rms_dx[i] = out.rms_dy[i] = out.cov_dxdy[i] = Number.NaN;
        out.uncertainty_mean_x[i] = out.uncertainty_mean_y[i] = Number.NaN;
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
      const cs = d[6 * n + i];
      const sampleVar = (sumSq: number, mean: number) => (c > 1 ? Math.max(0, sumSq - c * mean * mean) / (c - 1) : Number.NaN);
      const ofMean = (sumSq: number, mean: number, sigmaSq: number) => {
        const v = Math.max(sampleVar(sumSq, mean), cs > 0 ? sigmaSq / cs : Number.NaN);
        // Math.max gives NaN when either is NaN: take the one that is known.
        const known = Number.isNaN(v) ? (cs > 0 ? sigmaSq / cs : sampleVar(sumSq, mean)) : v;
        return Math.sqrt(known / c);
      };
      out.uncertainty_mean_x[i] = ofMean(d[3 * n + i], mu, d[7 * n + i]);
      out.uncertainty_mean_y[i] = ofMean(d[4 * n + i], mv, d[8 * n + i]);
    }
    return out;
  }
}
