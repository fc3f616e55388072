/**
 * The image-to-image topology: every image of a series -> a user function -> an image
 * with the same name and bit depth in `<dir>.im2im`.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readImage, toFloat32 } from '../io/images.js';
import { ParamError, typedTree } from '../params/schema.js';
import { im2imSchema } from '../params/im2im.js';
import { buildSeries, type Item } from '../series/series.js';
import { loadIm2im, type FloatImage } from '../works/im2im.js';
import type { ParamTree } from '../params/tree.js';
import type { Job } from '../executors/types.js';
import { prepareOutputDir, seriesOutputPath, seriesParams } from './output.js';
import type { PlannedJob, TopologySpec } from './spec.js';
import { outputName, writeImageAs } from './preproc.js';

export type Im2imInput = FloatImage & { name: string; bitDepth: 8 | 16 | 32 };

async function im2imFunction(params: ParamTree) {
  if (!params.im2im) throw new ParamError('im2im', 'Expected a JavaScript module for im2im (--set im2im=path/to/module.mjs) but received null');
  return loadIm2im(params.im2im as string, params.args_init as unknown[], 'im2im');
}

/** The steps over `items` (empty on MPI ranks other than 0). */
function im2imJob(f: Awaited<ReturnType<typeof im2imFunction>>, outputDir: string, items: Item[]): Job<Item, Im2imInput, Im2imInput> {
  return {
    items,
    name: (item) => item.names[0],
    output: (item) => outputName(item.names[0], 'img'),
    read: async (item) => {
      if (item.missing.length > 0) throw new Error(`missing image: ${item.missing.join(', ')}`);
      const im = await readImage(item.paths[0]);
      return { data: toFloat32(im), width: im.width, height: im.height, name: item.names[0], bitDepth: im.bitDepth };
    },
    compute: async (input) => ({ ...(await f(input, input.name)), name: input.name, bitDepth: input.bitDepth }),
    write: (r, item) => writeImageAs(join(outputDir, outputName(item.names[0], 'img')), r.width, r.height, r.data, r.bitDepth),
  };
}

async function planIm2im(params: ParamTree): Promise<PlannedJob<Item, Im2imInput, Im2imInput>> {
  const p = typedTree(im2imSchema, params);
  const series = seriesParams(p);
  const f = await im2imFunction(params);
  const items = (await buildSeries(series)).filter((it) => it.paths.length === 1);
  if (items.length === 0) throw new ParamError('series.str_subset', 'im2im works on single images: use series.str_subset "all1by1"');
  const outDir = seriesOutputPath(p);
  if (outDir === dirname(items[0].paths[0])) {
    throw new ParamError('saving.path', `The output directory would be the input directory: the images would be overwritten; choose another (-o)`);
  }
  const outputDir = await prepareOutputDir(outDir, p.saving.how);
  const todo = p.saving.how === 'complete' ? items.filter((it) => !existsSync(join(outputDir, outputName(it.names[0], 'img')))) : items;
  return { job: im2imJob(f, outputDir, todo), outputDir, skipped: items.length - todo.length, total: items.length };
}

async function im2imWorkerJob(params: ParamTree, outputDir: string): Promise<Job<Item, Im2imInput, Im2imInput>> {
  return im2imJob(await im2imFunction(params), outputDir, []);
}

export const im2imTopology: TopologySpec<Item, Im2imInput, Im2imInput> = {
  name: 'im2im',
  itemLabel: 'image',
  schema: im2imSchema,
  plan: (params) => planIm2im(params),
  workerJob: (params, outputDir) => im2imWorkerJob(params, outputDir),
};
