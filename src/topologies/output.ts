/** Output directory and the `saving.how` modes shared by all topologies. */
import { accessSync, constants, existsSync, statfsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { cleanStaleTemps } from '../io/atomic.js';
import { ParamError } from '../params/schema.js';
import { defaultOutputDir } from '../series/result_names.js';
import type { SeriesParams } from '../series/types.js';

export type HowMode = 'complete' | 'recompute' | 'new_dir';

/** Below this much free space at the start, a job is refused (a result file or two would not fit). */
const MIN_FREE_BYTES = 1 << 20;

function outputError(dir: string, reason: string): Error {
  return Object.assign(new Error(`cannot write results to ${dir}: ${reason}`), { code: 'ERR_OUTPUT' });
}

/** What an errno code means for an output location, in words. */
function outputReason(code: string | undefined, where: string): string {
  switch (code) {
    case 'EROFS': return `read-only file system (${where})`;
    case 'EACCES':
    case 'EPERM': return `permission denied (${where} is not writable by this user)`;
    case 'ENOSPC':
    case 'EDQUOT': return `no space left on the device (${where})`;
    case 'ENOTDIR':
    case 'EEXIST': return `${where} is in the way (a file, not a directory)`;
    default: return `${where}: ${code ?? 'unusable'}`;
  }
}

/**
 * Checks, before anything is created, that results can be written to `dir` (existing or
 * to be made): every existing part of the path is a directory, the nearest existing one is
 * writable (not a read-only file system, permission granted) and has some free space.
 * Throws a one-line error (code ERR_OUTPUT) naming the path and the reason.
 */
export function checkOutputLocation(dir: string): void {
  const target = resolve(dir);
  let existing = target;
  for (;;) {
    let st;
    try {
      st = statSync(existing, { throwIfNoEntry: false });
    } catch (e) {
      // ENOTDIR: a file further up is in the way, found on the way up.
      if ((e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw outputError(target, outputReason((e as NodeJS.ErrnoException).code, existing));
    }
    if (st) {
      if (!st.isDirectory()) throw outputError(target, outputReason('ENOTDIR', existing));
      break;
    }
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw outputError(target, outputReason((e as NodeJS.ErrnoException).code, existing));
  }
  let free: number | undefined;
  try {
    const fs = statfsSync(existing);
    free = fs.bavail * fs.bsize;
  } catch {
    // No statfs here: the first write will tell.
  }
  if (free !== undefined && free < MIN_FREE_BYTES) {
    throw outputError(target, `no space left on the device (${Math.floor(free / 1024)} KiB free at ${existing})`);
  }
}

/**
 * Chooses and creates the output directory. `new_dir` takes `<dir>` if it does not
 * exist yet, else the first free `<dir>0`, `<dir>1`, ... (as Fluidimage).
 */
export async function prepareOutputDir(dir: string, how: HowMode): Promise<string> {
  let out = dir;
  if (how === 'new_dir' && existsSync(dir)) {
    for (let k = 0; ; k++) {
      if (!existsSync(`${dir}${k}`)) {
        out = `${dir}${k}`;
        break;
      }
    }
  }
  checkOutputLocation(out);
  try {
    await mkdir(out, { recursive: true });
  } catch (e) {
    throw outputError(out, outputReason((e as NodeJS.ErrnoException).code, out));
  }
  // Leftovers of killed runs: temp files of atomic writes never become results.
  await cleanStaleTemps(out);
  return out;
}

/** The series and saving parameters every series topology has (params/series.ts, the saving groups). */
interface SeriesSaving {
  series: { path: string | null };
  saving: { path: string | null; how: HowMode; postfix: string };
}

/** series.path, which the command line's PATH sets; a ParamError when missing. */
export function seriesPath(p: SeriesSaving): string {
  if (p.series.path === null || p.series.path === '') {
    throw new ParamError('series.path', 'Expected a directory, file or glob of images for series.path (the PATH argument)');
  }
  return p.series.path;
}

/** The series parameters for series/ (path required). */
export function seriesParams(p: SeriesSaving & { series: { str_subset: string; ind_start: number | string; ind_stop: number | null; ind_step: number } }): SeriesParams {
  const { str_subset, ind_start, ind_stop, ind_step } = p.series;
  // ind_start's check (params/series.ts) admits an integer or "first" only.
  return { path: seriesPath(p), str_subset, ind_start: ind_start as number | 'first', ind_stop, ind_step };
}

/** Where results go: saving.path, else `<input dir>.<postfix>` (absolute). */
export function seriesOutputPath(p: SeriesSaving): string {
  return resolve(p.saving.path ?? defaultOutputDir(seriesPath(p), p.saving.postfix));
}

/** The output directory (seriesOutputPath), prepared for saving.how. */
export function seriesOutputDir(p: SeriesSaving): Promise<string> {
  return prepareOutputDir(seriesOutputPath(p), p.saving.how);
}
