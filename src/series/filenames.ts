/**
 * Image file names as Fluidimage reads them: `<base>[<sep>]<index>[<sep><index>...].<ext>`.
 *
 * Rules (from fluiddyn's `SerieOfArraysFromFiles`, fluiddyn 0.6.2):
 * - the base is everything before the first digit; when it ends with a non-letter, that
 *   character is the base/index separator (`Karman_01` -> base `Karman`, sep `_`);
 * - then runs of digits or of ASCII letters are indices, each optionally followed by a
 *   separator made of non-alphanumeric characters (`c060a` -> `060`, `a`;
 *   `im_0001_1` -> `0001` `_` `1`);
 * - a letter index counts a=0, b=1, ... z=25; longer runs are base-26 numbers written with
 *   the digits a..z and padded with `a` to their width (`ab` = 1, `ba` = 26); upper-case
 *   indices keep their case when formatted;
 * - digit indices are zero-padded to the width seen in the example name.
 *
 * Deviations, on purpose: the extension is what follows the LAST dot (Fluidimage takes
 * everything after the first dot, which breaks `frame.0001.tif`), and a separator may be
 * several non-alphanumeric characters.
 */

/** Kind of one index in a file name. */
export type IndexKind = 'digit' | 'alpha';

/** One index as written in a file name. */
export interface NameIndex {
  kind: IndexKind;
  /** Numeric value (letters: a=0, b=1, ...). */
  value: number;
  /** Number of characters used to write it (zero/`a` padding width). */
  width: number;
  /** Letters written in upper case (always false for digits). */
  upper: boolean;
}

/** How the names of one series are built; enough to format any member's name. */
export interface NamePattern {
  base: string;
  /** Separator between the base and the first index ('' when none). */
  baseSep: string;
  kinds: IndexKind[];
  widths: number[];
  upper: boolean[];
  /** Separator written after each index ('' when none); same length as `kinds`. */
  seps: string[];
  /** Extension without the dot ('' when none). */
  ext: string;
}

/** A parsed file name. */
export interface ParsedName {
  name: string;
  pattern: NamePattern;
  indices: NameIndex[];
}

const DIGIT = /[0-9]/;
const LETTER = /[A-Za-z]/;
const ALPHABET_SIZE = 26;
const CODE_A = 'a'.charCodeAt(0);

/** Split `name` into stem and extension at the last dot (a leading dot is not one). */
function splitExtension(name: string): [string, string] {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return [name, ''];
  return [name.slice(0, dot), name.slice(dot + 1)];
}

/** Length of the run at `start` whose characters all satisfy `re`. */
function runLength(text: string, start: number, re: RegExp): number {
  let end = start;
  while (end < text.length && re.test(text[end]!)) end++;
  return end - start;
}

/** Value of a run of letters: base 26 with a=0 (case-insensitive). */
export function lettersToNumber(letters: string): number {
  let value = 0;
  for (const c of letters.toLowerCase()) value = value * ALPHABET_SIZE + (c.charCodeAt(0) - CODE_A);
  return value;
}

/** Letters for `value` (base 26, a=0), padded with `a` to `width`. */
export function numberToLetters(value: number, width = 1, upper = false): string {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`a letter index must be a non-negative integer, got ${value}`);
  }
  let text = '';
  let rest = value;
  do {
    text = String.fromCharCode(CODE_A + (rest % ALPHABET_SIZE)) + text;
    rest = Math.floor(rest / ALPHABET_SIZE);
  } while (rest > 0);
  text = text.padStart(width, 'a');
  return upper ? text.toUpperCase() : text;
}

/** Write one index value the way the pattern writes index number `dim`. */
export function formatIndex(pattern: NamePattern, dim: number, value: number): string {
  const kind = pattern.kinds[dim];
  if (kind === undefined) throw new RangeError(`the pattern has no index ${dim}`);
  if (kind === 'alpha') return numberToLetters(value, pattern.widths[dim], pattern.upper[dim]);
  // Negative values only arise for out-of-range requests; keep the sign readable.
  const digits = String(Math.abs(value)).padStart(pattern.widths[dim] ?? 1, '0');
  return value < 0 ? `-${digits}` : digits;
}

/** Parse a file name (no directory part) into its pattern and index values. */
export function parseImageName(name: string): ParsedName {
  const [stem, ext] = splitExtension(name);
  let pos = 0;
  while (pos < stem.length && !DIGIT.test(stem[pos]!)) pos++;
  let base = stem.slice(0, pos);
  let baseSep = '';
  // Fluidimage: a base ending with a non-letter gives that character as separator.
  if (pos < stem.length && base.length > 0 && !LETTER.test(base[base.length - 1]!)) {
    baseSep = base[base.length - 1]!;
    base = base.slice(0, -1);
  }
  const pattern: NamePattern = { base, baseSep, kinds: [], widths: [], upper: [], seps: [], ext };
  const indices: NameIndex[] = [];
  while (pos < stem.length) {
    const isDigit = DIGIT.test(stem[pos]!);
    const len = runLength(stem, pos, isDigit ? DIGIT : LETTER);
    const text = stem.slice(pos, pos + len);
    pos += len;
    const sepLen = runLength(stem, pos, /[^A-Za-z0-9]/);
    const index: NameIndex = isDigit
      ? { kind: 'digit', value: Number.parseInt(text, 10), width: len, upper: false }
      : { kind: 'alpha', value: lettersToNumber(text), width: len, upper: text[0] !== text[0]!.toLowerCase() };
    indices.push(index);
    pattern.kinds.push(index.kind);
    pattern.widths.push(index.width);
    pattern.upper.push(index.upper);
    pattern.seps.push(stem.slice(pos, pos + sepLen));
    pos += sepLen;
  }
  return { name, pattern, indices };
}

/** Build the file name of the member of `pattern` with these index values. */
export function formatImageName(pattern: NamePattern, values: readonly number[]): string {
  if (values.length !== pattern.kinds.length) {
    throw new RangeError(`expected ${pattern.kinds.length} index values, got ${values.length}`);
  }
  let stem = pattern.base + pattern.baseSep;
  values.forEach((value, dim) => {
    stem += formatIndex(pattern, dim, value) + pattern.seps[dim]!;
  });
  return pattern.ext === '' ? stem : `${stem}.${pattern.ext}`;
}

/**
 * Key identifying the series a name belongs to: same base, separators, index kinds and
 * extension (case-insensitive). Widths and letter case are not part of it, as with
 * Fluidimage's glob (`im9.png` and `im10.png` are one series).
 */
export function patternKey(pattern: NamePattern): string {
  return JSON.stringify([pattern.base, pattern.baseSep, pattern.kinds, pattern.seps, pattern.ext.toLowerCase()]);
}

/**
 * Compare two names "naturally": runs of digits by value, the rest by code unit, so that
 * `im9.png` < `im10.png` and `c060a` < `c060b` < `c061a`.
 */
export function compareNatural(a: string, b: string): number {
  const ta = a.match(/[0-9]+|[^0-9]+/g) ?? [];
  const tb = b.match(/[0-9]+|[^0-9]+/g) ?? [];
  for (let k = 0; k < Math.min(ta.length, tb.length); k++) {
    const x = ta[k]!;
    const y = tb[k]!;
    if (x === y) continue;
    const xIsNum = DIGIT.test(x[0]!);
    const yIsNum = DIGIT.test(y[0]!);
    if (xIsNum && yIsNum) {
      const diff = Number(x) - Number(y);
      if (diff !== 0) return diff;
      if (x.length !== y.length) return x.length - y.length;
      continue;
    }
    return x < y ? -1 : 1;
  }
  if (ta.length !== tb.length) return ta.length - tb.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
