/**
 * A compute thread of the preprocessing pool: builds the work once from the tools
 * parameters (workerData), then processes the items it is sent. Images travel as
 * transferred buffers, never copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ParamTree } from '../piv/types.js';
import type { TaskMessage, ReplyMessage } from './pool.js';
import { WorkPreproc } from './work.js';

const port = parentPort;
if (port === null) throw new Error('thread.js runs as a worker thread of the preprocessing pool');
const work = new WorkPreproc(workerData as ParamTree);

port.on('message', (task: TaskMessage) => {
  let reply: ReplyMessage;
  let transfer: ArrayBuffer[] = [];
  try {
    const images = work.calcul(task.input);
    reply = { id: task.id, ok: true, images };
    transfer = images.map((im) => im.buffer as ArrayBuffer);
  } catch (e) {
    reply = { id: task.id, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, transfer);
});
