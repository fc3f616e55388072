/**
 * What a topology declares to the engine (engine/run_series.ts): its parameters, how it
 * plans a series into a job (rank 0, or the only process), and how other ranks or threads
 * build the same job's steps. Each topology exports one TopologySpec, listed once in
 * topologies/registry.ts.
 */
import type { Job } from '../executors/types.js';
import type { Group } from '../params/schema.js';
import type { ParamTree } from '../params/tree.js';

export interface PlannedJob<I, D, R> {
  job: Job<I, D, R>;
  outputDir: string;
  /** Items skipped because their result exists (`how: complete`). */
  skipped: number;
  total: number;
  /** Releases what the plan holds (e.g. a pool of worker threads), when the job is over. */
  close?(): Promise<void>;
}

/** A worker's job: the steps alone, with an optional `close` called at the end. */
export type WorkerJob<I, D, R> = Job<I, D, R> & { close?(): Promise<void> };

export interface TopologySpec<I, D, R> {
  /** A topology of one result per item (the default); 'reduce' specs are ReduceTopologySpec. */
  kind?: 'series';
  /** Command and log label: 'piv', 'bos'. */
  name: string;
  /** What an item is, for messages: 'pair', 'image'. */
  itemLabel: string;
  schema: Group;
  /**
   * The items still to compute, the output directory and the steps (rank 0 / local).
   * `threadsPerItem`: native threads inside one item; `workers`: items at once.
   */
  plan(params: ParamTree, opts: { threadsPerItem: number; workers: number }): Promise<PlannedJob<I, D, R>>;
  /**
   * The steps alone, for MPI ranks other than 0 and worker threads (items come from rank
   * 0); absent: no MPI executor for this topology.
   */
  workerJob?(params: ParamTree, outputDir: string, lanes: number): Promise<WorkerJob<I, D, R>>;
  /**
   * The local executor may spread the lanes over JS threads (executors/threads.ts): for
   * topologies whose items need their JS thread (glue, HDF5 writes). Not for those that
   * compute in their own thread pool already (preproc, im2im).
   */
  threads?: boolean;
  /**
   * Items in flight per MPI rank when --workers is not given (default 1: ranks are the
   * parallelism); 'cores' for topologies that compute an item in a thread pool of their own.
   */
  defaultLanes?: 'cores';
}

/** A spec whose item types are not known to the caller (registry, thread entry). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTopologySpec = TopologySpec<any, any, any>;

/** An array a process combines with the other processes' after a sweep: added, or its minimum or maximum taken element-wise. */
export interface PartialArray {
  data: Float32Array | Float64Array;
  op: 'sum' | 'min' | 'max';
}

/**
 * The sweeps of a reducing topology over its series, in one process: items only add to
 * this process's partial results; after each sweep the engine combines the partials of
 * every lane and rank on rank 0, which makes what every rank needs for the next sweep.
 */
export interface Reduction<I, D> {
  /** Sweeps over the series (mean image: 1; ensemble correlation: one per pass). */
  rounds: number;
  /** The steps of sweep `round` over `items` (rank 0's or the local list; the others receive items from rank 0). */
  job(round: number, items: I[]): Job<I, D, void>;
  /** This process's partials after sweep `round` (every lane merged): the same names and sizes on every rank. */
  partials(round: number): Record<string, PartialArray>;
  /**
   * Rank 0 (or the only process): the totals of sweep `round` over every rank; returns what
   * the ranks need for the next sweep (JSON-able), then given to `receive` on every rank.
   */
  combine(round: number, totals: Record<string, Float32Array | Float64Array>): Promise<unknown>;
  /** Every rank, rank 0 included: the message of `combine` after sweep `round`. */
  receive(round: number, message: unknown): void;
}

export interface ReducePlan<I, D> {
  outputDir: string;
  /** Items of the series (all of them: the result is one file). */
  items: I[];
  /** The result is there already (`how: complete`): nothing to do. */
  upToDate: boolean;
  /** What the other ranks need to build their reduction (JSON-able: e.g. the images' size). */
  shared: unknown;
  reduction: Reduction<I, D>;
  /** Rank 0 or local, after the last sweep: writes the result (atomically); `failed`: names of the items left out. Returns a line for the user. */
  write(failed: string[]): Promise<string>;
  /** The lock scope and job-directory prefix of a result written into another job's directory (engine/job_start.ts JobPlace). */
  place?: { scope: string; prefix: string };
  /** The path printed on stdout at the end (default: outputDir). */
  printed?: string;
}

/**
 * A topology that reduces a series to one result (mean image, ensemble correlation): the
 * engine's reduction runner (engine/run_reduction.ts) runs its sweeps with the same
 * executors, lock, job directory, progress and MPI handling as the series runner.
 */
export interface ReduceTopologySpec<I, D> {
  kind: 'reduce';
  name: string;
  itemLabel: string;
  schema: Group;
  /** Rank 0 or local: the items, output, and this process's reduction. */
  plan(params: ParamTree, opts: { lanes: number }): Promise<ReducePlan<I, D>>;
  /** MPI ranks other than 0: their reduction, from the plan's `shared`. */
  workerReduction(params: ParamTree, shared: unknown, lanes: number): Promise<Reduction<I, D>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyReduceSpec = ReduceTopologySpec<any, any>;
