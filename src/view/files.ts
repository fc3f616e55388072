/**
 * From a result file to a PNG: read the result, find and read its first image, render,
 * encode and write atomically.
 */
import { access, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import { readImage, type ImageData } from '../io/images.js';
import { readPivFile } from '../io/pivfile.js';
import type { PivResult } from '../results/piv_result.js';
import { renderFigure, type Figure, type FigureOptions } from './figure.js';

export interface ViewFileOptions extends FigureOptions {
  /** Draw the first image of the pair when it can be found (default true). */
  image?: boolean;
}

/**
 * Where the first image may be: the stored path, else (results moved with their images,
 * e.g. copied to another machine) beside the result directory, `<dir>.piv/../<dir>/<name>`,
 * or next to the result file.
 */
export function imageCandidates(resultPath: string, result: PivResult): string[] {
  const [stored] = result.paths;
  const [name] = result.names;
  const out: string[] = [];
  if (stored !== '') out.push(stored);
  const fileName = name !== '' ? name : stored !== '' ? basename(stored) : '';
  if (fileName !== '') {
    const resultDir = dirname(resultPath);
    if (stored !== '') out.push(join(resultDir, '..', basename(dirname(stored)), fileName));
    out.push(join(resultDir, '..', basename(resultDir).replace(/\.piv\d*$/, ''), fileName));
    out.push(join(resultDir, fileName));
  }
  return [...new Set(out)];
}

/** The first image of the pair, or undefined when no candidate exists or can be read. */
export async function findFirstImage(resultPath: string, result: PivResult): Promise<ImageData | undefined> {
  for (const candidate of imageCandidates(resultPath, result)) {
    const exists = await access(candidate).then(() => true, () => false);
    if (!exists) continue;
    try {
      // Frame 0 of a two-page TIFF is frame a, which is the first image too.
      return await readImage(candidate);
    } catch {
      // An unreadable image is not worth failing the figure: draw without it.
    }
  }
  return undefined;
}

/** Renders `resultPath` to the PNG `outPath`; resolves to what was drawn. */
export async function viewFile(resultPath: string, outPath: string, opts: ViewFileOptions = {}): Promise<Figure & { imageFound: boolean }> {
  const result = await readPivFile(resultPath);
  const image = opts.image === false ? undefined : await findFirstImage(resultPath, result);
  const figure = await renderFigure(result, image, { ...opts, title: opts.title ?? basename(resultPath) });
  const png = await figure.canvas.toPng();
  await writeAtomic(outPath, (tmp) => writeFile(tmp, png));
  return { ...figure, imageFound: image !== undefined };
}
