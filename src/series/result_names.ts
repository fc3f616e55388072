/** Names of the results of a series: one file per item, and the default output directory. */
import { statSync } from 'node:fs';
import path from 'node:path';

import { expandHome } from './discovery.js';
import { formatIndex, parseImageName, patternKey, type ParsedName } from './filenames.js';
import type { Item } from './types.js';

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
