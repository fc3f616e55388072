/**
 * Which image files series.path names: a directory, one file or a glob, with the shell's
 * rules for globs and `~`.
 */
import { promises as fsp, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { compareNatural } from './filenames.js';
import { SeriesError } from './types.js';

/** Extensions (lower case, no dot) recognised as images. */
const IMAGE_EXTENSIONS: readonly string[] = [
  'png', 'tif', 'tiff', 'bmp', 'jpg', 'jpeg', 'j2k', 'jp2', 'jpx', 'webp', 'gif', 'pgm', 'ppm', 'pnm', 'pbm',
];

/** Where the images are: a directory, the names considered, and an optional example. */
export interface Source {
  dir: string;
  /** Image file names in `dir`, naturally sorted. */
  names: string[];
  /** Name given explicitly by the user (series.path was one file). */
  example?: string;
}

/** True for a name with an image extension (case-insensitive). */
function isImageName(name: string): boolean {
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
export function expandHome(p: string): string {
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
