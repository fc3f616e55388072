/**
 * The BOS topology: a fixed reference image -> every image of a series -> the full
 * multipass PIV between them -> one HDF5 file per image (`bos_<index>.h5`, PIV layout).
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { readImage, readImageFloat32 } from '../io/images.js';
import { imagePool } from '../io/pool.js';
import { writePivFile } from '../io/pivfile.js';
import { ParamError, typedTree } from '../params/schema.js';
import { buildSeries, resultName, type Item } from '../series/series.js';
import { PROGRAM, VERSION } from '../version.js';
import { WorkPIV, type PairImages } from '../works/piv/work.js';
import type { PivResult } from '../results/piv_result.js';
import type { ParamTree } from '../params/tree.js';
import type { Job } from '../executors/types.js';
import { seriesOutputDir, seriesParams } from './output.js';
import { bosSchema } from '../params/bos.js';
import { chainSteps, checkImageGeometry, checkMaskFolder, loadMask, pairFilter, pairMasker, recyclePair } from './piv.js';
import type { PlannedJob, TopologySpec } from './spec.js';

/** One image of the series, compared with the reference. */
export type BosItem = Item & { reference: string };

/** The reference's path: an index into the (all-images) series, or a path. */
async function referencePath(params: ParamTree): Promise<string> {
  const p = typedTree(bosSchema, params);
  const ref = p.reference;
  if (typeof ref === 'string') {
    const p = resolve(ref);
    if (!existsSync(p)) throw new ParamError('reference', `The reference image ${p} does not exist`);
    return p;
  }
  const all = await buildSeries({ ...seriesParams(p), str_subset: 'all1by1', ind_start: 'first', ind_stop: null, ind_step: 1 });
  if (ref >= all.length) {
    throw new ParamError('reference', `Expected the index of an image of the series (0 to ${all.length - 1}) for reference but received ${ref}`);
  }
  return all[ref].paths[0];
}

/** The steps over `items`; the reference is read once per process. */
function bosJob(work: WorkPIV, reference: string, outputDir: string, postfix: string, items: BosItem[],
  filter?: (pair: PairImages) => Promise<PairImages>): Job<BosItem, PairImages, PivResult> {
  let refImage: ReturnType<typeof readImage> | undefined;
  const read = async (item: BosItem): Promise<PairImages> => {
    if (item.missing.length > 0) throw new Error(`missing image: ${item.missing.join(', ')}`);
    refImage ??= readImage(reference);
    const [a, b] = await Promise.all([refImage, readImageFloat32(item.paths[0], { pool: imagePool })]);
    if (a.width !== b.width || a.height !== b.height) {
      imagePool.give(b.data);
      throw new Error(`the image ${item.names[0]} is ${b.width}x${b.height} but the reference is ${a.width}x${a.height}`);
    }
    // The reference is copied for each item: the work overwrites the images it owns.
    const im0 = imagePool.take(a.data.length);
    im0.set(a.data);
    return {
      im0, im1: b.data, height: a.height, width: a.width, owned: true,
      names: [reference.split('/').pop()!, item.names[0]], paths: [reference, item.paths[0]],
    };
  };
  return {
    items,
    name: (item) => item.names[0],
    read: filter ? async (item) => filter(await read(item)) : read,
    compute: (pair) => work.calcul(pair),
    recycle: recyclePair,
    write: (result, item) => writePivFile(join(outputDir, resultName(item, postfix)), result, { program: PROGRAM, version: VERSION }),
    output: (item) => resultName(item, postfix),
    exists: (item) => existsSync(join(outputDir, resultName(item, postfix))),
  };
}

async function planBos(params: ParamTree, opts: { threadsPerItem: number }): Promise<PlannedJob<BosItem, PairImages, PivResult>> {
  const p = typedTree(bosSchema, params);
  const series = seriesParams(p);
  const reference = await referencePath(params);
  const work = new WorkPIV(params, opts.threadsPerItem, await loadMask(params));
  const items = (await buildSeries(series))
    .filter((it) => it.paths.length === 1 && it.paths[0] !== reference)
    .map((it) => ({ ...it, reference }));
  if (items.length === 0) {
    throw new ParamError('series.str_subset', `BOS compares single images with the reference; series.str_subset ${JSON.stringify(series.str_subset)} gives none besides the reference`);
  }
  const filter = await pairFilter(params);
  if (!filter) {
    await checkImageGeometry(work, [{ ...items[0], paths: [reference], names: [basename(reference)], missing: [] }]);
    await checkMaskFolder(params, items, 0);
  }
  // The masks of mask.folder and mask.module are those of each image (not the reference's).
  const steps = chainSteps(filter, await pairMasker(params, 1));
  const postfix = p.saving.postfix;
  const outputDir = await seriesOutputDir(p);
  const todo = p.saving.how === 'complete' ? items.filter((it) => !existsSync(join(outputDir, resultName(it, postfix)))) : items;
  return { job: bosJob(work, reference, outputDir, postfix, todo, steps), outputDir, skipped: items.length - todo.length, total: items.length };
}

/** The steps for MPI ranks other than 0. */
async function bosWorkerJob(params: ParamTree, outputDir: string): Promise<Job<BosItem, PairImages, PivResult>> {
  const work = new WorkPIV(params, 1, await loadMask(params));
  return bosJob(work, await referencePath(params), outputDir, typedTree(bosSchema, params).saving.postfix, [],
    chainSteps(await pairFilter(params), await pairMasker(params, 1)));
}

export const bosTopology: TopologySpec<BosItem, PairImages, PivResult> = {
  threads: true,
  name: 'bos',
  itemLabel: 'image',
  schema: bosSchema,
  plan: planBos,
  workerJob: bosWorkerJob,
};
