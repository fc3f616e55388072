/**
 * Why vectors are rejected. Messages are Fluidimage's own strings (joined with " + "
 * when several tests fail, as Fluidimage does), so scripts that parse them keep
 * working. Fluidimage stores no numeric codes; this program adds `errors/codes` with
 * the first reason of each rejection:
 *   1 correlation peak unusable (touching the boundary of the searched region)
 *   2 correlation peak below fix.correl_min
 *   3 displacement above fix.displacement_max
 *   4 too different from the neighbours (fix.threshold_diff_neighbour)
 *   5 normalised median test (fix.threshold_median)
 *   6 window mostly outside the image or the mask (piv0.min_valid_fraction)
 *   7 signal-to-noise: peak ratio below fix.s2n_peak_ratio_min
 *   8 signal-to-noise: peak to mean below fix.s2n_peak_to_mean_min
 *   9 outside fix.global_range
 *   10 global standard deviation filter (fix.global_std_factor)
 *   255 no correlation possible (uniform window)
 */
export const ERROR_CODES = {
  peakOnBorder: 1,
  correlMin: 2,
  displacementMax: 3,
  diffNeighbour: 4,
  median: 5,
  outside: 6,
  peakRatio: 7,
  peakToMean: 8,
  globalRange: 9,
  globalStd: 10,
  other: 255,
} as const;

export const ERROR_MESSAGES = {
  peakOnBorder: 'Correlation peak touching boundary.',
  correlMin: 'correl < correl_min',
  displacementMax: 'delta2 < displacement_max2',
  diffNeighbour: 'diff neighbour too large',
  median: 'normalised median test',
  noTexture: 'Uniform window (no particle).',
  outside: 'Window mostly outside the image or the mask.',
  peakRatio: 's2n peak ratio < s2n_peak_ratio_min',
  peakToMean: 's2n peak to mean < s2n_peak_to_mean_min',
  globalRange: 'outside global_range',
  globalStd: 'global std test',
} as const;

/** Per-vector rejection record of one pass: first code and all messages. */
export class VectorErrors {
  readonly codes: Uint8Array;
  private readonly messages = new Map<number, string>();

  constructor(readonly n: number) {
    this.codes = new Uint8Array(n);
  }

  add(i: number, code: number, message: string): void {
    if (this.codes[i] === 0) this.codes[i] = code;
    const prev = this.messages.get(i);
    this.messages.set(i, prev === undefined ? message : `${prev} + ${message}`);
  }

  isWrong(i: number): boolean {
    return this.codes[i] !== 0;
  }

  /** Forgets a rejection (a secondary peak replaced the vector). */
  clear(i: number): void {
    this.codes[i] = 0;
    this.messages.delete(i);
  }

  /** keys / values / codes as stored in result files (keys in increasing order). */
  toStored(): { keys: Int32Array; values: string[]; codes: Int32Array } {
    const keys = [...this.messages.keys()].sort((a, b) => a - b);
    return {
      keys: Int32Array.from(keys),
      values: keys.map((k) => this.messages.get(k)!),
      codes: Int32Array.from(keys.map((k) => this.codes[k])),
    };
  }
}
