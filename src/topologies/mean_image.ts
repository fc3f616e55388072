/**
 * The mean image of a series: every image is read (in parallel) and added to partial
 * sums; one set of partial sums per computation in flight, merged at the end (with
 * integer images the result does not depend on the split). Written once at the end:
 * `mean.h5` (float32 mean/min/max/std, the sources, the parameters) and the images of
 * `saving.images` in the input bit depth.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import { createGroup, readNumberAttr, withH5File, writeInt64Attr, writeParamTree, writeStringAttr, writeStrings, writeProgramAttrs } from '../io/h5.js';
import { imageInfo, readImage, type ImageData, type ImageInfo } from '../io/images.js';
import type { ImageStatistic } from '../params/mean_image.js';
import { ParamError, typedTree } from '../params/schema.js';
import { buildSeries, type SeriesParams } from '../series/series.js';
import type { Job } from '../executors/types.js';
import type { ParamTree } from '../params/tree.js';
import { meanImageSchema } from '../params/mean_image.js';
import type { PartialArray, ReducePlan, ReduceTopologySpec, Reduction } from './spec.js';
import { ImageSums, type StatsOptions } from '../works/mean_image.js';
import { seriesOutputDir, seriesParams } from './output.js';
import { writeImageAs } from './preproc.js';

const MEAN_IMAGE_H5 = 'mean.h5';

/** Geometry every image must share: that of the first image whose header reads. */
export type Reference = Pick<ImageInfo, 'width' | 'height' | 'bitDepth'>;

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

/**
 * The sums of one process (its lanes merged) as the engine reduces them over ranks, and on
 * rank 0 (or the only process) the total of every rank once combined.
 */
class MeanImageReduction implements Reduction<string, ImageData> {
  readonly rounds = 1;
  private readonly acc: ReturnType<typeof accumulator>;
  total?: ImageSums;

  constructor(private readonly options: StatsOptions, private readonly geometry: Reference) {
    this.acc = accumulator(options, geometry);
  }

  job(_round: number, items: string[]): Job<string, ImageData, void> {
    return this.acc.job(items);
  }

  partials(): Record<string, PartialArray> {
    const mine = new ImageSums(this.geometry.width * this.geometry.height, this.options);
    for (const p of this.acc.partials) mine.merge(p);
    return {
      sum: { data: mine.sum, op: 'sum' },
      count: { data: Float64Array.of(mine.count), op: 'sum' },
      ...(mine.sumSquares ? { squares: { data: mine.sumSquares, op: 'sum' as const } } : {}),
      ...(mine.min ? { min: { data: mine.min, op: 'min' as const } } : {}),
      ...(mine.max ? { max: { data: mine.max, op: 'max' as const } } : {}),
    };
  }

  async combine(_round: number, totals: Record<string, Float32Array | Float64Array>): Promise<null> {
    const total = new ImageSums(this.geometry.width * this.geometry.height, this.options);
    total.sum.set(totals.sum!);
    total.sumSquares?.set(totals.squares!);
    total.min?.set(totals.min!);
    total.max?.set(totals.max!);
    total.count = totals.count![0]!;
    this.total = total;
    return null;
  }

  receive(): void {}
}

async function planMeanImage(params: ParamTree): Promise<ReducePlan<string, ImageData>> {
  const p = typedTree(meanImageSchema, params);
  const wanted = p.saving.images as ImageStatistic[];
  const options = statsOptions(params);
  for (const s of wanted) {
    if (s !== 'mean' && !options[s]) {
      throw new ParamError('saving.images', `saving.images asks for the ${s} image but statistics.${s} is false`);
    }
  }
  const paths = await seriesImages(seriesParams(p));
  const outputDir = await seriesOutputDir(p);
  const geometry = await firstReadableHeader(paths);
  if (!geometry) throw Object.assign(new Error(`No readable image among the ${paths.length} of the series: nothing written`), { code: 'ERR_INPUT' });
  const inputExt = extname(paths[0]!).toLowerCase();
  const ext = ['.png', '.tif', '.tiff', '.bmp'].includes(inputExt) && !(inputExt === '.bmp' && geometry.bitDepth === 16) ? inputExt : '.png';
  // Float images have no integer bit depth: their statistics are in the HDF5 file only.
  const imagePaths = geometry.bitDepth === 32 ? [] : wanted.map((s) => join(outputDir, `${s}${ext}`));
  const h5 = join(outputDir, MEAN_IMAGE_H5);
  const shared = { width: geometry.width, height: geometry.height, bitDepth: geometry.bitDepth };
  const reduction = new MeanImageReduction(options, shared);

  const write = async (failed: string[]): Promise<string> => {
    const r = reduction.total!.result();
    const { width, height, bitDepth } = shared;
    const left = new Set(failed);
    const used = paths.map((p) => basename(p)).filter((n) => !left.has(n));
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
      writeStrings(sources, 'names', used.sort());
      if (failed.length > 0) writeStrings(sources, 'failed', failed);
      writeParamTree(f, 'params', params);
    }));
    await Promise.all(imagePaths.map((p) => {
      const stat = basename(p, ext) as ImageStatistic;
      const data = stat === 'mean' ? r.mean : r[stat]!;
      return writeImageAs(p, width, height, data, bitDepth);
    }));
    return `mean of ${r.count} image(s) written: ${[h5, ...imagePaths].join(', ')}`;
  };
  return {
    outputDir, items: paths, shared, reduction, write,
    upToDate: p.saving.how === 'complete' && (await resultsComplete(h5, imagePaths)),
  };
}

export const meanImageTopology: ReduceTopologySpec<string, ImageData> = {
  kind: 'reduce',
  name: 'mean-image',
  itemLabel: 'image',
  schema: meanImageSchema,
  plan: (params) => planMeanImage(params),
  workerReduction: async (params, shared) => new MeanImageReduction(statsOptions(params), shared as Reference),
};

/**
 * The reading and summing steps: one set of partial sums per computation in flight
 * (`partials`), the names of the images added (`used`), the series' geometry (from the
 * first image unless given).
 */
function accumulator(options: StatsOptions, ref?: Reference) {
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
function statsOptions(params: ParamTree): StatsOptions {
  const stats = typedTree(meanImageSchema, params).statistics;
  return { min: stats.min, max: stats.max, std: stats.std };
}
