/**
 * PIV result files in Fluidimage's `MultipassPIVResults v1` HDF5 layout:
 *
 *   /            attrs class_name, module_name, Conventions, nb_passes, program, program_version
 *   /params      the parameter tree (groups for children, attributes for values)
 *   /couple      attrs names, paths (Python tuple reprs, as Fluidimage writes and evals them);
 *                dataset shape_images = [ny, nx]
 *   /piv{k}      attrs class_name="HeavyPIVResults", module_name;
 *                xs, ys, deltaxs, deltays, correls_max (float32), shape_grid = [ny, nx],
 *                errors/{keys int32, values strings, codes int32},
 *                last pass: ixvecs_final, iyvecs_final, deltaxs_final, deltays_final (float32,
 *                flattened regular grid, x fastest), plus any `extra` float32 datasets
 *                (TPS: xs_smooth, ...; piv0.uncertainty: uncertainty_x, uncertainty_y,
 *                uncertainty_x_final, uncertainty_y_final; optional on read).
 *
 * The reader also takes Fluidimage's own files (int64/float64 datasets, no codes, no
 * shape_grid, grids stored y fastest): see pivfile_read.ts.
 */

export const CLASS_NAME = 'MultipassPIVResults';
export const MODULE_NAME = 'fluidimage.data_objects.piv';
export const CONVENTIONS = 'fluidimage.data_objects.piv.MultipassPIVResults v1';
/** class_name of each /piv{k} group in Fluidimage's files. */
export const PASS_CLASS_NAME = 'HeavyPIVResults';

/** Error code given to errors read from files that store none (Fluidimage's own). */
export const UNKNOWN_ERROR_CODE = -1;

/** Who wrote the file (root attributes `program`, `program_version`). */
export interface PivFileMeta {
  program: string;
  version: string;
}

/** Per-vector datasets of a pass, in the order they are written. */
export const VECTOR_KEYS = ['xs', 'ys', 'deltaxs', 'deltays', 'correls_max'] as const;
export type VectorKey = (typeof VECTOR_KEYS)[number];
export const FINAL_KEYS = ['ixvecs_final', 'iyvecs_final', 'deltaxs_final', 'deltays_final'] as const;
/** Names in a pass group that `extra` datasets may not take. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set<string>([
  ...VECTOR_KEYS,
  ...FINAL_KEYS,
  'shape_grid',
  'errors',
]);
