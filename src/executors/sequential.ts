/** One item at a time, in order: the simplest executor, for debugging. */
import { runItem, settle, type Executor } from './types.js';

export const sequential: Executor = async (job, opts) => {
  for (const item of job.items) {
    if (opts.stop?.requested) break;
    opts.onItem(await runItem(job, item, settle(job.read(item))));
  }
};
