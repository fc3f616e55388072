/**
 * Entry of a worker thread of the local executor (executors/threads.ts): builds the
 * topology's job from the parameters, as an MPI rank does, and runs its share of the items
 * handed out by thread 0. Outcomes go to thread 0, which records and reports them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runDispatched } from '../executors/dispatch.js';
import { parentMessenger, THREAD_FINISHED, type ThreadRankData } from '../executors/threads.js';
import { loadTopology } from '../topologies/registry.js';
import type { ParamTree } from '../params/tree.js';

async function main(port: NonNullable<typeof parentPort>, data: ThreadRankData): Promise<void> {
  const spec = await loadTopology(data.topology);
  if (spec.kind === 'reduce' || !spec.workerJob) throw new Error(`no worker job for topology ${data.topology}`);
  const job = await spec.workerJob(data.params as ParamTree, data.outputDir, data.lanes);
  try {
    await runDispatched(parentMessenger(port, data.rank, data.size), job, { lanes: data.lanes, onItem: () => undefined });
  } finally {
    await job.close?.();
  }
  port.postMessage({ tag: THREAD_FINISHED, data: null });
  port.close();
}

if (parentPort === null) throw new Error('thread_rank.js runs in a worker thread of the local executor');
await main(parentPort, workerData as ThreadRankData);
