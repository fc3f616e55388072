/**
 * MPI executor: the ranks of an MPI job share the items of one series. Rank 0 holds
 * the list and hands items out dynamically, in small batches, to the ranks that ask
 * (fast ranks get more, a slow pair does not stall the others); rank 0 computes too.
 * Each rank reads its images and writes its results itself (shared file system). The
 * outcome of every item travels back to rank 0 with the next request, so rank 0 alone
 * reports progress and the summary. All messages are nonblocking and completed from
 * the event loop, so reading, computing and writing go on meanwhile.
 */
import type { ItemOutcome } from '../report/progress.js';
import { listSource, runLanes, type ItemSource } from './lanes.js';
import type { Job } from './types.js';
import type { StopRequest } from './stop.js';

/** What the executor needs from a communicator (src/mpi/comm.ts provides it). */
export interface Messenger {
  readonly rank: number;
  readonly size: number;
  /** Sends a JSON-able object; resolves when the buffer may be reused. */
  sendObject(obj: unknown, dest: number, tag: number): Promise<void>;
  /** Receives a JSON-able object from any rank with this tag. */
  recvObjectAny(tag: number): Promise<{ data: unknown; source: number }>;
  /** Receives a JSON-able object from one rank. */
  recvObjectFrom(source: number, tag: number): Promise<unknown>;
}

const TAG_REQUEST = 101;
const TAG_WORK = 102;

/** Worker -> rank 0: outcomes since the last request, and whether it wants more items. */
interface Request { outcomes: ItemOutcome[]; done: boolean }
/** Rank 0 -> worker: items to process; an empty list means stop. */
interface Work<I> { items: I[] }

/**
 * The message a rank that ended without saying so (a thread that died) stands for: done,
 * no outcomes. Rank 0 then stops waiting for it.
 */
export function rankGoneRequest(): { tag: number; data: unknown } {
  return { tag: TAG_REQUEST, data: { outcomes: [], done: true } satisfies Request };
}

export interface MpiRunOptions {
  /** Items in flight per rank. */
  lanes: number;
  /** Called on rank 0 for every item of every rank. */
  onItem(outcome: ItemOutcome): void;
  /** Called on each rank for the items it processed itself (per-rank logs). */
  onLocalItem?(outcome: ItemOutcome): void;
  /** Largest batch handed out at once (default 4). */
  maxBatch?: number;
  /** When requested on a rank, that rank takes no new item (rank 0: hands none out). */
  stop?: StopRequest;
}

/**
 * Runs the job over all ranks. `job.items` matters on rank 0 only (the others may pass
 * an empty list); items must survive JSON. Resolves on every rank when all items are done.
 */
export async function runMpi<I, D, R>(comm: Messenger, job: Job<I, D, R>, opts: MpiRunOptions): Promise<void> {
  if (comm.size === 1) {
    return runLanes(job, listSource(job.items, opts.stop), opts.lanes, (o) => {
      opts.onLocalItem?.(o);
      opts.onItem(o);
    });
  }
  if (comm.rank === 0) return runRoot(comm, job, opts);
  return runWorker(comm, job, opts);
}

/** Batch size: small near the end so that the last items spread over all ranks. */
function batchSize(remaining: number, ranks: number, maxBatch: number): number {
  return Math.max(1, Math.min(maxBatch, Math.floor(remaining / (4 * ranks))));
}

async function runRoot<I, D, R>(comm: Messenger, job: Job<I, D, R>, opts: MpiRunOptions): Promise<void> {
  const queue = [...job.items];
  const maxBatch = opts.maxBatch ?? 4;
  const ownSource: ItemSource<I> = { next: async () => (opts.stop?.requested ? undefined : queue.shift()) };
  const serve = async () => {
    let active = comm.size - 1;
    while (active > 0) {
      const { data, source } = await comm.recvObjectAny(TAG_REQUEST);
      const request = data as Request;
      for (const o of request.outcomes) opts.onItem(o);
      if (request.done) {
        active--;
        continue;
      }
      const items = opts.stop?.requested ? [] : queue.splice(0, batchSize(queue.length, comm.size, maxBatch));
      await comm.sendObject({ items } satisfies Work<I>, source, TAG_WORK);
    }
  };
  await Promise.all([serve(), runLanes(job, ownSource, opts.lanes, (o) => {
    opts.onLocalItem?.(o);
    opts.onItem(o);
  }, () => queue.length >= comm.size)]);
}

async function runWorker<I, D, R>(comm: Messenger, job: Job<I, D, R>, opts: MpiRunOptions): Promise<void> {
  const pending: ItemOutcome[] = [];
  const buffer: I[] = [];
  let finished = false;
  let inFlight: Promise<void> | undefined;
  // One request at a time; lanes that find the buffer empty wait for it.
  const refill = () => {
    inFlight ??= (async () => {
      await comm.sendObject({ outcomes: pending.splice(0), done: false } satisfies Request, 0, TAG_REQUEST);
      const work = (await comm.recvObjectFrom(0, TAG_WORK)) as Work<I>;
      if (work.items.length === 0) finished = true;
      buffer.push(...work.items);
    })().finally(() => { inFlight = undefined; });
    return inFlight;
  };
  const source: ItemSource<I> = {
    next: async () => {
      while (buffer.length === 0 && !finished && !opts.stop?.requested) await refill();
      return opts.stop?.requested ? undefined : buffer.shift();
    },
  };
  await runLanes(job, source, opts.lanes, (o) => {
    opts.onLocalItem?.(o);
    pending.push(o);
  });
  await comm.sendObject({ outcomes: pending.splice(0), done: true } satisfies Request, 0, TAG_REQUEST);
}
