/** `fluidimage im2im PATH --set im2im=module.mjs`: a user function applied to every image. */
import { im2imSchema } from '../params/im2im.js';
import { im2imWorkerJob, planIm2im, type Im2imInput } from '../topologies/im2im.js';
import type { Item } from '../series/series.js';
import { runSeries, type RunOptions, type TopologySpec } from './run_series.js';

export const im2imTopology: TopologySpec<Item, Im2imInput, Im2imInput> = {
  name: 'im2im',
  itemLabel: 'image',
  schema: im2imSchema,
  plan: (params) => planIm2im(params),
  workerJob: (params, outputDir) => im2imWorkerJob(params, outputDir),
};

export const runIm2im = (o: RunOptions): Promise<number> => runSeries(im2imTopology, o);
