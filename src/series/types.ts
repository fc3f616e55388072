/** What the parts of a series share: its parameters, its items and its error. */

/** Error about the series parameters or the files; `message` is meant for the user. */
export class SeriesError extends Error {
  readonly code = 'ERR_SERIES' as const;
  constructor(message: string) {
    super(message);
    this.name = 'SeriesError';
  }
}

/** Fluidimage's `params.series`. */
export interface SeriesParams {
  path: string;
  str_subset: string;
  ind_start: number | 'first';
  ind_stop: number | null;
  ind_step: number;
}

/** One pair (or n-tuple) of images of the series. */
export interface Item {
  /** Serie index `i` (Fluidimage's `ind_serie`). */
  index: number | string;
  /** Absolute paths, in str_subset order (first index varies slowest). */
  paths: string[];
  /** File names (no directory), same order as `paths`. */
  names: string[];
  /** Names of the images of this item that do not exist (empty when complete). */
  missing: string[];
}
