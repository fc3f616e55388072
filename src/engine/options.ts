/** How a series command is run: where its parameters come from and how items are spread. */
import type { ParamOptions } from '../params/resolve.js';

export interface RunOptions extends ParamOptions {
  executor: 'auto' | 'local' | 'sequential' | 'mpi';
  /** Items at once (local), or per rank (MPI). */
  workers?: number;
  /** Local executor: JS threads its workers are spread over (default: executors/threads.ts threadLayout). */
  threads?: number;
  quiet?: boolean;
  /** MPI: seconds without a sign of life after which a rank counts as lost (engine/liveness.ts). */
  rankTimeout?: number;
}
