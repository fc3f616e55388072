/**
 * Surface tracking computes in JavaScript: to use several cores on one machine, frames are
 * computed in worker threads (executors/thread_pool.ts), started when needed (at most
 * `maxThreads`: the executor keeps no more frames in flight than its workers) and each built
 * once from the setup. A thread holds the process open only while it computes, so no
 * explicit shutdown is needed. Under MPI a rank has one frame in flight: one thread, which
 * also keeps the rank's event loop free to answer the other ranks. Results are identical
 * inline or in threads.
 */
import { ThreadPool } from '../../executors/thread_pool.js';
import { WorkSurfaceTracking, type Frame, type SurfResult, type SurfSetup } from './work.js';

export interface SurfCompute {
  run(frame: Frame): Promise<SurfResult>;
}

/** On the calling thread (maxThreads 0) or in up to maxThreads worker threads. */
export function makeSurfCompute(setup: SurfSetup, maxThreads: number): SurfCompute {
  if (maxThreads <= 0) {
    const work = new WorkSurfaceTracking(setup);
    return { run: async (frame) => work.calcul(frame) };
  }
  // The image is copied (structured clone), not transferred: its buffer may be shared.
  return new ThreadPool<Frame, SurfResult>({
    script: new URL('./thread.js', import.meta.url), workerData: setup, maxThreads, what: 'surface tracking',
  });
}
