/**
 * Parameters of the BOS topology (background-oriented schlieren): the PIV parameters
 * (same names, same meaning) between a fixed reference image and every image of a series.
 */
import { custom, group, invalid, str, withLeaves } from './schema.js';
import { pivSchema } from './piv.js';

function reference(v: unknown, key: string): number | string {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && v.trim() !== '') return v;
  throw invalid(key, 'the index of the reference image in the series (an integer >= 0) or the path of an image', v);
}

const base = withLeaves(pivSchema, {
  'series.str_subset': str('all1by1', 'Which images are compared with the reference: "all1by1" (each image), or an expression as for PIV ("i:i+1")'),
  'saving.postfix': str('bos', 'Suffix of the default output directory and prefix of result names'),
});

export const bosSchema = group('Parameters of the BOS topology (displacements between a reference image and each image)', {
  reference: custom<number | string>(0, 'The reference image: its index in the series (0: the first image) or a path', reference),
  ...base.children,
});
