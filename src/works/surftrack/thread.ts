/**
 * A compute thread of the surface tracking pool: builds the work once from the setup
 * (workerData), then computes the frames it is sent; result arrays are transferred back.
 */
import { workerData } from 'node:worker_threads';
import { serveTasks } from '../../executors/thread_pool.js';
import { WorkSurfaceTracking, type Frame, type SurfSetup } from './work.js';

const work = new WorkSurfaceTracking(workerData as SurfSetup);
serveTasks('surface tracking', (frame: Frame) => work.calcul(frame),
  (result) => [result.height, result.phase, result.ix, result.iy].map((a) => a.buffer as ArrayBuffer));
