/** `fluidimage piv PATH`: PIV of a series of image pairs (one HDF5 file per pair). */
import { pivSchema } from '../params/piv.js';
import { loadMask, pairFilter, pivJob, planPiv, type PivItem } from '../topologies/piv.js';
import { WorkPIV, type PairImages } from '../works/piv/work.js';
import type { ParamTree, PivResult } from '../works/piv/types.js';
import { runSeries, type RunOptions, type TopologySpec } from './run_series.js';

export type { RunOptions } from './run_series.js';

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

export const runPiv = (o: RunOptions): Promise<number> => runSeries(pivTopology, o);
