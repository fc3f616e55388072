/**
 * Per-pixel statistics of a series of images, as partial sums that can be merged:
 * count, sum and sum of squares in float64, min and max. Integer images (8/16-bit)
 * give exact sums (up to 2^53), so the mean does not depend on how the images were
 * split between workers or in which order they were added.
 */

export interface ImageStats {
  count: number;
  mean: Float64Array;
  min?: Float32Array;
  max?: Float32Array;
  std?: Float64Array;
}

export interface StatsOptions {
  min: boolean;
  max: boolean;
  std: boolean;
}

export class ImageSums {
  count = 0;
  readonly sum: Float64Array;
  readonly sumSquares: Float64Array | undefined;
  readonly min: Float32Array | undefined;
  readonly max: Float32Array | undefined;

  constructor(readonly size: number, readonly options: StatsOptions) {
    this.sum = new Float64Array(size);
    this.sumSquares = options.std ? new Float64Array(size) : undefined;
    this.min = options.min ? new Float32Array(size).fill(Infinity) : undefined;
    this.max = options.max ? new Float32Array(size).fill(-Infinity) : undefined;
  }

  /** Adds one image (any typed array of `size` values). */
  add(data: Uint8Array | Uint16Array | Float32Array): void {
    if (data.length !== this.size) throw new RangeError(`image of ${data.length} pixels added to sums of ${this.size}`);
    const { sum, sumSquares: sq, min, max } = this;
    const n = this.size;
    for (let i = 0; i < n; i++) sum[i]! += data[i]!;
    if (sq) for (let i = 0; i < n; i++) sq[i]! += data[i]! * data[i]!;
    if (min) for (let i = 0; i < n; i++) if (data[i]! < min[i]!) min[i] = data[i]!;
    if (max) for (let i = 0; i < n; i++) if (data[i]! > max[i]!) max[i] = data[i]!;
    this.count++;
  }

  /** Adds another set of partial sums (same size and options) into this one. */
  merge(other: ImageSums): void {
    if (other.size !== this.size) throw new RangeError(`cannot merge sums of ${other.size} pixels into sums of ${this.size}`);
    const n = this.size;
    for (let i = 0; i < n; i++) this.sum[i]! += other.sum[i]!;
    if (this.sumSquares && other.sumSquares) for (let i = 0; i < n; i++) this.sumSquares[i]! += other.sumSquares[i]!;
    if (this.min && other.min) for (let i = 0; i < n; i++) if (other.min[i]! < this.min[i]!) this.min[i] = other.min[i]!;
    if (this.max && other.max) for (let i = 0; i < n; i++) if (other.max[i]! > this.max[i]!) this.max[i] = other.max[i]!;
    this.count += other.count;
  }

  /** The statistics (mean = sum / count; std = sqrt(max(0, sumsq / count - mean^2))). */
  result(): ImageStats {
    if (this.count === 0) throw new Error('no image was added');
    const n = this.size;
    const mean = new Float64Array(n);
    for (let i = 0; i < n; i++) mean[i] = this.sum[i]! / this.count;
    let std: Float64Array | undefined;
    if (this.sumSquares) {
      std = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        // (sumsq - sum * mean) / count: one rounding less than sumsq / count - mean^2.
        const v = (this.sumSquares[i]! - this.sum[i]! * mean[i]!) / this.count;
        std[i] = v > 0 ? Math.sqrt(v) : 0;
      }
    }
    return { count: this.count, mean, min: this.min, max: this.max, std };
  }
}
