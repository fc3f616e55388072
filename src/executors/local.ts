/**
 * All cores of one machine: `workers` items in flight at once. The heavy work runs
 * in native threads (libuv's pool), so one JS thread is enough to keep them busy;
 * images of the next items are read while the current ones compute.
 */
import { listSource, runLanes } from './lanes.js';
import type { Executor } from './types.js';

export const local: Executor = (job, opts) =>
  runLanes(job, listSource(job.items, opts.stop), Math.min(opts.workers, Math.max(1, job.items.length)), opts.onItem);
