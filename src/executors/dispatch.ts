/**
 * Dynamic dispatch of a job's items over ranks: the ranks of an MPI job (the MPI executor),
 * or the JS threads of the local executor (executors/threads.ts: MessagePorts stand for
 * MPI), are reached through a Messenger and share the items of one series. Rank 0 holds
 * the list and hands items out dynamically, in small batches, to the ranks that ask
 * (fast ranks get more, a slow pair does not stall the others); rank 0 computes too.
 * Each rank reads its images and writes its results itself (shared file system). The
 * outcome of every item travels back to rank 0 with the next request, so rank 0 alone
 * reports progress and the summary. All messages are nonblocking and completed from
 * the event loop, so reading, computing and writing go on meanwhile.
 *
 * Liveness (optional, on with real MPI ranks): an MPI library notices a host that went
 * silent (link down, a stopped or frozen process) only after minutes, if ever, and the
 * job then hangs until the wall clock ends it. So the ranks exchange heartbeats: every
 * worker tells rank 0 it is alive, rank 0 tells every worker, also during long items (the
 * computations run in native threads; the JS thread stays free). Rank 0 declares a worker
 * silent for `timeoutMs` lost: its items in flight are reported as not done (atomic writes:
 * no file of theirs is partial), the others go on to the end. A worker that loses rank 0
 * takes no new item and finishes those it has. Either way runDispatched resolves with what was
 * lost, and the caller ends the job (MPI_Finalize would wait forever for the lost rank).
 */
import type { ItemOutcome } from '../report/progress.js';
import { listSource, runLanes, type ItemSource } from './lanes.js';
import type { Job } from './types.js';
import type { StopRequest } from './stop.js';

/** What dispatch needs from a communicator (src/mpi/comm.ts provides it; executors/threads.ts over MessagePorts). */
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
/** Liveness: heartbeats both ways, a worker's goodbye, rank 0's end of the item phase. */
const TAG_CONTROL = 103;

/** Worker -> rank 0: outcomes since the last request, and whether it wants more items. */
interface Request { outcomes: ItemOutcome[]; done: boolean }
/** Rank 0 -> worker: items to process; an empty list means stop. */
interface Work<I> { items: I[] }
/**
 * Liveness messages. Worker -> rank 0: `alive`, then `bye` once its done-request is sent
 * (it is no longer watched). Rank 0 -> worker: `alive`, then `end` when every worker is done
 * or lost (`lost`: how many), after which no liveness message is pending on either side.
 */
type Control = { kind: 'alive' } | { kind: 'bye' } | { kind: 'end'; lost: number };

/**
 * The message a rank that ended without saying so (a thread that died) stands for: done,
 * no outcomes. Rank 0 then stops waiting for it.
 */
export function rankGoneRequest(): { tag: number; data: unknown } {
  return { tag: TAG_REQUEST, data: { outcomes: [], done: true } satisfies Request };
}

export interface Liveness {
  /** Silence after which a rank counts as lost, ms. */
  timeoutMs: number;
  /** Heartbeat period, ms (default: a tenth of the timeout, at most 5 s). */
  intervalMs?: number;
  /** Host of each rank, for messages. */
  hosts: readonly string[];
  /** Told as soon as a rank is declared lost (rank 0 about workers, workers about rank 0). */
  onLost?(lost: LostRank): void;
}

export interface LostRank {
  rank: number;
  host: string;
  /** Seconds without a sign of life when declared lost. */
  silentSeconds: number;
  /** Names of the items it had in flight (rank 0's view; empty on workers). */
  items: string[];
}

export interface DispatchOptions {
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
  /** Heartbeats and lost ranks (absent: ranks are trusted to answer, e.g. threads). */
  liveness?: Liveness;
  /**
   * Whether rank 0 computes items too (default true). Its JS thread serves every request;
   * with many ranks, its own items' JS work (result writes: ~10 ms each) would delay the
   * answers, so large jobs leave rank 0 to dispatching (engine: rootComputes()).
   */
  rootComputes?: boolean;
}

/** What went missing; empty when every rank saw the job to its end. */
export interface DispatchResult {
  /** Rank 0: the workers it declared lost. */
  lost: LostRank[];
  /** A worker: rank 0, when this rank declared it lost. */
  rootLost?: LostRank;
  /** A worker: the number of ranks rank 0 declared lost (told with the end of the item phase). */
  lostElsewhere: number;
}

/**
 * Runs the job over all ranks. `job.items` matters on rank 0 only (the others may pass
 * an empty list); items must survive JSON. Resolves on every rank when all items are done
 * (or, with liveness, lost); then no message of this executor is pending.
 */
export async function runDispatched<I, D, R>(comm: Messenger, job: Job<I, D, R>, opts: DispatchOptions): Promise<DispatchResult> {
  if (comm.size === 1) {
    await runLanes(job, listSource(job.items, opts.stop), opts.lanes, (o) => {
      opts.onLocalItem?.(o);
      opts.onItem(o);
    });
    return { lost: [], lostElsewhere: 0 };
  }
  if (comm.rank === 0) return runRoot(comm, job, opts);
  return runWorker(comm, job, opts);
}

/** Batch size: small near the end so that the last items spread over all ranks. */
function batchSize(remaining: number, ranks: number, maxBatch: number): number {
  return Math.max(1, Math.min(maxBatch, Math.floor(remaining / (4 * ranks))));
}

const intervalOf = (l: Liveness) => l.intervalMs ?? Math.min(5000, l.timeoutMs / 10);

/** Sends without waiting; a failed send counts as silence, which the watchdog judges. */
function post(comm: Messenger, obj: unknown, dest: number, tag: number): void {
  comm.sendObject(obj, dest, tag).catch(() => undefined);
}

/** A promise and its resolver. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

async function runRoot<I, D, R>(comm: Messenger, job: Job<I, D, R>, opts: DispatchOptions): Promise<DispatchResult> {
  const queue = [...job.items];
  const maxBatch = opts.maxBatch ?? 4;
  const live = opts.liveness;
  const ownSource: ItemSource<I> = { next: async () => (opts.stop?.requested ? undefined : queue.shift()) };
  // Per worker: done (asked for nothing more), lost, last sign of life, items in flight by name.
  const workers = Array.from({ length: comm.size }, () => ({ done: false, lost: false, said: false, seen: performance.now(), items: new Map<string, I>() }));
  workers[0].done = workers[0].said = true;
  const lost: LostRank[] = [];
  let active = comm.size - 1;
  const allAnswered = deferred();
  const settle = () => {
    if (active === 0) allAnswered.resolve();
  };
  const serve = async () => {
    while (active > 0) {
      const { data, source } = await comm.recvObjectAny(TAG_REQUEST);
      const w = workers[source];
      if (w.lost) continue; // it came back after being given up: the job ends anyway
      w.seen = performance.now();
      const request = data as Request;
      for (const o of request.outcomes) {
        w.items.delete(o.name);
        opts.onItem(o);
      }
      if (request.done) {
        w.done = true;
        active--;
        continue;
      }
      const items = opts.stop?.requested ? [] : queue.splice(0, batchSize(queue.length, comm.size, maxBatch));
      for (const it of items) w.items.set(job.name(it), it);
      // Not awaited: the next request is served while this answer is on its way.
      answers.push({ rank: source, sent: comm.sendObject({ items } satisfies Work<I>, source, TAG_WORK) });
      if (answers.length > 1024) await awaitAnswers();
    }
    settle();
  };
  // Answers on their way; those to a rank declared lost may never complete (a stopped
  // process empties no buffer): never waited for.
  const answers: { rank: number; sent: Promise<void> }[] = [];
  const awaitAnswers = () => Promise.all(answers.splice(0).filter((a) => !workers[a.rank].lost).map((a) => a.sent));
  // Every worker said goodbye (or is lost): then no liveness message stays posted.
  const allSaid = deferred();
  const checkSaid = () => {
    if (workers.every((w) => w.said || w.lost)) allSaid.resolve();
  };
  const declareLost = (rank: number, now: number) => {
    const w = workers[rank];
    w.lost = true;
    if (!w.done) active--;
    // Its items not reported yet: written before it went silent (whole: writes are atomic), or not done.
    const written = new Set([...w.items].filter(([, item]) => job.exists?.(item)).map(([name]) => name));
    const record: LostRank = { rank, host: live!.hosts[rank] ?? '?', silentSeconds: Math.round((now - w.seen) / 100) / 10,
      items: [...w.items.keys()].filter((name) => !written.has(name)) };
    lost.push(record);
    live!.onLost?.(record);
    for (const [name, item] of w.items) {
      opts.onItem(written.has(name)
        ? { name, ok: true, seconds: 0, output: job.output?.(item) }
        : { name, ok: false, error: `not done: rank ${rank} on ${record.host} was lost (no sign of life for ${record.silentSeconds} s)`, seconds: 0 });
    }
    settle();
    checkSaid();
  };
  // Liveness: heartbeats out, a watchdog, and the workers' heartbeats and goodbyes in.
  let timer: NodeJS.Timeout | undefined;
  if (live) {
    timer = setInterval(() => {
      const now = performance.now();
      for (let r = 1; r < comm.size; r++) {
        const w = workers[r];
        if (w.lost) continue;
        // A worker is watched until its goodbye (which follows its last request at once).
        if (!w.said && now - w.seen > live.timeoutMs) declareLost(r, now);
        else post(comm, { kind: 'alive' } satisfies Control, r, TAG_CONTROL);
      }
    }, intervalOf(live));
    // Heartbeats alone keep no process alive (pending MPI requests and work do).
    timer.unref();
    void (async () => {
      while (workers.some((w) => !w.said && !w.lost)) {
        const { data, source } = await comm.recvObjectAny(TAG_CONTROL);
        workers[source].seen = performance.now();
        if ((data as Control).kind === 'bye') workers[source].said = true;
        checkSaid();
      }
    })();
  } else {
    allSaid.resolve();
  }
  void serve();
  const own = opts.rootComputes === false ? Promise.resolve() : runLanes(job, ownSource, opts.lanes, (o) => {
    opts.onLocalItem?.(o);
    opts.onItem(o);
  }, () => queue.length >= comm.size);
  await Promise.all([allAnswered.promise, own]);
  await awaitAnswers();
  if (live) {
    // The goodbyes of ranks that finished are on their way (heartbeats go on meanwhile).
    await allSaid.promise;
    clearInterval(timer);
    const liveRanks = workers.map((_, r) => r).filter((r) => r > 0 && !workers[r].lost);
    await Promise.all(liveRanks.map((r) => comm.sendObject({ kind: 'end', lost: lost.length } satisfies Control, r, TAG_CONTROL)));
  }
  return { lost, lostElsewhere: 0 };
}

async function runWorker<I, D, R>(comm: Messenger, job: Job<I, D, R>, opts: DispatchOptions): Promise<DispatchResult> {
  const pending: ItemOutcome[] = [];
  const buffer: I[] = [];
  const live = opts.liveness;
  let finished = false;
  let saidBye = false;
  let rootLost: LostRank | undefined;
  const rootGone = deferred();
  let seen = performance.now();
  let inFlight: Promise<void> | undefined;
  // A message to rank 0 may never complete once it is lost (a stopped process reads nothing).
  const untilRootGone = (sent: Promise<void>) => Promise.race([sent, rootGone.promise]);
  // One request at a time; lanes that find the buffer empty wait for it (or for rank 0's loss).
  const refill = () => {
    inFlight ??= (async () => {
      await untilRootGone(comm.sendObject({ outcomes: pending.splice(0), done: false } satisfies Request, 0, TAG_REQUEST));
      const work = await Promise.race([comm.recvObjectFrom(0, TAG_WORK) as Promise<Work<I>>, rootGone.promise.then(() => ({ items: [] }))]);
      seen = performance.now();
      if (work.items.length === 0) finished = true;
      buffer.push(...work.items);
    })().finally(() => { inFlight = undefined; });
    return inFlight;
  };
  const source: ItemSource<I> = {
    next: async () => {
      while (buffer.length === 0 && !finished && !opts.stop?.requested && !rootLost) await refill();
      return opts.stop?.requested || rootLost ? undefined : buffer.shift();
    },
  };
  let timer: NodeJS.Timeout | undefined;
  const ended = deferred<number>();
  if (live) {
    timer = setInterval(() => {
      const now = performance.now();
      if (now - seen > live.timeoutMs && !rootLost) {
        rootLost = { rank: 0, host: live.hosts[0] ?? '?', silentSeconds: Math.round((now - seen) / 100) / 10, items: [] };
        live.onLost?.(rootLost);
        rootGone.resolve();
        ended.resolve(0);
        clearInterval(timer);
      } else if (!saidBye) {
        post(comm, { kind: 'alive' } satisfies Control, 0, TAG_CONTROL);
      }
    }, intervalOf(live));
    // Heartbeats alone keep no process alive (pending MPI requests and work do).
    timer.unref();
    void (async () => {
      for (;;) {
        const m = (await comm.recvObjectFrom(0, TAG_CONTROL)) as Control;
        seen = performance.now();
        if (m.kind === 'end') return ended.resolve(m.lost);
      }
    })();
  }
  await runLanes(job, source, opts.lanes, (o) => {
    opts.onLocalItem?.(o);
    pending.push(o);
  });
  if (rootLost) {
    clearInterval(timer);
    return { lost: [], rootLost, lostElsewhere: 0 };
  }
  await untilRootGone(comm.sendObject({ outcomes: pending.splice(0), done: true } satisfies Request, 0, TAG_REQUEST));
  if (rootLost) {
    clearInterval(timer);
    return { lost: [], rootLost, lostElsewhere: 0 };
  }
  if (!live) return { lost: [], lostElsewhere: 0 };
  // No longer watched by rank 0, but still watching it: it may be lost before it ends the item phase.
  saidBye = true;
  await untilRootGone(comm.sendObject({ kind: 'bye' } satisfies Control, 0, TAG_CONTROL));
  const lostElsewhere = await ended.promise;
  clearInterval(timer);
  return rootLost ? { lost: [], rootLost, lostElsewhere: 0 } : { lost: [], lostElsewhere };
}
