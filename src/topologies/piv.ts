/**
 * The PIV topology: series of image pairs -> read -> PIV work -> one HDF5 file per
 * pair, over any executor.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { imageInfo, readImage, readImageFloat32 } from '../io/images.js';
import { imagePool } from '../io/pool.js';
import { writePivFile } from '../io/pivfile.js';
import { ParamError } from '../params/schema.js';
import { buildSeries, defaultOutputDir, resultName, type Item, type SeriesParams } from '../series/series.js';
import { PROGRAM, VERSION } from '../version.js';
import type { PairImages } from '../works/piv/work.js';
import { WorkPIV, type ImageMask } from '../works/piv/work.js';
import { loadIm2im } from '../works/im2im.js';
import type { ParamTree, PivResult } from '../works/piv/types.js';
import type { Job } from '../executors/types.js';
import { prepareOutputDir, type HowMode } from './output.js';
import type { PlannedJob, TopologySpec } from './spec.js';
import { pivSchema } from '../params/piv.js';

/** A pair of the series: two files, or two frames of one multi-page file. */
export type PivItem = Item & { frames?: [number, number] };

/** The mask image of `mask.image` (non-zero = flow), or undefined. */
export async function loadMask(params: ParamTree): Promise<ImageMask | undefined> {
  const path = (params.mask as ParamTree).image as string | null;
  if (!path) return undefined;
  let im;
  try {
    im = await readImage(path);
  } catch (e) {
    throw new ParamError('mask.image', `Cannot use mask.image: ${(e as Error).message}`);
  }
  const data = new Uint8Array(im.width * im.height);
  for (let i = 0; i < data.length; i++) data[i] = im.data[i] !== 0 ? 1 : 0;
  return { data, width: im.width, height: im.height, source: path };
}

/** The preproc.im2im function of the parameters, applied to both images of a pair (or none). */
export async function pairFilter(params: ParamTree): Promise<((pair: PairImages) => Promise<PairImages>) | undefined> {
  const pre = params.preproc as ParamTree | undefined;
  if (!pre?.im2im) return undefined;
  const f = await loadIm2im(pre.im2im as string, pre.args_init as unknown[], 'preproc.im2im');
  return async (pair) => {
    const [a, b] = await Promise.all([
      f({ data: pair.im0, width: pair.width, height: pair.height }, pair.names[0]),
      f({ data: pair.im1, width: pair.width, height: pair.height }, pair.names[1]),
    ]);
    if (a.width !== b.width || a.height !== b.height) throw new Error('preproc.im2im returned images of different sizes for one pair');
    // The filter's arrays may be shared with anything (a cached background): not ours to overwrite.
    return { ...pair, im0: a.data, im1: b.data, width: a.width, height: a.height, owned: false };
  };
}

/** Reads both images of a pair as float32; sizes must match. */
export async function readPair(item: PivItem): Promise<PairImages> {
  if (item.missing.length > 0) throw new Error(`missing image(s): ${item.missing.join(', ')}`);
  // One image after the other, each converted as soon as decoded: the decoder's buffers of
  // the two never coexist (the pair is read ahead of its computation anyway). The arrays
  // come from the image pool; the job gives them back once the pair is computed.
  const read = (k: 0 | 1) => readImageFloat32(item.paths[k], { frame: item.frames?.[k], pool: imagePool });
  const images: Awaited<ReturnType<typeof read>>[] = [];
  const failed: string[] = [];
  for (const k of [0, 1] as const) {
    try {
      images.push(await read(k));
    } catch (e) {
      failed.push((e as Error).message); // every unreadable image of the pair is named
    }
  }
  if (failed.length > 0) {
    for (const im of images) imagePool.give(im.data);
    throw new Error(failed.join('; '));
  }
  const [a, b] = images;
  if (a.width !== b.width || a.height !== b.height) {
    imagePool.give(a.data);
    imagePool.give(b.data);
    throw new Error(`images of one pair must have the same size: ${item.names[0]} is ${a.width}x${a.height}, ` +
      `${item.names[1]} is ${b.width}x${b.height}`);
  }
  return {
    im0: a.data, im1: b.data, height: a.height, width: a.width, owned: true,
    names: [item.names[0], item.names[1]], paths: [item.paths[0], item.paths[1]],
  };
}

/**
 * The pairs of a series. Double-frame cameras often store frames a and b as the two
 * pages of one TIFF: when the images have two pages and str_subset is "pairs", each
 * file is one pair (page 0, page 1).
 */
async function pivItems(series: SeriesParams): Promise<PivItem[]> {
  if (series.str_subset === 'pairs') {
    const singles = await buildSeries({ ...series, str_subset: 'all1by1' });
    const first = singles.find((it) => it.missing.length === 0);
    const pages = first ? await imageInfo(first.paths[0]).then((i) => i.pages, () => 1) : 1;
    if (pages === 2) {
      return singles.map((it) => ({
        ...it, paths: [it.paths[0], it.paths[0]], names: [it.names[0], it.names[0]], frames: [0, 1],
      }));
    }
  }
  return buildSeries(series);
}

/**
 * Plans a PIV job from resolved parameters: the items still to compute, the output
 * directory, and the read/compute/write steps.
 */
export async function planPiv(params: ParamTree, opts: { threadsPerItem: number }): Promise<PlannedJob<PivItem, PairImages, PivResult>> {
  const series = params.series as ParamTree;
  const saving = params.saving as ParamTree;
  if (series.path === null || series.path === '') {
    throw new ParamError('series.path', 'Expected a directory, file or glob of images for series.path (the PATH argument)');
  }
  const work = new WorkPIV(params, opts.threadsPerItem, await loadMask(params));
  const items = await pivItems(series as unknown as SeriesParams);
  const sizes = new Set(items.map((it) => it.paths.length));
  if (!sizes.has(2) || sizes.size > 1) {
    throw new ParamError('series.str_subset', `PIV needs pairs of images, but series.str_subset ${JSON.stringify(series.str_subset)} selects ${[...sizes].join(' or ')} image(s) per item`);
  }
  const filter = await pairFilter(params);
  if (!filter) await checkImageGeometry(work, items);
  const postfix = saving.postfix as string;
  const outputDir = await prepareOutputDir((saving.path as string | null) ?? defaultOutputDir(series.path as string, postfix),
    saving.how as HowMode);
  const outPath = resultPathFor(outputDir, postfix);
  const todo = saving.how === 'complete' ? items.filter((it) => !existsSync(outPath(it))) : items;
  return { job: pivJob(work, outputDir, postfix, todo, filter), outputDir, skipped: items.length - todo.length, total: items.length };
}

/**
 * Planning: the windows, crop and mask against the size of the first readable image (a
 * plan that would fail on every pair is refused, naming the parameter). Skipped when a
 * preproc.im2im filter may change the size.
 */
export async function checkImageGeometry(work: WorkPIV, items: Item[]): Promise<void> {
  for (const item of items) {
    if (item.missing.length > 0) continue;
    const info = await imageInfo(item.paths[0]).catch(() => undefined);
    if (!info) continue; // unreadable: that item fails on its own
    work.checkGeometry(info.height, info.width, `e.g. ${item.names[0]}`);
    return;
  }
}

/** Where the result of an item goes. */
function resultPathFor(outputDir: string, postfix: string): (item: PivItem) => string {
  return (item) => join(outputDir, resultName(item.frames ? { ...item, names: [item.names[0]] } : item, postfix));
}

/**
 * The read/compute/write steps over `items` (on MPI ranks other than 0, items arrive
 * from rank 0 and `items` is empty).
 */
/** Gives a computed pair's images back to the pool, when they are the pipeline's own. */
export function recyclePair(pair: PairImages): void {
  if (!pair.owned) return; // e.g. arrays of a preproc filter, which may keep them
  imagePool.give(pair.im0);
  imagePool.give(pair.im1);
}

export function pivJob(work: WorkPIV, outputDir: string, postfix: string, items: PivItem[],
  filter?: (pair: PairImages) => Promise<PairImages>): Job<PivItem, PairImages, PivResult> {
  const outPath = resultPathFor(outputDir, postfix);
  return {
    items,
    name: (item) => (item.frames ? `${item.names[0]} (frames ${item.frames.join(', ')})` : item.names.join(' + ')),
    read: filter ? async (item) => filter(await readPair(item)) : readPair,
    compute: (pair) => work.calcul(pair),
    recycle: recyclePair,
    write: (result, item) => writePivFile(outPath(item), result, { program: PROGRAM, version: VERSION }),
    output: (item) => basename(outPath(item)),
    exists: (item) => existsSync(outPath(item)),
  };
}

export const pivTopology: TopologySpec<PivItem, PairImages, PivResult> = {
  threads: true,
  name: 'piv',
  itemLabel: 'pair',
  schema: pivSchema,
  plan: planPiv,
  workerJob: async (params: ParamTree, outputDir: string) =>
    pivJob(new WorkPIV(params, 1, await loadMask(params)), outputDir, (params.saving as ParamTree).postfix as string, [],
      await pairFilter(params)),
};
