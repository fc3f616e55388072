/** `fluidimage bos PATH`: background-oriented schlieren, PIV against a reference image. */
import { bosSchema } from '../params/bos.js';
import { bosWorkerJob, planBos, type BosItem } from '../topologies/bos.js';
import type { PairImages } from '../works/piv/work.js';
import type { PivResult } from '../works/piv/types.js';
import { runSeries, type RunOptions, type TopologySpec } from './run_series.js';

export const bosTopology: TopologySpec<BosItem, PairImages, PivResult> = {
  threads: true,
  name: 'bos',
  itemLabel: 'image',
  schema: bosSchema,
  plan: planBos,
  workerJob: bosWorkerJob,
};

export const runBos = (o: RunOptions): Promise<number> => runSeries(bosTopology, o);
