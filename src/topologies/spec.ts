/**
 * What a topology declares to the engine (engine/run_series.ts): its parameters, how it
 * plans a series into a job (rank 0, or the only process), and how other ranks or threads
 * build the same job's steps. Each topology exports one TopologySpec, listed once in
 * topologies/registry.ts.
 */
import type { Job } from '../executors/types.js';
import type { Group } from '../params/schema.js';
import type { ParamTree } from '../works/piv/types.js';

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
