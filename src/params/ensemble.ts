/**
 * Parameters of ensemble correlation (`fluidimage ensemble`): the PIV parameters, same
 * names and meaning, over every pair of a series at once; one result file.
 */
import { group, str, withLeaves } from './schema.js';
import { pivSchema } from './piv.js';

const base = withLeaves(pivSchema, {
  'saving.how': str('complete', 'complete: nothing to do when the result exists; recompute: compute again; new_dir: a fresh directory', ['complete', 'recompute', 'new_dir'] as const),
  'saving.postfix': str('ensemble', 'Suffix of the default output directory'),
});

export const ensembleSchema = group('Parameters of ensemble correlation (correlation planes of every pair summed, pass by pass; one field)', base.children);
