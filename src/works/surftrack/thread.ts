/**
 * A compute thread of the surface tracking pool: builds the work once from the setup
 * (workerData), then computes the frames it is sent; result arrays are transferred back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ReplyMessage, TaskMessage } from './pool.js';
import { WorkSurfaceTracking, type SurfSetup } from './work.js';

const port = parentPort;
if (port === null) throw new Error('thread.js runs as a worker thread of the surface tracking pool');
const work = new WorkSurfaceTracking(workerData as SurfSetup);

port.on('message', (task: TaskMessage) => {
  let reply: ReplyMessage;
  let transfer: ArrayBuffer[] = [];
  try {
    const result = work.calcul(task.frame);
    reply = { id: task.id, ok: true, result };
    transfer = [result.height, result.phase, result.ix, result.iy].map((a) => a.buffer as ArrayBuffer);
  } catch (e) {
    reply = { id: task.id, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, transfer);
});
