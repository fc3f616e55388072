/**
 * `fluidimage preproc PATH`: preprocessing of a series of images on one machine: items
 * read ahead on the main thread, computed in `--workers` threads, written atomically;
 * job directory, lock, progress, graceful stop, exit status and MPI executor as
 * `fluidimage piv` (the same runner).
 */
import { availableParallelism } from 'node:os';
import { preprocSchema } from '../params/preproc.js';
import { planPreproc, preprocWorkerJob, type PreprocItem, type PreprocOutput } from '../topologies/preproc.js';
import type { PreprocInput } from '../works/preproc/work.js';
import { runSeries, type RunOptions, type TopologySpec } from './run_series.js';

export type PreprocOptions = Omit<RunOptions, 'executor'> & { executor?: RunOptions['executor'] };

export const preprocTopology: TopologySpec<PreprocItem, PreprocInput, PreprocOutput> = {
  name: 'preproc',
  itemLabel: 'item',
  schema: preprocSchema,
  plan: (params, { workers }) => planPreproc(params, { threads: workers }),
  workerJob: async (params, outputDir, lanes) => preprocWorkerJob(params, outputDir, lanes),
};

export const runPreproc = (o: PreprocOptions): Promise<number> =>
  runSeries(preprocTopology, { ...o, executor: o.executor ?? 'auto', workers: o.workers ?? availableParallelism() });
