/**
 * All cores of one machine: `workers` items in flight at once. The heavy work runs
 * in native threads (libuv's pool), so one JS thread is enough to keep them busy;
 * images of the next items are read while the current ones compute.
 */
import { runItem, settle, type Executor, type Settled } from './types.js';

export const local: Executor = async (job, opts) => {
  const items = job.items;
  const workers = Math.max(1, Math.min(opts.workers, items.length));
  const reads = new Map<number, Promise<Settled<unknown>>>();
  const startRead = (i: number) => {
    if (i < items.length && !reads.has(i)) reads.set(i, settle(job.read(items[i])));
  };
  let next = 0;
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      startRead(i);
      // Read ahead: the item this lane (or another) will take after the current round.
      startRead(i + workers);
      const data = reads.get(i)!;
      reads.delete(i);
      opts.onItem(await runItem(job, items[i], data as Promise<Settled<never>>));
    }
  };
  await Promise.all(Array.from({ length: workers }, lane));
};
