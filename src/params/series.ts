/** The `series` group shared by every topology (Fluidimage's names and defaults). */
import { custom, group, invalid, num, numOrNull, str, strOrNull } from './schema.js';

function indStart(v: unknown, key: string): number | string {
  if (v === 'first') return v;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  throw invalid(key, 'an integer >= 0 or "first"', v);
}

/** `series.{path, str_subset, ind_start, ind_stop, ind_step}` with a topology's own str_subset default and docs. */
export function seriesGroup(doc: string, strSubset: string, strSubsetDoc: string) {
  return group(doc, {
    path: strOrNull(null, 'Directory, file or glob of the images (the command-line PATH sets it)'),
    str_subset: str(strSubset, strSubsetDoc),
    ind_start: custom<number | string>('first', 'First value of the index i ("first": the smallest index found)', indStart),
    ind_stop: numOrNull(null, 'Last value of the index i, excluded (null: up to the last possible item)', { integer: true, min: 0 }),
    ind_step: num(1, 'Step of the index i', { integer: true, min: 1 }),
  });
}
