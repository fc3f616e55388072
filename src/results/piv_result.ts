import type { ParamTree } from '../params/tree.js';

/**
 * Data types of a PIV result, shared by the PIV work (which fills them) and the
 * HDF5 writer/reader (which stores them in Fluidimage's MultipassPIVResults v1 layout).
 */

/** Per-vector error of one pass: vector index -> explanation, plus a numeric code. */
export interface PassErrors {
  /** Indices (into xs/ys) of the vectors that were rejected or flagged. */
  keys: Int32Array;
  /** One human-readable message per key ("correl < correl_min", ...). */
  values: string[];
  /** One numeric code per key (see ERROR_CODES in errors.ts). */
  codes: Int32Array;
}

/** Result of one pass on its own grid (positions are exact window centres). */
export interface PassResult {
  /** Column positions of the window centres, in pixels (float, may be half-integer). */
  xs: Float32Array;
  /** Row positions of the window centres, in pixels. */
  ys: Float32Array;
  /** Displacement along x (columns), NaN where rejected. */
  deltaxs: Float32Array;
  /** Displacement along y (rows), NaN where rejected. */
  deltays: Float32Array;
  /** Normalised correlation peak (1.0 for identical windows), NaN where no peak. */
  correls_max: Float32Array;
  errors: PassErrors;
  /** Shape of the grid of this pass, [ny, nx]; xs has length ny*nx, x fastest. */
  shape_grid: [number, number];
  /** Only on the last pass: the field on the final regular grid (no NaN). */
  final?: FinalField;
  /** Extra per-pass datasets that a later stage may add (e.g. TPS smoothing). */
  extra?: Record<string, Float32Array>;
}

/** The field interpolated on the final regular grid (last pass only). */
export interface FinalField {
  /** Integer pixel columns of the final grid points, flattened [ny, nx] (x fastest). */
  ixvecs_final: Float32Array;
  /** Integer pixel rows of the final grid points, flattened [ny, nx] (x fastest). */
  iyvecs_final: Float32Array;
  /** Flattened [ny, nx] (x fastest), no NaN. */
  deltaxs_final: Float32Array;
  deltays_final: Float32Array;
}

/** Everything that goes into one result file. */
export interface PivResult {
  /** File names (basenames) of the two images. */
  names: [string, string];
  /** Full paths of the two images. */
  paths: [string, string];
  /** [ny, nx] of the images. */
  shape_images: [number, number];
  passes: PassResult[];
  /** The full resolved parameter tree (nested plain object of numbers, strings, booleans, null, arrays). */
  params: ParamTree;
}

