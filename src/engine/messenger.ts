import type { Messenger } from '../executors/dispatch.js';
import type { Comm } from '../mpi/comm.js';

/** The communicator as the MPI executor uses it: nonblocking calls awaited on the event loop. */
export function messenger(comm: Comm, anySource: number): Messenger {
  return {
    rank: comm.rank,
    size: comm.size,
    sendObject: (obj, dest, tag) => comm.isendObject(obj, dest, tag).wait(),
    recvObjectAny: async (tag) => {
      const m = await comm.irecvObject(anySource, tag).wait();
      return { data: m.value, source: m.source };
    },
    recvObjectFrom: async (source, tag) => (await comm.irecvObject(source, tag).wait()).value,
  };
}
