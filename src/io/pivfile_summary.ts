/** A small description of a PIV result file (for `fluidimage info`). */
import type { PassResult } from '../results/piv_result.js';
import { readPivFileWithInfo, type PivFileInfo } from './pivfile_read.js';
import { median, stats, type Stats } from './stats.js';
import { getGroup, readNumberAttr, readStrings, withH5File } from './h5.js';

export interface PivPassSummary {
  index: number;
  nb_vectors: number;
  /** Vectors whose deltaxs or deltays is NaN. */
  nb_rejected: number;
  nb_errors: number;
  shape_grid: [number, number];
  has_final: boolean;
  deltaxs: Stats;
  deltays: Stats;
  /**
   * Per-vector uncertainty (px, 1 sigma), when the pass holds it: medians of uncertainty_x,
   * uncertainty_y (the pass's vectors) and of uncertainty_x_final, uncertainty_y_final.
   */
  uncertainty?: { median_x: number | null; median_y: number | null; median_x_final: number | null; median_y_final: number | null };
}

export interface PivSummary extends PivFileInfo {
  path: string;
  nb_passes: number;
  names: [string, string];
  shape_images: [number, number];
  passes: PivPassSummary[];
  /** An ensemble correlation's result (`fluidimage ensemble`): the pairs summed. */
  ensemble?: { nb_pairs: number; nb_failed: number; first: [string, string]; last: [string, string] };
}

/** The `ensemble` group of an ensemble correlation's result, or undefined. */
async function ensembleOf(path: string): Promise<PivSummary['ensemble']> {
  return withH5File(path, 'r', (f) => {
    const g = getGroup(f, 'ensemble');
    if (!g) return undefined;
    const a = readStrings(g, 'names_a') ?? [];
    const b = readStrings(g, 'names_b') ?? [];
    return {
      nb_pairs: readNumberAttr(g, 'nb_pairs') ?? a.length, nb_failed: readNumberAttr(g, 'nb_failed') ?? 0,
      first: [a[0] ?? '', b[0] ?? ''], last: [a[a.length - 1] ?? '', b[b.length - 1] ?? ''],
    };
  });
}

/** A small description of a PIV result file. */
export async function readPivSummary(path: string): Promise<PivSummary> {
  const { result, info } = await readPivFileWithInfo(path);
  return {
    path,
    ...info,
    nb_passes: result.passes.length,
    names: result.names,
    shape_images: result.shape_images,
    passes: result.passes.map(summarizePass),
    ensemble: await ensembleOf(path),
  };
}

export function summarizePass(pass: PassResult, index: number): PivPassSummary {
  let rejected = 0;
  for (let i = 0; i < pass.deltaxs.length; i++) {
    if (Number.isNaN(pass.deltaxs[i]) || Number.isNaN(pass.deltays[i])) rejected++;
  }
  return {
    index,
    nb_vectors: pass.xs.length,
    nb_rejected: rejected,
    nb_errors: pass.errors.keys.length,
    shape_grid: pass.shape_grid,
    has_final: pass.final !== undefined,
    deltaxs: stats(pass.deltaxs),
    deltays: stats(pass.deltays),
    ...uncertaintyOf(pass),
  };
}

function uncertaintyOf(pass: PassResult): Pick<PivPassSummary, 'uncertainty'> {
  const e = pass.extra ?? {};
  if (e.uncertainty_x === undefined && e.uncertainty_x_final === undefined) return {};
  const med = (a: Float32Array | undefined) => (a === undefined ? null : median(a));
  return { uncertainty: { median_x: med(e.uncertainty_x), median_y: med(e.uncertainty_y), median_x_final: med(e.uncertainty_x_final), median_y_final: med(e.uncertainty_y_final) } };
}
