/**
 * The mean image of a series: every image is read (in parallel) and added to partial
 * sums; one set of partial sums per computation in flight, merged at the end (with
 * integer images the result does not depend on the split). Written once at the end:
 * `mean.h5` (float32 mean/min/max/std, the sources, the parameters) and the images of
 * `saving.images` in the input bit depth.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import { createGroup, readNumberAttr, withH5File, writeInt64Attr, writeParamTree, writeStringAttr, writeStrings, writeProgramAttrs } from '../io/h5.js';
import { imageInfo, readImage, type ImageData, type ImageInfo } from '../io/images.js';
import type { ImageStatistic } from '../params/mean_image.js';
import { ParamError } from '../params/schema.js';
import { buildSeries, defaultOutputDir, type SeriesParams } from '../series/series.js';
import type { Job } from '../executors/types.js';
import type { ParamTree } from '../works/piv/types.js';
import { ImageSums, type ImageStats, type StatsOptions } from '../works/mean_image.js';
import { prepareOutputDir, type HowMode } from './output.js';
import { writeImageAs } from './preproc.js';

export const MEAN_IMAGE_H5 = 'mean.h5';

/** Geometry every image must share: that of the first image whose header reads. */
export type Reference = Pick<ImageInfo, 'width' | 'height' | 'bitDepth'>;

export interface MeanImagePlan {
  job: Job<string, ImageData, void>;
  outputDir: string;
  total: number;
  /** True when `how: complete` found the results (nothing to compute). */
  upToDate: boolean;
  /** Paths of the files written by `finish`. */
  outputs: string[];
  /** Merges the partial sums and writes the results; returns the statistics. */
  finish(failed: string[]): Promise<ImageStats>;
  /** The partial sums of this process (rank 0 adds the other ranks' into the first). */
  partials: ImageSums[];
  used: string[];
  geometry(): Reference | undefined;
}

/** Every existing image selected by the series, once, in series order. */
async function seriesImages(series: SeriesParams): Promise<string[]> {
  const items = await buildSeries(series);
  const seen = new Set<string>();
  for (const it of items) {
    it.paths.forEach((p, k) => {
      if (!it.missing.includes(it.names[k]!)) seen.add(p);
    });
  }
  return [...seen];
}

async function firstReadableHeader(paths: readonly string[]): Promise<Reference | undefined> {
  for (const p of paths) {
    try {
      return await imageInfo(p);
    } catch {
      // That image's item reports the error; try the next one.
    }
  }
  return undefined;
}

/** Whether a previous run left complete results: every file there and no failed image. */
async function resultsComplete(h5: string, images: readonly string[]): Promise<boolean> {
  if (!existsSync(h5) || images.some((p) => !existsSync(p))) return false;
  try {
    return await withH5File(h5, 'r', (f) => readNumberAttr(f, 'nb_failed') === 0);
  } catch {
    return false;
  }
}

function float32(a: Float64Array | Float32Array): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

export async function planMeanImage(params: ParamTree): Promise<MeanImagePlan> {
  const series = params.series as ParamTree;
  const saving = params.saving as ParamTree;
  const stats = params.statistics as ParamTree;
  if (series.path === null || series.path === '') {
    throw new ParamError('series.path', 'Expected a directory, file or glob of images for series.path (the PATH argument)');
  }
  const wanted = saving.images as ImageStatistic[];
  const options: StatsOptions = { min: stats.min === true, max: stats.max === true, std: stats.std === true };
  for (const s of wanted) {
    if (s !== 'mean' && !options[s]) {
      throw new ParamError('saving.images', `saving.images asks for the ${s} image but statistics.${s} is false`);
    }
  }
  const paths = await seriesImages(series as unknown as SeriesParams);
  const outDir = (saving.path as string | null) ?? defaultOutputDir(series.path as string, saving.postfix as string);
  const outputDir = await prepareOutputDir(resolve(outDir), saving.how as HowMode);
  const ref = await firstReadableHeader(paths);
  const inputExt = extname(paths[0]!).toLowerCase();
  const ext = ['.png', '.tif', '.tiff', '.bmp'].includes(inputExt) && !(inputExt === '.bmp' && ref?.bitDepth === 16) ? inputExt : '.png';
  // Float images have no integer bit depth: their statistics are in the HDF5 file only.
  const imagePaths = ref?.bitDepth === 32 ? [] : wanted.map((s) => join(outputDir, `${s}${ext}`));
  const h5 = join(outputDir, MEAN_IMAGE_H5);
  const upToDate = saving.how === 'complete' && (await resultsComplete(h5, imagePaths));

  const acc = accumulator(options, ref);
  const { partials, used } = acc;
  const job = acc.job(upToDate ? [] : paths);

  const finish = async (failed: string[]): Promise<ImageStats> => {
    const total = partials[0];
    const geometry = acc.geometry();
    if (total === undefined || geometry === undefined) throw Object.assign(new Error('No readable image in the series: nothing written'), { code: 'ERR_INPUT' });
    for (const p of partials.slice(1)) total.merge(p);
    const r = total.result();
    const { width, height, bitDepth } = geometry;
    await writeAtomic(h5, (tmp) => withH5File(tmp, 'w', (f) => {
      writeProgramAttrs(f, 'MeanImage');
      writeInt64Attr(f, 'nb_images', r.count);
      writeInt64Attr(f, 'nb_failed', failed.length);
      writeInt64Attr(f, 'bit_depth_input', bitDepth);
      const datasets: [string, Float64Array | Float32Array | undefined][] = [['mean', r.mean], ['min', r.min], ['max', r.max], ['std', r.std]];
      for (const [name, data] of datasets) {
        if (data) f.create_dataset({ name, data: float32(data), shape: [height, width], dtype: '<f' });
      }
      const sources = createGroup(f, 'sources');
      writeStringAttr(sources, 'directory', dirname(paths[0]!));
      writeStrings(sources, 'names', [...used].sort());
      if (failed.length > 0) writeStrings(sources, 'failed', failed);
      writeParamTree(f, 'params', params);
    }));
    await Promise.all(imagePaths.map((p) => {
      const stat = basename(p, ext) as ImageStatistic;
      const data = stat === 'mean' ? r.mean : r[stat]!;
      return writeImageAs(p, width, height, data, bitDepth);
    }));
    return r;
  };
  return { job, outputDir, total: paths.length, upToDate, outputs: [h5, ...imagePaths], finish, partials, used, geometry: acc.geometry };
}

/**
 * The reading and summing steps: one set of partial sums per computation in flight
 * (`partials`), the names of the images added (`used`), the series' geometry (from the
 * first image unless given).
 */
export function accumulator(options: StatsOptions, ref?: Reference) {
  const partials: ImageSums[] = [];
  const free: ImageSums[] = [];
  const used: string[] = [];
  let geometry: Reference | undefined = ref;
  const job = (items: string[]): Job<string, ImageData, void> => ({
    items,
    name: (p) => basename(p),
    read: (p) => readImage(p),
    compute: async (im, p) => {
      geometry ??= { width: im.width, height: im.height, bitDepth: im.bitDepth };
      if (im.width !== geometry.width || im.height !== geometry.height) {
        throw new Error(`size ${im.width}x${im.height} differs from the series' ${geometry.width}x${geometry.height}`);
      }
      let sums = free.pop();
      if (sums === undefined) {
        sums = new ImageSums(im.width * im.height, options);
        partials.push(sums);
      }
      try {
        sums.add(im.data);
        used.push(basename(p));
      } finally {
        free.push(sums);
      }
    },
    write: async () => {},
  });
  return { partials, used, job, geometry: () => geometry };
}

/** The statistics options of a parameter tree. */
export function statsOptions(params: ParamTree): StatsOptions {
  const stats = params.statistics as ParamTree;
  return { min: stats.min === true, max: stats.max === true, std: stats.std === true };
}
