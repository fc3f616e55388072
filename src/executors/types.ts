/**
 * What an executor runs: a list of independent items, each read, computed and
 * written. Executors decide where and how many at once; they know nothing of PIV.
 */
import type { ItemOutcome } from '../report/progress.js';
import type { StopRequest } from './stop.js';

export interface Job<I, D, R> {
  /** Items still to be processed. */
  items: readonly I[];
  /** A short name of an item for progress and error reports. */
  name(item: I): string;
  /** Input of one item (image reading); runs ahead of compute. */
  read(item: I): Promise<D>;
  /** The work itself. */
  compute(data: D, item: I): Promise<R>;
  /**
   * Called once the computation of an item is over, successful or not: the item's input is
   * no longer needed and its big arrays may be reused for the next reads (optional).
   */
  recycle?(data: D): void;
  /** Output of one item (atomic file write). */
  write(result: R, item: I): Promise<void>;
  /** The file an item's result goes to, for the job's results list (optional). */
  output?(item: I): string;
  /**
   * Whether the item's result is there and whole (optional): the MPI executor asks it of
   * the items of a rank lost before it reported them (it may have written them).
   */
  exists?(item: I): boolean;
}

export interface ExecutorOptions {
  /** Items computed at once. */
  workers: number;
  /** Called after each item, successful or not. */
  onItem(outcome: ItemOutcome): void;
  /** When requested, no new item starts. */
  stop?: StopRequest;
}

export type Executor = <I, D, R>(job: Job<I, D, R>, opts: ExecutorOptions) => Promise<void>;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Runs the read and compute steps of an item and starts its write, without waiting for
 * the write: `written` settles with the item's outcome. The caller can compute the next
 * item while this one is written (the write runs on the JS thread, the computations in
 * native threads). Never throws.
 */
export async function computeThenWrite<I, D, R>(job: Job<I, D, R>, item: I, data: Promise<Settled<D>>): Promise<{ written: Promise<ItemOutcome> }> {
  const t0 = performance.now();
  const name = job.name(item);
  const seconds = () => (performance.now() - t0) / 1000;
  let result: R;
  try {
    const d = await data;
    if (!d.ok) throw d.error;
    try {
      result = await job.compute(d.value, item);
    } finally {
      job.recycle?.(d.value);
    }
  } catch (e) {
    return { written: Promise.resolve({ name, ok: false, error: message(e), seconds: seconds() }) };
  }
  // The write starts on the next turn of the event loop, after the lane has dispatched its
  // next item's computation: writers that work synchronously on the JS thread (h5wasm, ~10
  // ms per PIV result) would otherwise hold that lane's core idle while they run.
  const written = nextTurn().then(() => job.write(result, item)).then(
    (): ItemOutcome => ({ name, ok: true, seconds: seconds(), output: job.output?.(item) }),
    (e: unknown): ItemOutcome => ({ name, ok: false, error: message(e), seconds: seconds() }));
  return { written };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Runs one item through read, compute and write; never throws. */
export async function runItem<I, D, R>(job: Job<I, D, R>, item: I, data: Promise<Settled<D>>): Promise<ItemOutcome> {
  const t0 = performance.now();
  const name = job.name(item);
  try {
    const d = await data;
    if (!d.ok) throw d.error;
    let r: R;
    try {
      r = await job.compute(d.value, item);
    } finally {
      job.recycle?.(d.value);
    }
    await job.write(r, item);
    return { name, ok: true, seconds: (performance.now() - t0) / 1000, output: job.output?.(item) };
  } catch (e) {
    return { name, ok: false, error: e instanceof Error ? e.message : String(e), seconds: (performance.now() - t0) / 1000 };
  }
}

export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A promise that never rejects, so reads started ahead cannot become unhandled rejections. */
export function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
}
