/**
 * PIV result files in Fluidimage's `MultipassPIVResults v1` HDF5 layout, by concern:
 * pivfile_layout.ts (the layout and its names), pivfile_write.ts, pivfile_read.ts (also
 * Fluidimage's own files), pivfile_summary.ts (for `fluidimage info`), pyrepr.ts (the
 * Python tuple reprs of couple/names and couple/paths).
 */
export { CLASS_NAME, CONVENTIONS, MODULE_NAME, UNKNOWN_ERROR_CODE, type PivFileMeta } from './pivfile_layout.js';
export { validatePivResult, writePivFile } from './pivfile_write.js';
export { inferGrid, readPivFile, readPivFileWithInfo, type PivFileInfo } from './pivfile_read.js';
export { readPivSummary, summarizePass, type PivPassSummary, type PivSummary } from './pivfile_summary.js';
export { stats, type Stats } from './stats.js';
export { parsePyStrings, pyStrRepr, pyTupleRepr } from './pyrepr.js';
