/**
 * The PIV topology: series of image pairs -> read -> PIV work -> one HDF5 file per
 * pair, over any executor.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { imageInfo, readImage, readImageFloat32 } from '../io/images.js';
import { imagePool } from '../io/pool.js';
import { writePivFile } from '../io/pivfile.js';
import { ParamError, typedTree } from '../params/schema.js';
import { buildSeries, resultName, type Item, type SeriesParams } from '../series/series.js';
import { PROGRAM, VERSION } from '../version.js';
import type { PairImages } from '../works/piv/work.js';
import { WorkPIV, type ImageMask } from '../works/piv/work.js';
import { maskFromValues } from '../works/piv/masks.js';
import { loadIm2im, loadUserFunction } from '../works/im2im.js';
import type { PivResult } from '../results/piv_result.js';
import type { ParamTree } from '../params/tree.js';
import type { Job } from '../executors/types.js';
import { seriesOutputDir, seriesParams } from './output.js';
import type { PlannedJob, TopologySpec } from './spec.js';
import { pivSchema, type PivParams } from '../params/piv.js';

/** A pair of the series: two files, or two frames of one multi-page file. */
export type PivItem = Item & { frames?: [number, number] };

/** A mask image (non-zero = flow); an unreadable one is a ParamError naming `key` and the file. */
async function readMaskImage(path: string, key: string): Promise<ImageMask> {
  let im;
  try {
    im = await readImage(path);
  } catch (e) {
    throw new ParamError(key, `Cannot use the mask ${path} (${key}): ${(e as Error).message}`);
  }
  return maskFromValues(im.data, im.height, im.width, path, key);
}

/** The mask image of `mask.image` (non-zero = flow), or undefined. */
export async function loadMask(params: ParamTree): Promise<ImageMask | undefined> {
  const path = typedTree(pivSchema, params).mask.image;
  return path ? readMaskImage(path, 'mask.image') : undefined;
}

/** The image of a pair that names its mask and is given to mask.module: 0 (PIV), 1 (BOS: not the reference). */
export type MaskedImage = 0 | 1;

/**
 * The pair's own masks: the image of `mask.folder` with the name of image `which` of the
 * pair, and what `mask.module` makes of that image (or undefined: neither is set).
 */
export async function pairMasker(params: ParamTree, which: MaskedImage = 0): Promise<((pair: PairImages) => Promise<PairImages>) | undefined> {
  // A tree written before these keys (an older params file) lacks them: absent is none.
  const m = typedTree(pivSchema, params).mask as Partial<PivParams['mask']>;
  const folder = m.folder ?? null;
  const module = m.module ?? null;
  if (!folder && !module) return undefined;
  if (folder && !statSync(folder, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ParamError('mask.folder', `Expected a folder of mask images for mask.folder but ${folder} is not one`);
  }
  const make = module ? await loadUserFunction(module, [], 'mask.module') : undefined;
  return async (pair) => {
    const name = pair.names[which];
    const masks: ImageMask[] = [];
    if (folder) {
      const file = join(folder, name);
      if (!existsSync(file)) throw new ParamError('mask.folder', `No mask ${file} (mask.folder) for the image ${name}`);
      masks.push(await readMaskImage(file, 'mask.folder'));
    }
    if (make) {
      const image = which === 0 ? pair.im0 : pair.im1;
      const out = await make({ data: image, width: pair.width, height: pair.height }, name);
      masks.push(userMask(out, pair, name, module!));
    }
    return { ...pair, masks: [...(pair.masks ?? []), ...masks] };
  };
}

/** What mask.module returned, as a mask of the pair's size; anything else is a ParamError. */
function userMask(out: unknown, pair: PairImages, name: string, module: string): ImageMask {
  const { width, height } = pair;
  const o = out as { data?: unknown; width?: unknown; height?: unknown } | null | undefined;
  const isArray = (a: unknown): a is ArrayLike<unknown> => Array.isArray(a) || (ArrayBuffer.isView(a) && !(a instanceof DataView));
  const values = isArray(out) ? out : o?.data;
  const w = isArray(out) ? width : o?.width;
  const h = isArray(out) ? height : o?.height;
  if (!isArray(values) || w !== width || h !== height || values.length !== width * height) {
    const got = isArray(values) ? `${values.length} values${typeof w === 'number' ? ` (${w}x${h})` : ''}` : typeof out;
    throw new ParamError('mask.module', `mask.module ${module} on ${name}: expected a mask {data, width, height} or an array of ` +
      `${width}x${height} = ${width * height} values (the image's size) but received ${got}`);
  }
  return maskFromValues(values, height, width, `of mask.module for ${name}`, 'mask.module');
}

/** Runs the steps after reading a pair in order (undefined ones skipped). */
export function chainSteps(...steps: (((pair: PairImages) => Promise<PairImages>) | undefined)[]): ((pair: PairImages) => Promise<PairImages>) | undefined {
  const defined = steps.filter((f) => f !== undefined);
  if (defined.length <= 1) return defined[0];
  return async (pair) => {
    let p = pair;
    for (const f of defined) p = await f(p);
    return p;
  };
}

/**
 * Planning: the mask of mask.folder for the first readable image (image `which` of the
 * items) must have its size (a mask of another size would fail every pair).
 */
export async function checkMaskFolder(params: ParamTree, items: Item[], which: MaskedImage): Promise<void> {
  const folder = (typedTree(pivSchema, params).mask as Partial<PivParams['mask']>).folder ?? null;
  if (!folder) return;
  for (const item of items) {
    if (item.missing.length > 0) continue;
    const image = await imageInfo(item.paths[which]).catch(() => undefined);
    if (!image) continue;
    const file = join(folder, item.names[which]);
    const mask = await imageInfo(file).catch(() => undefined);
    if (mask && (mask.width !== image.width || mask.height !== image.height)) {
      throw new ParamError('mask.folder', `The mask ${file} is ${mask.width}x${mask.height} but the images (e.g. ${item.names[which]}) are ${image.width}x${image.height} (mask.folder)`);
    }
    return;
  }
}

/** The preproc.im2im function of the parameters, applied to both images of a pair (or none). */
export async function pairFilter(params: ParamTree): Promise<((pair: PairImages) => Promise<PairImages>) | undefined> {
  const pre = typedTree(pivSchema, params).preproc as PivParams['preproc'] | undefined;
  if (!pre?.im2im) return undefined;
  const f = await loadIm2im(pre.im2im, pre.args_init, 'preproc.im2im');
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

/** The pairs of a series for `what` (PIV, ensemble correlation): a ParamError unless every item is a pair. */
export async function pairItems(series: SeriesParams, what: string): Promise<PivItem[]> {
  const items = await pivItems(series);
  const sizes = new Set(items.map((it) => it.paths.length));
  if (!sizes.has(2) || sizes.size > 1) {
    throw new ParamError('series.str_subset', `${what} needs pairs of images, but series.str_subset ${JSON.stringify(series.str_subset)} selects ${[...sizes].join(' or ')} image(s) per item`);
  }
  return items;
}

/**
 * Plans a PIV job from resolved parameters: the items still to compute, the output
 * directory, and the read/compute/write steps.
 */
export async function planPiv(params: ParamTree, opts: { threadsPerItem: number }): Promise<PlannedJob<PivItem, PairImages, PivResult>> {
  const p = typedTree(pivSchema, params);
  const series = seriesParams(p);
  const work = new WorkPIV(params, opts.threadsPerItem, await loadMask(params));
  const items = await pairItems(series, 'PIV');
  const filter = await pairFilter(params);
  if (!filter) {
    await checkImageGeometry(work, items);
    await checkMaskFolder(params, items, 0);
  }
  const steps = chainSteps(filter, await pairMasker(params, 0));
  const postfix = p.saving.postfix;
  const outputDir = await seriesOutputDir(p);
  const outPath = resultPathFor(outputDir, postfix);
  const todo = p.saving.how === 'complete' ? items.filter((it) => !existsSync(outPath(it))) : items;
  return { job: pivJob(work, outputDir, postfix, todo, steps), outputDir, skipped: items.length - todo.length, total: items.length };
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

/** A pair's name in messages and logs: its two files, or the file and its two frames. */
export function pairName(item: PivItem): string {
  return item.frames ? `${item.names[0]} (frames ${item.frames.join(', ')})` : item.names.join(' + ');
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

function pivJob(work: WorkPIV, outputDir: string, postfix: string, items: PivItem[],
  filter?: (pair: PairImages) => Promise<PairImages>): Job<PivItem, PairImages, PivResult> {
  const outPath = resultPathFor(outputDir, postfix);
  return {
    items,
    name: pairName,
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
    pivJob(new WorkPIV(params, 1, await loadMask(params)), outputDir, typedTree(pivSchema, params).saving.postfix, [],
      chainSteps(await pairFilter(params), await pairMasker(params, 0))),
};
