/** `fluidimage surftrack PATH`: surface tracking by Fourier-transform profilometry (surf_<index>.h5). */
import type { ImageData } from '../io/images.js';
import { surftrackSchema } from '../params/surftrack.js';
import type { Item } from '../series/series.js';
import { planSurftrack, surftrackWorkerJob } from '../topologies/surftrack.js';
import type { SurfResult } from '../works/surftrack/work.js';
import { runSeries, type RunOptions, type TopologySpec } from './run_series.js';

export const surftrackTopology: TopologySpec<Item, ImageData, SurfResult> = {
  threads: true,
  name: 'surftrack',
  itemLabel: 'image',
  schema: surftrackSchema,
  plan: planSurftrack,
  workerJob: surftrackWorkerJob,
};

export const runSurftrack = (o: RunOptions): Promise<number> => runSeries(surftrackTopology, o);
