/**
 * Series of images: which files, which pairs (or n-tuples), which result names.
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
import { promises as fsp, statSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  compareNatural,
  formatImageName,
  formatIndex,
  parseImageName,
  patternKey,
  type NamePattern,
  type ParsedName,
} from './filenames.js';

/** Extensions (lower case, no dot) recognised as images. */
export const IMAGE_EXTENSIONS: readonly string[] = [
  'png', 'tif', 'tiff', 'bmp', 'jpg', 'jpeg', 'j2k', 'jp2', 'jpx', 'webp', 'gif', 'pgm', 'ppm', 'pnm', 'pbm',
];

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

const SUBSET_FORMS =
  'expected "pairs", "all1by1", or one comma-separated part per index of the file names, ' +
  'each an integer expression of i or START:STOP[:STEP] ' +
  '(e.g. "i:i+2", "i+1:i+3", "i:i+4:2", "i,0:2")';

// ---------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------

/** Where the images are: a directory, the names considered, and an optional example. */
export interface Source {
  dir: string;
  /** Image file names in `dir`, naturally sorted. */
  names: string[];
  /** Name given explicitly by the user (series.path was one file). */
  example?: string;
}

/** True for a name with an image extension (case-insensitive). */
export function isImageName(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && IMAGE_EXTENSIONS.includes(name.slice(dot + 1).toLowerCase());
}

/** True when the string holds glob wildcards. */
function hasGlobChars(s: string): boolean {
  return /[*?[]/.test(s);
}

/**
 * Regular expression for a shell glob of one path component: `*`, `?`, `[abc]`, `[a-z]`,
 * `[!x]`/`[^x]`. A leading dot must be matched explicitly, as in the shell.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let k = 0; k < glob.length; k++) {
    const c = glob[k]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', k + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(k + 1, close);
      const negate = body[0] === '!' || body[0] === '^';
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      k = close;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  const hiddenGuard = glob.startsWith('.') ? '' : '(?!\\.)';
  return new RegExp(`^${hiddenGuard}${re}$`);
}

/** Expand a leading `~` like Fluidimage's `os.path.expanduser`. */
function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

/** Stat that returns null instead of throwing for a missing path. */
async function statOrNull(p: string): Promise<Stats | null> {
  try {
    return await fsp.stat(p);
  } catch {
    return null;
  }
}

/** Non-hidden regular files (or links) of `dir` with an image extension, sorted. */
async function listImageNames(dir: string, keep: (name: string) => boolean = () => true): Promise<string[]> {
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && !e.name.startsWith('.'))
    .map((e) => e.name)
    .filter((name) => isImageName(name) && keep(name))
    .sort(compareNatural);
}

/**
 * Resolves series.path to the images it names: all images of a directory (hidden files and
 * other extensions ignored), one file (with the other images of its directory, among which
 * its series is chosen), or the images matching a glob in the last path component. Names
 * sorted naturally (by their indices).
 */
export async function resolveSource(rawPath: string): Promise<Source> {
  if (rawPath.trim() === '') {
    throw new SeriesError('series.path is empty: give a directory, an image file or a glob');
  }
  const p = expandHome(rawPath);
  const extList = IMAGE_EXTENSIONS.join(', ');
  const stats = await statOrNull(p);
  if (stats?.isDirectory()) {
    const names = await listImageNames(p);
    if (names.length === 0) throw new SeriesError(`no image files in ${p} (looked for extensions: ${extList})`);
    return { dir: p, names };
  }
  if (stats) {
    const example = path.basename(p);
    if (!isImageName(example)) {
      throw new SeriesError(`series.path ${p} is not an image file (known extensions: ${extList})`);
    }
    const dir = path.dirname(p);
    const names = await listImageNames(dir);
    if (!names.includes(example)) names.push(example);
    return { dir, names: names.sort(compareNatural), example };
  }
  const last = path.basename(p);
  if (!hasGlobChars(last)) throw new SeriesError(`series.path does not exist: ${p}`);
  const dir = path.dirname(p);
  const dirStats = await statOrNull(dir);
  if (!dirStats?.isDirectory()) {
    throw new SeriesError(`series.path does not exist: ${dir} (the directory of the glob ${p})`);
  }
  const re = globToRegExp(last);
  const names = await listImageNames(dir, (name) => re.test(name));
  if (names.length === 0) throw new SeriesError(`no image file matches ${p} (extensions: ${extList})`);
  return { dir, names };
}

// ---------------------------------------------------------------------------------------
// Index expressions of str_subset
// ---------------------------------------------------------------------------------------

/** An integer expression of the serie index i. */
type Expr = (i: number) => number;

/** Tokens of an index expression. */
function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const re = /\s*(\d+|\/\/|[-+*%()i])/y;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new Error(`unexpected "${text.slice(pos).trim()[0]}" in "${text.trim()}"`);
    tokens.push(m[1]!);
    pos = re.lastIndex;
  }
  return tokens;
}

/** Python floor division and modulo, so `//` and `%` match Fluidimage's evaluation. */
function floorDiv(a: number, b: number): number {
  if (b === 0) throw new SeriesError('division by zero in series.str_subset');
  return Math.floor(a / b);
}
function pyMod(a: number, b: number): number {
  if (b === 0) throw new SeriesError('modulo by zero in series.str_subset');
  return a - b * Math.floor(a / b);
}

/** Compile an integer expression of `i` (recursive descent, no eval). */
export function compileIndexExpression(text: string): Expr {
  const tokens = tokenize(text);
  let k = 0;
  const peek = (): string | undefined => tokens[k];
  const expect = (t: string): void => {
    if (tokens[k] !== t) throw new Error(`expected "${t}" in "${text.trim()}"`);
    k++;
  };
  const factor = (): Expr => {
    const t = tokens[k++];
    if (t === undefined) throw new Error(`incomplete expression "${text.trim()}"`);
    if (t === 'i') return (i) => i;
    if (/^\d+$/.test(t)) {
      const v = Number.parseInt(t, 10);
      return () => v;
    }
    if (t === '-' || t === '+') {
      const f = factor();
      return t === '-' ? (i) => -f(i) : f;
    }
    if (t === '(') {
      const e = sum();
      expect(')');
      return e;
    }
    throw new Error(`unexpected "${t}" in "${text.trim()}"`);
  };
  const product = (): Expr => {
    let left = factor();
    for (let op = peek(); op === '*' || op === '//' || op === '%'; op = peek()) {
      k++;
      const l = left;
      const r = factor();
      left = op === '*' ? (i) => l(i) * r(i) : op === '//' ? (i) => floorDiv(l(i), r(i)) : (i) => pyMod(l(i), r(i));
    }
    return left;
  };
  const sum = (): Expr => {
    let left = product();
    for (let op = peek(); op === '+' || op === '-'; op = peek()) {
      k++;
      const l = left;
      const r = product();
      left = op === '+' ? (i) => l(i) + r(i) : (i) => l(i) - r(i);
    }
    return left;
  };
  if (tokens.length === 0) throw new Error('empty expression');
  const expr = sum();
  if (k < tokens.length) throw new Error(`unexpected "${tokens[k]}" in "${text.trim()}"`);
  return expr;
}

// ---------------------------------------------------------------------------------------
// Selection of the images of each item
// ---------------------------------------------------------------------------------------

/** Smallest and largest value of each index over the files of the series. */
interface DimRange {
  min: number;
  max: number;
}

/** Index values per dimension for serie index i; null once past the end (all1by1). */
type Selector = (i: number) => number[][] | null;

/** One part of str_subset: the values of one index as a function of i. */
type PartFn = (i: number) => number[];

/** Smallest / largest of a non-empty array (no spread: series may hold 10^5+ files). */
function minOf(values: readonly number[]): number {
  return values.reduce((a, b) => (b < a ? b : a));
}
function maxOf(values: readonly number[]): number {
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
function compileSubset(strSubset: string, dims: DimRange[], example: string): Selector {
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
function product(values: number[][]): number[][] {
  let tuples: number[][] = [[]];
  for (const dimValues of values) {
    tuples = tuples.flatMap((t) => dimValues.map((v) => [...t, v]));
  }
  return tuples;
}

// ---------------------------------------------------------------------------------------
// Series
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Names of results and of the output directory
// ---------------------------------------------------------------------------------------

/** The values taken by index `dim` over the parsed names, sorted and unique. */
function valuesOfDim(parsed: ParsedName[], dim: number): number[] {
  return [...new Set(parsed.map((p) => p.indices[dim]!.value))].sort((a, b) => a - b);
}

/**
 * Result file name of an item, as Fluidimage's `get_name_piv` with the project's contract:
 * `<prefix>_<indices><ext>` where each index of the file names is written once when it is
 * the same for all images, as `first-last` for digits (`Karman_01`+`Karman_02` ->
 * `piv_01-02.h5`) and as the concatenated letters for letters (`c060a`+`c060b` ->
 * `piv_060ab.h5`); indices are joined by the separators of the file names.
 *
 * Differences with Fluidimage 0.5: Fluidimage writes letter ranges `a-b`
 * (`piv_060a-b.h5`), writes `stop-1` instead of the last index for stepped ranges, and
 * drops the separator between the first two indices. Names without indices fall back to
 * the stems joined by `-` (as Fluidimage for a couple without serie).
 */
export function resultName(item: Item, prefix: string, ext = '.h5'): string {
  const suffix = ext === '' || ext.startsWith('.') ? ext : `.${ext}`;
  const parsed = item.names.map(parseImageName);
  const first = parsed[0];
  const consistent =
    first !== undefined &&
    first.indices.length > 0 &&
    parsed.every((p) => patternKey(p.pattern) === patternKey(first.pattern));
  if (!consistent) {
    const stems = item.names.map((n) => n.replace(/\.[^.]*$/, ''));
    return `${prefix}_${stems.join('-')}${suffix}`;
  }
  const pattern = first.pattern;
  let text = '';
  pattern.kinds.forEach((kind, dim) => {
    const values = valuesOfDim(parsed, dim);
    const written = values.map((v) => formatIndex(pattern, dim, v));
    if (values.length === 1) text += written[0];
    else if (kind === 'alpha') text += written.join('');
    else text += `${written[0]}-${written[written.length - 1]}`;
    if (dim < pattern.kinds.length - 1) text += pattern.seps[dim];
  });
  return `${prefix}_${text}${suffix}`;
}

/**
 * Default output directory, as Fluidimage: `<directory of the images>.<postfix>`
 * (`.../Karman/Images` -> `.../Karman/Images.piv`). For a file or a glob, the directory
 * holding it. Absolute, so that `.` or a trailing `/` give a sensible name.
 */
export function defaultOutputDir(seriesPath: string, postfix: string): string {
  const p = path.resolve(expandHome(seriesPath));
  let isDir = false;
  try {
    isDir = statSync(p).isDirectory();
  } catch {
    isDir = false;
  }
  const dir = isDir ? p : path.dirname(p);
  return `${dir}.${postfix}`;
}
