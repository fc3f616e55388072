/** How a series command is run: where its parameters come from and how items are spread. */
import type { ParamOptions } from '../params/resolve.js';
import type { Summary } from '../report/progress.js';

export interface RunOptions extends ParamOptions {
  executor: 'auto' | 'local' | 'sequential' | 'mpi';
  /** Items at once (local), or per rank (MPI). */
  workers?: number;
  /** Local executor: JS threads its workers are spread over (default: executors/threads.ts threadLayout). */
  threads?: number;
  quiet?: boolean;
  /** MPI: seconds without a sign of life after which a rank counts as lost (engine/liveness.ts). */
  rankTimeout?: number;
  /** Called once with the job's summary (on rank 0 under MPI) and its output directory (the library's runSeries). */
  onSummary?: (summary: Summary, outputDir: string) => void;
}
