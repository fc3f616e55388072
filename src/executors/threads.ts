/**
 * The local executor's lanes spread over several JS threads (worker_threads) of one process.
 *
 * The heavy work of an item runs in native threads, but each item also needs its JS thread:
 * validation and interpolation glue, the HDF5 write (h5wasm runs on the JS thread), image
 * decoding hand-offs. With every lane on one JS thread, those steps of different items
 * queue behind each other (a result being written holds up the next pass of another pair),
 * and one JS thread caps a process at a few dozen pairs per second whatever its cores.
 * Here, thread 0 (the main thread) plans the job and hands items out exactly as rank 0 of
 * an MPI job does (executors/dispatch.ts, the same code), the other threads are its
 * "ranks": each builds the topology's job from the parameters and reads, computes and
 * writes its items itself. Messages go over MessagePorts instead of MPI.
 */
import { Worker } from 'node:worker_threads';
import type { Messenger } from './dispatch.js';
import { rankGoneRequest } from './dispatch.js';

/**
 * Threads and lanes per thread for `workers` pairs at once, with at most `threads` threads.
 * By default up to LANES_PER_THREAD lanes share a thread: one JS thread keeps about five
 * pairs of 1024x1024 (3 passes) busy before its own work (~25 ms per pair: glue, HDF5
 * write) becomes the limit, while each extra thread is a V8 isolate of its own (~30-50 MB,
 * its own h5wasm to compile and warm up): on 2 cores, 2 lanes on one thread measured as
 * fast as, or faster than, 2 threads. At most MAX_THREADS threads; beyond, more lanes each.
 */
export function threadLayout(workers: number, threads?: number): { threads: number; lanes: number } {
  const wanted = threads ?? Math.min(MAX_THREADS, Math.ceil(workers / LANES_PER_THREAD));
  const lanes = Math.max(1, Math.ceil(workers / Math.max(1, wanted)));
  return { threads: Math.max(1, Math.ceil(workers / lanes)), lanes };
}
const LANES_PER_THREAD = 4;
const MAX_THREADS = 16;

/** What a worker thread needs to build its job (the entry module given to ThreadRanks, e.g. engine/thread_rank.ts). */
export interface ThreadRankData {
  /** TopologySpec.name: 'piv', 'bos', ... */
  topology: string;
  params: unknown;
  outputDir: string;
  lanes: number;
  rank: number;
  size: number;
}

interface Envelope {
  tag: number;
  data: unknown;
}

/** Messages by tag and source, and receivers waiting for them. */
class Mailbox {
  private readonly messages: { source: number; tag: number; data: unknown }[] = [];
  private readonly waiting: { tag: number; source?: number; resolve: (m: { data: unknown; source: number }) => void }[] = [];

  put(source: number, tag: number, data: unknown): void {
    const w = this.waiting.findIndex((x) => x.tag === tag && (x.source === undefined || x.source === source));
    if (w >= 0) this.waiting.splice(w, 1)[0].resolve({ data, source });
    else this.messages.push({ source, tag, data });
  }

  take(tag: number, source?: number): Promise<{ data: unknown; source: number }> {
    const i = this.messages.findIndex((m) => m.tag === tag && (source === undefined || m.source === source));
    if (i >= 0) {
      const m = this.messages.splice(i, 1)[0];
      return Promise.resolve({ data: m.data, source: m.source });
    }
    return new Promise((resolve) => this.waiting.push({ tag, source, resolve }));
  }
}

/** Thread 0's side: the worker threads started, as ranks 1..size-1 of a Messenger. */
export class ThreadRanks implements Messenger {
  readonly rank = 0;
  readonly size: number;
  /** Why threads stopped before their end (uncaught errors), one line each. */
  readonly failures: string[] = [];
  private readonly workers: Worker[];
  private readonly mailbox = new Mailbox();
  private readonly exited: Promise<void>[];

  /**
   * Starts `size - 1` threads running the module `entry` (the caller's: this executor knows
   * nothing of topologies); `data(rank)` is each one's ThreadRankData.
   */
  constructor(size: number, entry: URL, data: (rank: number) => ThreadRankData) {
    this.size = size;
    this.workers = Array.from({ length: size - 1 }, (_, k) => new Worker(entry, { workerData: data(k + 1) }));
    this.exited = this.workers.map((w, k) => new Promise<void>((resolve) => {
      const rank = k + 1;
      let finished = false;
      w.on('message', (m: Envelope) => {
        if (m.tag === THREAD_FINISHED) finished = true;
        else this.mailbox.put(rank, m.tag, m.data);
      });
      w.on('error', (e) => this.failures.push(`thread ${rank}: ${e instanceof Error ? e.message : String(e)}`));
      w.on('exit', (code) => {
        if (!finished) {
          if (code !== 0 && this.failures.every((f) => !f.startsWith(`thread ${rank}:`))) this.failures.push(`thread ${rank}: exited with code ${code}`);
          // Thread 0 must not wait for it any longer: it counts as done (its items in
          // flight are not, and a rerun with saving.how=complete does them).
          const gone = rankGoneRequest();
          this.mailbox.put(rank, gone.tag, gone.data);
        }
        resolve();
      });
    }));
  }

  sendObject(obj: unknown, dest: number, tag: number): Promise<void> {
    this.workers[dest - 1].postMessage({ tag, data: obj } satisfies Envelope);
    return Promise.resolve();
  }

  recvObjectAny(tag: number): Promise<{ data: unknown; source: number }> {
    return this.mailbox.take(tag);
  }

  async recvObjectFrom(source: number, tag: number): Promise<unknown> {
    return (await this.mailbox.take(tag, source)).data;
  }

  /** Resolves when every thread has ended (they end by themselves once told there is no more work). */
  async joined(): Promise<void> {
    await Promise.all(this.exited);
  }

  /** Stops every thread now (after an error of thread 0). */
  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Sent by a worker thread once its job is closed, so that its exit is not taken for a failure. */
export const THREAD_FINISHED = -1;

/** A worker thread's side: rank `rank` of `size`, talking to thread 0 over `port`. */
export function parentMessenger(port: { postMessage(m: unknown): void; on(e: 'message', f: (m: Envelope) => void): unknown },
  rank: number, size: number): Messenger {
  const mailbox = new Mailbox();
  port.on('message', (m: Envelope) => mailbox.put(0, m.tag, m.data));
  return {
    rank,
    size,
    sendObject: (obj, dest, tag) => {
      if (dest !== 0) throw new Error(`thread ${rank}: messages go to thread 0 only (not ${dest})`);
      port.postMessage({ tag, data: obj } satisfies Envelope);
      return Promise.resolve();
    },
    recvObjectAny: (tag) => mailbox.take(tag),
    recvObjectFrom: async (source, tag) => (await mailbox.take(tag, source)).data,
  };
}
