/**
 * series.str_subset compiled into a selector: for each serie index i, the values of each
 * index of the file names ("pairs" and "all1by1" included). See the module comment of
 * series.ts for the semantics.
 */
import { compileIndexExpression } from './index_expression.js';
import { SeriesError } from './types.js';

/** What str_subset accepts, for its error messages. */
export const SUBSET_FORMS =
  'expected "pairs", "all1by1", or one comma-separated part per index of the file names, ' +
  'each an integer expression of i or START:STOP[:STEP] ' +
  '(e.g. "i:i+2", "i+1:i+3", "i:i+4:2", "i,0:2")';

/** Smallest and largest value of each index over the files of the series. */
export interface DimRange {
  min: number;
  max: number;
}

/** Index values per dimension for serie index i; null once past the end (all1by1). */
export type Selector = (i: number) => number[][] | null;

/** One part of str_subset: the values of one index as a function of i. */
type PartFn = (i: number) => number[];

/** Smallest / largest of a non-empty array (no spread: series may hold 10^5+ files). */
export function minOf(values: readonly number[]): number {
  return values.reduce((a, b) => (b < a ? b : a));
}
export function maxOf(values: readonly number[]): number {
  return values.reduce((a, b) => (b > a ? b : a));
}

/** Python-like range as an array (step > 0). */
function rangeValues(start: number, stop: number, step: number): number[] {
  const values: number[] = [];
  for (let v = start; v < stop; v += step) values.push(v);
  return values;
}

/** Compile one comma-separated part (`EXPR` or `START:STOP[:STEP]`) for index `dim`. */
function compilePart(part: string, dim: DimRange): PartFn {
  const pieces = part.split(':').map((s) => s.trim());
  if (pieces.length === 1) {
    if (pieces[0] === '') throw new Error('empty part');
    const e = compileIndexExpression(pieces[0]!);
    return (i) => [e(i)];
  }
  if (pieces.length > 3) throw new Error(`too many ":" in "${part.trim()}"`);
  const [startText, stopText, stepText = ''] = pieces as [string, string, string?];
  const start = startText === '' ? (): number => dim.min : compileIndexExpression(startText);
  const stop = stopText === '' ? (): number => dim.max + 1 : compileIndexExpression(stopText);
  const step = stepText === '' ? (): number => 1 : compileIndexExpression(stepText);
  return (i) => {
    const s = step(i);
    if (s <= 0) throw new SeriesError(`the step in series.str_subset part "${part.trim()}" must be positive (got ${s} for i=${i})`);
    return rangeValues(start(i), stop(i), s);
  };
}

/** The str_subset that "pairs" stands for, given the index ranges of the files. */
function pairsSubset(dims: DimRange[], example: string): string {
  const sizes = dims.map((d) => d.max - d.min + 1);
  if (dims.length === 1) return `i+${dims[0]!.min}:i+${dims[0]!.min + 2}`;
  if (dims.length === 2) {
    const [d0, d1] = dims as [DimRange, DimRange];
    if (sizes[1] === 2) return `i+${d0.min}, ${d1.min}:${d1.max + 1}`;
    if (sizes[0] === 2) return `${d0.min}:${d0.max + 1}, i+${d1.min}`;
    if (sizes[1] === 1) return `i+${d0.min}:i+${d0.min + 2}, ${d1.min}`;
    if (sizes[0] === 1) return `${d0.min}, i+${d1.min}:i+${d1.min + 2}`;
  }
  throw new SeriesError(
    `cannot form pairs with names like ${example} (${dims.length} indices taking ${sizes.join(' x ')} values): ` +
      'give series.str_subset explicitly, e.g. "i:i+2" or "i,0:2"',
  );
}

/** Selector for "all1by1": the i-th tuple of the full index grid (first index slowest). */
function all1by1Selector(dims: DimRange[]): Selector {
  const sizes = dims.map((d) => d.max - d.min + 1);
  const total = sizes.reduce((a, b) => a * b, 1);
  return (i) => {
    if (i < 0 || i >= total) return null;
    const values: number[][] = [];
    let rest = i;
    for (let d = dims.length - 1; d >= 0; d--) {
      values.unshift([dims[d]!.min + (rest % sizes[d]!)]);
      rest = Math.floor(rest / sizes[d]!);
    }
    return values;
  };
}

/** Turn series.str_subset into a selector; throws SeriesError naming the value. */
export function compileSubset(strSubset: string, dims: DimRange[], example: string): Selector {
  const s = strSubset.trim();
  if (s === 'all1by1') return all1by1Selector(dims);
  const text = s === 'pairs' ? pairsSubset(dims, example) : s;
  const parts = text.split(',');
  let fns: PartFn[];
  try {
    // Parse before counting parts, so that a typo is reported as such.
    fns = parts.map((part, d) => compilePart(part, dims[d] ?? { min: 0, max: 0 }));
  } catch (err) {
    if (err instanceof SeriesError) throw err;
    throw new SeriesError(`cannot parse series.str_subset "${strSubset}": ${(err as Error).message}; ${SUBSET_FORMS}`);
  }
  if (parts.length !== dims.length) {
    throw new SeriesError(
      `series.str_subset "${strSubset}" has ${parts.length} part(s) but the file names (e.g. ${example}) ` +
        `have ${dims.length} ind${dims.length === 1 ? 'ex' : 'ices'}; ${SUBSET_FORMS}`,
    );
  }
  const selector: Selector = (i) => fns.map((f) => f(i));
  if (JSON.stringify(selector(0)) === JSON.stringify(selector(1))) {
    throw new SeriesError(`series.str_subset "${strSubset}" does not depend on i; ${SUBSET_FORMS}`);
  }
  return selector;
}

/** All index tuples of an item, first index varying slowest (itertools.product order). */
export function product(values: number[][]): number[][] {
  let tuples: number[][] = [[]];
  for (const dimValues of values) {
    tuples = tuples.flatMap((t) => dimValues.map((v) => [...t, v]));
  }
  return tuples;
}
