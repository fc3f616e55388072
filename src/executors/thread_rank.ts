/**
 * Entry of a worker thread of the local executor (executors/threads.ts): builds the
 * topology's job from the parameters, as an MPI rank does, and runs its share of the items
 * handed out by thread 0. Outcomes go to thread 0, which records and reports them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { TopologySpec } from '../cli/run_series.js';
import type { ParamTree } from '../works/piv/types.js';
import { runMpi } from './mpi.js';
import { parentMessenger, THREAD_FINISHED, type ThreadRankData } from './threads.js';

/** The topologies that have a worker job, by TopologySpec.name. */
const TOPOLOGIES: Record<string, () => Promise<TopologySpec<unknown, unknown, unknown>>> = {
  piv: async () => (await import('../cli/piv.js')).pivTopology as unknown as TopologySpec<unknown, unknown, unknown>,
  bos: async () => (await import('../cli/bos.js')).bosTopology as unknown as TopologySpec<unknown, unknown, unknown>,
  surftrack: async () => (await import('../cli/surftrack.js')).surftrackTopology as unknown as TopologySpec<unknown, unknown, unknown>,
};

async function main(port: NonNullable<typeof parentPort>, data: ThreadRankData): Promise<void> {
  const load = TOPOLOGIES[data.topology];
  if (load === undefined) throw new Error(`no worker job for topology ${data.topology}`);
  const spec = await load();
  const job = await spec.workerJob!(data.params as ParamTree, data.outputDir, data.lanes);
  try {
    await runMpi(parentMessenger(port, data.rank, data.size), job, { lanes: data.lanes, onItem: () => undefined });
  } finally {
    await job.close?.();
  }
  port.postMessage({ tag: THREAD_FINISHED, data: null });
  port.close();
}

if (parentPort === null) throw new Error('thread_rank.js runs in a worker thread of the local executor');
await main(parentPort, workerData as ThreadRankData);
