import assert from 'node:assert/strict';
import { runMpi, type Messenger } from '../executors/mpi.js';
import type { Job } from '../executors/types.js';
import type { ItemOutcome } from '../report/progress.js';

/** In-process stand-in for MPI: one mailbox per (destination, tag), JSON round trips. */
function fakeWorld(size: number): Messenger[] {
  type Msg = { data: string; source: number };
  const boxes = new Map<string, { queue: Msg[]; waiters: ((m: Msg) => void)[] }>();
  const box = (dest: number, tag: number) => {
    const k = `${dest}/${tag}`;
    if (!boxes.has(k)) boxes.set(k, { queue: [], waiters: [] });
    return boxes.get(k)!;
  };
  const take = (dest: number, tag: number, match: (m: Msg) => boolean): Promise<Msg> => {
    const b = box(dest, tag);
    const i = b.queue.findIndex(match);
    if (i >= 0) return Promise.resolve(b.queue.splice(i, 1)[0]);
    return new Promise((resolve) => {
      const waiter = (m: Msg) => resolve(m);
      (waiter as unknown as { match: typeof match }).match = match;
      b.waiters.push(waiter);
    });
  };
  return Array.from({ length: size }, (_, rank) => ({
    rank,
    size,
    sendObject: async (obj, dest, tag) => {
      const m = { data: JSON.stringify(obj), source: rank };
      const b = box(dest, tag);
      const wi = b.waiters.findIndex((w) => (w as unknown as { match: (m: Msg) => boolean }).match(m));
      // Deliver later, as a network would.
      setTimeout(() => (wi >= 0 ? b.waiters.splice(wi, 1)[0](m) : b.queue.push(m)), 1);
    },
    recvObjectAny: async (tag) => {
      const m = await take(rank, tag, () => true);
      return { data: JSON.parse(m.data), source: m.source };
    },
    recvObjectFrom: async (source, tag) => JSON.parse((await take(rank, tag, (m) => m.source === source)).data),
  }));
}

function job(items: number[], log: Map<number, number[]>, rank: number, failing: number[] = []): Job<number, number, number> {
  return {
    items,
    name: (i) => `pair${i}`,
    read: async (i) => i,
    compute: async (i) => {
      await new Promise((r) => setTimeout(r, rank === 1 ? 15 : 3)); // rank 1 is slow
      if (failing.includes(i)) throw new Error(`cannot compute pair${i}`);
      return i;
    },
    write: async (i) => {
      if (!log.has(rank)) log.set(rank, []);
      log.get(rank)!.push(i);
    },
  };
}

describe('MPI executor (dispatch logic, in-process ranks)', () => {
  for (const size of [1, 2, 3]) {
    it(`processes every item exactly once over ${size} rank(s); rank 0 gets every outcome`, async () => {
      const world = fakeWorld(size);
      const items = Array.from({ length: 40 }, (_, i) => i);
      const written = new Map<number, number[]>();
      const outcomes: ItemOutcome[] = [];
      await Promise.all(world.map((comm) => runMpi(comm, job(comm.rank === 0 ? items : [], written, comm.rank, [7]), {
        lanes: 1,
        onItem: (o) => {
          assert.equal(comm.rank, 0, 'outcomes are reported on rank 0 only');
          outcomes.push(o);
        },
      })));
      const all = [...written.values()].flat().sort((a, b) => a - b);
      assert.deepEqual(all, items.filter((i) => i !== 7));
      assert.equal(outcomes.length, 40);
      assert.deepEqual(outcomes.filter((o) => !o.ok).map((o) => o.name), ['pair7']);
      if (size === 3) {
        // Dynamic balance: the slow rank 1 takes fewer items than the fast rank 2.
        assert.ok((written.get(1)?.length ?? 0) < (written.get(2)?.length ?? 0), JSON.stringify([...written]));
        assert.ok((written.get(0)?.length ?? 0) > 0, 'rank 0 computes too');
      }
    });
  }

  it('ends cleanly with fewer items than ranks', async () => {
    const world = fakeWorld(3);
    const written = new Map<number, number[]>();
    await Promise.all(world.map((comm) => runMpi(comm, job(comm.rank === 0 ? [1] : [], written, comm.rank), {
      lanes: 2, onItem: () => {},
    })));
    assert.deepEqual([...written.values()].flat(), [1]);
  });
});
