/**
 * A compute thread of the preprocessing pool: builds the work once from the tools
 * parameters (workerData), then processes the items it is sent. Images travel as
 * transferred buffers, never copied.
 */
import { workerData } from 'node:worker_threads';
import { serveTasks } from '../../executors/thread_pool.js';
import type { ParamTree } from '../../params/tree.js';
import { WorkPreproc, type PreprocInput } from './work.js';

const work = new WorkPreproc(workerData as ParamTree);
serveTasks('preprocessing', (input: PreprocInput) => work.calcul(input), (images) => images.map((im) => im.buffer as ArrayBuffer));
