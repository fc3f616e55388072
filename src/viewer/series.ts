/**
 * Which images the viewer may draw behind the vectors of a result. A result file names
 * its images (/couple paths), and a crafted one could name any image on disk; the viewer
 * draws only those of the result directory's own series:
 *   - inside the input directory recorded by a job that wrote this directory (its
 *     job directory's params.yaml: series.path, and a BOS reference given as a path),
 *     trusted only when the job's info.json names this directory as its output: a job
 *     directory copied from elsewhere says nothing about this one;
 *   - inside the directory the result directory is named after (`X` for `X.piv`), where
 *     `fluidimage view` looks for the images of moved results;
 *   - beside the result file.
 * Paths are compared as real paths: a symlink is judged by where it leads.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, sep } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { valueAt } from '../params/modules.js';

/** Real paths of the folders (anything below them) and single files images may come from. */
export interface SeriesPlaces {
  folders: string[];
  files: string[];
}

const real = (path: string): Promise<string | undefined> => realpath(path).catch(() => undefined);

/** The directory of a recorded series.path: itself, or the folder of an image file or a glob. */
async function seriesFolder(path: string): Promise<string | undefined> {
  const st = await stat(path).catch(() => undefined);
  return real(st?.isDirectory() ? path : dirname(path));
}

/** What one job directory recorded of its inputs, when it wrote into `root`. */
async function jobInputs(root: string, jobDir: string): Promise<SeriesPlaces> {
  const none: SeriesPlaces = { folders: [], files: [] };
  try {
    const info = JSON.parse(await readFile(join(jobDir, 'info.json'), 'utf8')) as { outputDir?: unknown };
    if (typeof info.outputDir !== 'string' || (await real(info.outputDir)) !== root) return none;
    const params: unknown = parseYaml(await readFile(join(jobDir, 'params.yaml'), 'utf8'));
    const series = valueAt(params, 'series.path');
    const reference = valueAt(params, 'reference');
    const folder = typeof series === 'string' && isAbsolute(series) ? await seriesFolder(series) : undefined;
    const file = typeof reference === 'string' && isAbsolute(reference) ? await real(reference) : undefined;
    return { folders: folder === undefined ? [] : [folder], files: file === undefined ? [] : [file] };
  } catch {
    // An unreadable or partial job directory (one being written) records nothing.
    return none;
  }
}

/** The places of the series of result directory `root` (a real path), beside-the-result excepted. */
export async function seriesPlaces(root: string): Promise<SeriesPlaces> {
  const jobs = (await readdir(root).catch(() => [])).filter((n) => n.startsWith('job_'));
  const recorded = await Promise.all(jobs.map((n) => jobInputs(root, join(root, n))));
  const named = await real(join(dirname(root), basename(root).replace(/\.piv\d*$/, '')));
  return {
    folders: [...new Set([...recorded.flatMap((r) => r.folders), ...(named === undefined ? [] : [named])])],
    files: [...new Set(recorded.flatMap((r) => r.files))],
  };
}

/** Whether `path` lies below `folder` (both real paths). */
export function isInside(path: string, folder: string): boolean {
  return path.startsWith(folder.endsWith(sep) ? folder : folder + sep);
}

/** Whether the image at real path `image` may be drawn for the result at real path `resultPath`. */
export function inSeries(image: string, resultPath: string, places: SeriesPlaces): boolean {
  return places.files.includes(image) || isInside(image, dirname(resultPath)) || places.folders.some((f) => isInside(image, f));
}
