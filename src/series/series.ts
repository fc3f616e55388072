/**
 * Series of images: which files, which pairs (or n-tuples), which result names. This module
 * builds the items; the files come from discovery.ts, str_subset is compiled by subset.ts
 * (its integer expressions by index_expression.ts), result names are made by result_names.ts.
 *
 * Semantics follow Fluidimage (fluiddyn 0.6 `SeriesOfArrays`, fluidimage `get_name_piv`):
 *
 * - `str_subset` maps a serie index `i` to the images of one item: one comma-separated part
 *   per index of the file names, each `EXPR` (one value) or `START:STOP[:STEP]` (a Python
 *   range: STOP exclusive; empty START/STOP = first/last+1 value found in the files), with
 *   integer expressions of `i` (`+ - * // %`, parentheses).
 * - `"pairs"`: one index -> `i+m:i+m+2` where m is the smallest index found, so `i` counts
 *   from 0 (Karman_01..04 -> i=0:(01,02), 1:(02,03), 2:(03,04)). Two indices whose second
 *   takes exactly two values (a/b frames) -> `i+m, a:b+1` ((060a,060b), (061a,061b)); else
 *   when the first takes exactly two values -> `a:b+1, i+m`. Extension: when one index takes
 *   a single value, consecutive pairs run along the other (`im_0001_1`, `im_0002_1`, ...).
 * - `"all1by1"`: each image alone, `i` = its rank in the full index grid.
 * - `ind_start="first"`: the smallest i >= 0 whose images all exist. A number is used as is
 *   (so with "pairs" it counts from the first image, with "i:i+2" it is a file index).
 * - `ind_stop`: exclusive, like Python's range; `null` = up to the last complete item.
 *   `ind_step` strides over i.
 *
 * Deviations, on purpose:
 * - Fluidimage stops the series at the first incomplete item, so one missing image silently
 *   drops everything after it. Here the series runs to the last complete item (never past
 *   an explicit `ind_stop`); an item with some images missing is still listed, with
 *   `missing` naming them, so the caller reports that one item as failed and goes on. Items
 *   whose images are all missing (a gap in the numbering) are skipped.
 * - A directory holding several kinds of names uses the most numerous series (Fluidimage
 *   takes whatever file sorts first); a single file picks its own series in its directory
 *   (as Fluidimage); a glob restricts the series to the files it matches (Fluidimage only
 *   uses the glob to find an example name).
 * - Result names: see {@link resultName}.
 */
import path from 'node:path';

import { resolveSource, type Source } from './discovery.js';
import { formatImageName, parseImageName, patternKey, type NamePattern, type ParsedName } from './filenames.js';
import { compileSubset, maxOf, minOf, product, SUBSET_FORMS, type DimRange, type Selector } from './subset.js';
import { SeriesError, type Item, type SeriesParams } from './types.js';

export { SeriesError, type Item, type SeriesParams } from './types.js';
export { defaultOutputDir, resultName } from './result_names.js';

/** The files of one series, indexed by their index values. */
class FileTable {
  readonly pattern: NamePattern;
  readonly dims: DimRange[];
  private readonly byKey = new Map<string, string>();

  constructor(members: ParsedName[]) {
    this.pattern = members[0]!.pattern;
    this.dims = this.pattern.kinds.map((_, d) => {
      const values = members.map((m) => m.indices[d]!.value);
      return { min: minOf(values), max: maxOf(values) };
    });
    for (const m of members) {
      const key = m.indices.map((x) => x.value).join(',');
      if (!this.byKey.has(key)) this.byKey.set(key, m.name);
    }
  }

  /** Existing file name for these index values, or undefined. */
  find(values: number[]): string | undefined {
    return this.byKey.get(values.join(','));
  }

  /** Name of the file for these values: the real one, else formatted from the pattern. */
  nameOf(values: number[]): string {
    return this.find(values) ?? formatImageName(this.pattern, values);
  }
}

/** Pick the members of the series among the candidate names. */
function selectMembers(source: Source): ParsedName[] {
  const parsed = source.names.map(parseImageName);
  let key: string;
  if (source.example !== undefined) {
    key = patternKey(parseImageName(source.example).pattern);
  } else {
    // Most numerous kind of names; ties go to the one sorting first.
    const counts = new Map<string, number>();
    for (const p of parsed) {
      const k = patternKey(p.pattern);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    key = [...counts.entries()].reduce((best, cur) => (cur[1] > best[1] ? cur : best))[0];
  }
  const members = parsed.filter((p) => patternKey(p.pattern) === key);
  const example = members[0]!.name;
  if (members[0]!.indices.length === 0) {
    throw new SeriesError(
      `cannot form a series from ${example} in ${source.dir}: its name has no index ` +
        '(expected names like im0001.png, Karman_01.bmp or c060a.png)',
    );
  }
  return members;
}

/** Check the numeric parameters; throws SeriesError naming the bad one. */
function checkIndexParams(p: SeriesParams): void {
  if (!Number.isInteger(p.ind_step) || p.ind_step < 1) {
    throw new SeriesError(`series.ind_step must be an integer >= 1, got ${String(p.ind_step)}`);
  }
  if (p.ind_start !== 'first' && !Number.isInteger(p.ind_start)) {
    throw new SeriesError(`series.ind_start must be "first" or an integer, got ${String(p.ind_start)}`);
  }
  if (p.ind_stop !== null && !Number.isInteger(p.ind_stop)) {
    throw new SeriesError(`series.ind_stop must be null or an integer, got ${String(p.ind_stop)}`);
  }
  if (p.ind_stop !== null && typeof p.ind_start === 'number' && p.ind_stop <= p.ind_start) {
    throw new SeriesError(
      `series.ind_stop=${p.ind_stop} must be greater than series.ind_start=${p.ind_start} (ind_stop is exclusive)`,
    );
  }
}

/** Walks serie indices, knowing which items are complete and when the files end. */
class Scanner {
  /** Upper bound on the number of indices scanned, against non-increasing expressions. */
  private readonly limit: number;

  constructor(
    private readonly table: FileTable,
    private readonly select: Selector,
    private readonly strSubset: string,
  ) {
    const maxAbs = maxOf(table.dims.map((d) => Math.max(Math.abs(d.min), Math.abs(d.max))));
    this.limit = 100_000 + 2 * (maxAbs + 1);
  }

  /** Index tuples of item i, or null when i is past the end of the files. */
  tuples(i: number): number[][] | null {
    const values = this.select(i);
    if (values === null) return null;
    if (values.some((v) => v.length === 0)) {
      throw new SeriesError(`series.str_subset "${this.strSubset}" selects no image for i=${i}; ${SUBSET_FORMS}`);
    }
    // Past the end once some index asks only for values above the largest file index.
    if (values.some((v, d) => minOf(v) > this.table.dims[d]!.max)) return null;
    return product(values);
  }

  /** Whether all images of item i exist. */
  complete(i: number): boolean {
    const tuples = this.tuples(i);
    return tuples !== null && tuples.every((t) => this.table.find(t) !== undefined);
  }

  /** Whether item i asks, for some index, only for values below the smallest file index. */
  private before(i: number): boolean {
    const values = this.select(i);
    return values !== null && values.some((v, d) => v.length > 0 && maxOf(v) < this.table.dims[d]!.min);
  }

  /**
   * Smallest i >= from that is not {@link before} the files, found by galloping then
   * bisecting (expressions increase with i), so that "first" with "i:i+2" and images
   * numbered from 1000000 does not walk a million empty indices.
   */
  private skipBefore(from: number): number {
    if (!this.before(from)) return from;
    let lo = from; // before
    let step = 1;
    while (this.before(from + step) && step <= this.limit) {
      lo = from + step;
      step *= 2;
    }
    let hi = from + step; // not before
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (this.before(mid)) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  /** First complete item at or after `from`, or null. */
  firstComplete(from0: number): number | null {
    const from = this.skipBefore(from0);
    for (let i = from; i - from <= this.limit; i++) {
      if (this.tuples(i) === null) return null;
      if (this.complete(i)) return i;
    }
    throw this.runawayError();
  }

  /** Last complete item at or after `from`, or null. */
  lastComplete(from: number): number | null {
    let last: number | null = null;
    for (let i = from; i - from <= this.limit; i++) {
      if (this.tuples(i) === null) return last;
      if (this.complete(i)) last = i;
    }
    throw this.runawayError();
  }

  private runawayError(): SeriesError {
    return new SeriesError(
      `series.str_subset "${this.strSubset}" never goes past the last image within ${this.limit} ` +
        'indices: its expressions should increase with i',
    );
  }
}

/** Human description of item i (its image names), for messages. */
function describeItem(table: FileTable, scanner: Scanner, i: number): string {
  const tuples = scanner.tuples(i) ?? [];
  return tuples.map((t) => table.nameOf(t)).join(', ');
}

/**
 * The items (pairs, or n-tuples) of a series, following Fluidimage's SeriesOfArrays (see
 * the module comment). Items with missing images are listed with `missing` set; throws
 * SeriesError for a bad path, no images, a bad str_subset or ind_* out of range.
 */
export async function buildSeries(p: SeriesParams): Promise<Item[]> {
  checkIndexParams(p);
  const source = await resolveSource(p.path);
  const members = selectMembers(source);
  const table = new FileTable(members);
  const example = members[0]!.name;
  const select = compileSubset(p.str_subset, table.dims, example);
  const scanner = new Scanner(table, select, p.str_subset);
  const where = `${members.length} image(s) like ${example} in ${source.dir}`;

  const overallFirst = scanner.firstComplete(0);
  const start = p.ind_start === 'first' ? overallFirst : p.ind_start;
  if (start === null) {
    throw new SeriesError(
      `no complete item for series.str_subset "${p.str_subset}" among ${where} ` +
        `(item i=0 would be: ${describeItem(table, scanner, 0)})`,
    );
  }
  const last = scanner.lastComplete(start);
  if (last === null) {
    const overallLast = overallFirst === null ? null : scanner.lastComplete(overallFirst);
    const span =
      overallFirst === null || overallLast === null
        ? 'no item is complete'
        : `complete items have i from ${overallFirst} to ${overallLast} (last: ${describeItem(table, scanner, overallLast)})`;
    throw new SeriesError(
      `series.ind_start=${start} is beyond the last item: with str_subset "${p.str_subset}" and ${where}, ${span}`,
    );
  }
  const stop = p.ind_stop === null ? last + 1 : Math.min(p.ind_stop, last + 1);
  const dir = path.resolve(source.dir);
  const items: Item[] = [];
  for (let i = start; i < stop; i += p.ind_step) {
    const tuples = scanner.tuples(i) ?? [];
    const names = tuples.map((t) => table.nameOf(t));
    const missing = tuples.filter((t) => table.find(t) === undefined).map((t) => table.nameOf(t));
    if (missing.length === names.length) continue; // a gap in the numbering, not a broken item
    items.push({ index: i, paths: names.map((n) => path.join(dir, n)), names, missing });
  }
  if (items.length === 0) {
    throw new SeriesError(
      `no images selected by series.ind_start=${start}, ind_stop=${String(p.ind_stop)}, ind_step=${p.ind_step} ` +
        `with str_subset "${p.str_subset}" among ${where}`,
    );
  }
  return items;
}
