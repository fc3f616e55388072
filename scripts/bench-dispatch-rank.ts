/**
 * One rank of the dispatch benchmark (run by scripts/bench-mpi.ts under mpirun): the MPI
 * executor with items that cost nothing, so that what is timed is rank 0 answering
 * requests. Workers time each request (sent -> items received). With `--root-work MS`,
 * rank 0 also computes items of its own that hold its JS thread MS milliseconds each (as a
 * PIV result write does) between asynchronous waits (the native computation).
 * Prints one JSON line per rank: { rank, seconds, items, latencies (ms, workers) }.
 */
import { parseArgs } from 'node:util';
import { runDispatched, type Messenger } from '../executors/dispatch.js';
import { messenger } from '../engine/messenger.js';
import * as mpi from '../mpi/comm.js';

const { values } = parseArgs({ options: { items: { type: 'string', default: '20000' }, 'root-work': { type: 'string', default: '0' }, batch: { type: 'string', default: '4' } } });
const comm = mpi.world();
const rootWork = Number(values['root-work']);
const items = comm.rank === 0 ? Array.from({ length: Number(values.items) }, (_, k) => k) : [];
const base = messenger(comm, mpi.ANY_SOURCE);
const latencies: number[] = [];
let sentAt = 0;
// The worker's request (tag 101) and rank 0's answer (tag 102), timed around the messenger.
const timed: Messenger = {
  ...base,
  rank: base.rank,
  size: base.size,
  sendObject: (obj, dest, tag) => {
    if (tag === 101) sentAt = performance.now();
    return base.sendObject(obj, dest, tag);
  },
  recvObjectFrom: async (source, tag) => {
    const m = await base.recvObjectFrom(source, tag);
    if (tag === 102) latencies.push(performance.now() - sentAt);
    return m;
  },
};
const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* the JS thread held, as by a synchronous HDF5 write */ }
};
comm.barrier();
const t0 = performance.now();
let own = 0;
await runDispatched(timed, {
  items,
  name: (i: number) => String(i),
  read: async (i: number) => i,
  compute: async (i: number) => {
    if (comm.rank === 0 && rootWork > 0) await new Promise((r) => setTimeout(r, 4 * rootWork));
    return i;
  },
  write: async () => {
    if (comm.rank === 0 && rootWork > 0) busy(rootWork);
    own++;
  },
}, { lanes: 1, onItem: () => undefined, maxBatch: Number(values.batch), rootComputes: comm.rank === 0 ? rootWork > 0 : true });
const seconds = (performance.now() - t0) / 1000;
comm.barrier();
const all = comm.gatherObject({ rank: comm.rank, seconds, items: own, latencies }, 0);
if (comm.rank === 0) process.stdout.write(JSON.stringify(all) + '\n');
mpi.finalize();
