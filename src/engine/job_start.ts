/**
 * The start of a job in its output directory, the same for every runner: results made
 * with other parameters refused, the lock taken before the job directory is made (a
 * refused run leaves none), leftovers of killed runs removed, the parameters recorded;
 * and, during the run, a stop after a few consecutive failures for a full disk.
 */
import { JobDir } from '../report/jobdir.js';
import { OutputLock } from '../report/lock.js';
import type { ItemOutcome } from '../report/progress.js';
import { checkResultParams, startResults } from '../topologies/provenance.js';
import type { ParamTree } from '../params/tree.js';
import type { StopRequest } from '../executors/stop.js';
import { lockScope } from './run_series.js';

export interface OpenedJob {
  jobDir: JobDir;
  lock: OutputLock;
  /** To call at the end: ok when every item was done. */
  finish(ok: boolean): Promise<void>;
}

/** Refuses results of other parameters (before anything is written); prints a version note. */
export function checkResults(topology: string, params: ParamTree, outputDir: string, quiet?: boolean): void {
  const note = checkResultParams(topology, params, outputDir);
  if (note && !quiet) process.stderr.write(`${topology}: note: ${note}\n`);
}

/**
 * Where a job keeps its lock and job directory when its result is one file in a directory
 * that belongs to another job (`mean` writes into the PIV results' directory): its own
 * lock scope and job-directory prefix, and no parameters record there.
 */
export interface JobPlace {
  scope: string;
  prefix: string;
}

/** Lock, then job directory, then leftovers and the parameters record (rank 0 / local). */
export async function openJob(topology: string, params: ParamTree, outputDir: string, quiet?: boolean, place?: JobPlace): Promise<OpenedJob> {
  if (!place) checkResults(topology, params, outputDir, quiet);
  const scope = place ? place.scope : lockScope(params);
  const path = JobDir.newPath(outputDir, place?.prefix);
  const lock = OutputLock.acquire(outputDir, path, scope);
  try {
    const jobDir = new JobDir(outputDir, 0, path);
    const results = place ? { finish: async () => {} } : await startResults(topology, params, outputDir, scope);
    return { jobDir, lock, finish: results.finish };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** Failures for lack of space, in error messages (Node's, HDF5's, the image encoders'). */
const DISK_FULL = /ENOSPC|EDQUOT|no space left|disk quota exceeded|file too large|EFBIG/i;

/** Consecutive failures for a full disk after which the job stops. */
const DISK_FULL_STOP = 3;

/**
 * Wraps an item callback: after DISK_FULL_STOP consecutive items failed for lack of space,
 * no new item starts (the summary says "stopped by a full disk"); earlier results stay.
 */
export function stopOnFullDisk(stop: StopRequest, onItem: (r: ItemOutcome) => void, log: (m: string) => void): (r: ItemOutcome) => void {
  let consecutive = 0;
  return (r) => {
    onItem(r);
    consecutive = !r.ok && DISK_FULL.test(r.error ?? '') ? consecutive + 1 : 0;
    if (consecutive === DISK_FULL_STOP && !stop.requested) {
      log(`${DISK_FULL_STOP} items in a row failed for lack of space: no new item will start; free some space and rerun the same command`);
      stop.request('a full disk');
    }
  };
}
