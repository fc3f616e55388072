/**
 * The engine shared by the executors: `lanes` items in flight, taken from a source
 * that may be a list (local executor) or a remote dispatcher (MPI). Each lane starts
 * reading its next item as soon as it takes the current one, so images are read while
 * the previous ones compute.
 */
import { computeThenWrite, settle, type Job, type Settled } from './types.js';
import type { ItemOutcome } from '../report/progress.js';
import type { StopRequest } from './stop.js';

/** Where items come from; `undefined` means there are no more. */
export interface ItemSource<I> {
  next(): Promise<I | undefined>;
}

/** A source over a fixed list; it runs dry once a stop is requested. */
export function listSource<I>(items: readonly I[], stop?: StopRequest): ItemSource<I> {
  let k = 0;
  return { next: async () => (k < items.length && !stop?.requested ? items[k++] : undefined) };
}

interface Taken<I, D> {
  item: I;
  data: Promise<Settled<D>>;
}

/**
 * Runs the items of `source` through `lanes` concurrent lanes. `prefetch()` says whether
 * a lane may take its next item before finishing the current one (the MPI root declines
 * near the end of a series, so the last items go to ranks that are idle).
 */
export async function runLanes<I, D, R>(job: Job<I, D, R>, source: ItemSource<I>, lanes: number,
  onItem: (outcome: ItemOutcome) => void, prefetch: () => boolean = () => true): Promise<void> {
  const take = async (): Promise<Taken<I, D> | undefined> => {
    const item = await source.next();
    return item === undefined ? undefined : { item, data: settle(job.read(item)) };
  };
  const lane = async () => {
    let current = await take();
    // Write-behind: the result of an item is written while the next one computes; at
    // most one write pending per lane, so memory stays bounded.
    let pendingWrite: Promise<void> = Promise.resolve();
    while (current) {
      const upcoming = prefetch() ? take() : undefined;
      const { written } = await computeThenWrite(job, current.item, current.data);
      await pendingWrite;
      pendingWrite = written.then(onItem);
      current = await (upcoming ?? take());
    }
    await pendingWrite;
  };
  await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane));
}
