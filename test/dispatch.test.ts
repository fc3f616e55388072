import assert from 'node:assert/strict';
import { runDispatched, type Messenger } from '../executors/dispatch.js';
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

describe('dispatch over ranks (in-process ranks)', () => {
  for (const size of [1, 2, 3]) {
    it(`processes every item exactly once over ${size} rank(s); rank 0 gets every outcome`, async () => {
      const world = fakeWorld(size);
      const items = Array.from({ length: 40 }, (_, i) => i);
      const written = new Map<number, number[]>();
      const outcomes: ItemOutcome[] = [];
      await Promise.all(world.map((comm) => runDispatched(comm, job(comm.rank === 0 ? items : [], written, comm.rank, [7]), {
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
    await Promise.all(world.map((comm) => runDispatched(comm, job(comm.rank === 0 ? [1] : [], written, comm.rank), {
      lanes: 2, onItem: () => {},
    })));
    assert.deepEqual([...written.values()].flat(), [1]);
  });
});

/** A rank that goes silent once `frozen()` holds: its messages are dropped and its computations never end. */
function silencing(comm: Messenger, frozen: () => boolean): Messenger {
  return {
    ...comm,
    rank: comm.rank,
    size: comm.size,
    sendObject: async (obj, dest, tag) => (frozen() ? undefined : comm.sendObject(obj, dest, tag)),
  };
}

describe('dispatch over ranks: heartbeats and lost ranks (in-process ranks)', () => {
  const liveness = { timeoutMs: 300, intervalMs: 20, hosts: ['h0', 'h1', 'h2'] };

  it('a worker that goes silent is declared lost: its items in flight fail, the others finish every other item', async () => {
    const world = fakeWorld(3);
    const items = Array.from({ length: 30 }, (_, i) => i);
    const written = new Map<number, number[]>();
    let frozen = false;
    const lostSeen: string[] = [];
    const outcomes: ItemOutcome[] = [];
    const run = (comm: Messenger) => {
      const j = job(comm.rank === 0 ? items : [], written, comm.rank);
      // Results written by the lost rank before it went silent (not reported yet) are found, not redone.
      j.exists = (i) => [...written.values()].some((w) => w.includes(i));
      if (comm.rank === 2) {
        const compute = j.compute;
        j.compute = async (d, i) => {
          if ((written.get(2)?.length ?? 0) >= 2) frozen = true;
          if (frozen) return new Promise<number>(() => undefined);
          return compute(d, i);
        };
      }
      return runDispatched(comm.rank === 2 ? silencing(comm, () => frozen) : comm, j, {
        lanes: 1, onItem: (o) => outcomes.push(o),
        liveness: { ...liveness, onLost: (l) => lostSeen.push(`${comm.rank}:${l.rank}@${l.host}`) },
      });
    };
    void run(world[2]);
    const [root, other] = await Promise.all([run(world[0]), run(world[1])]);
    assert.deepEqual(root.lost.map((l) => [l.rank, l.host]), [[2, 'h2']]);
    assert.ok(root.lost[0].silentSeconds >= 0.3);
    assert.deepEqual(lostSeen, ['0:2@h2']);
    assert.equal(other.lostElsewhere, 1, 'rank 1 is told that a rank was lost');
    const failed = outcomes.filter((o) => !o.ok);
    assert.ok(failed.length >= 1);
    assert.deepEqual(failed.map((o) => o.name).sort(), [...root.lost[0].items].sort());
    for (const o of failed) assert.match(o.error!, /not done: rank 2 on h2 was lost/);
    const done = [...written.values()].flat();
    assert.equal(done.length + failed.length, items.length, 'every item is done once or reported lost');
  });

  it('a silent rank 0: the workers finish what they have, take nothing more and resolve with rootLost', async () => {
    const world = fakeWorld(3);
    const items = Array.from({ length: 30 }, (_, i) => i);
    const written = new Map<number, number[]>();
    let frozen = false;
    const run = (comm: Messenger) => {
      const j = job(comm.rank === 0 ? items : [], written, comm.rank);
      if (comm.rank === 0) {
        const compute = j.compute;
        j.compute = async (d, i) => {
          if ((written.get(0)?.length ?? 0) >= 1) frozen = true;
          if (frozen) return new Promise<number>(() => undefined);
          return compute(d, i);
        };
      }
      return runDispatched(comm.rank === 0 ? silencing(comm, () => frozen) : comm, j, { lanes: 1, onItem: () => undefined, liveness });
    };
    void run(world[0]);
    const results = await Promise.all([run(world[1]), run(world[2])]);
    for (const r of results) {
      assert.equal(r.rootLost?.rank, 0);
      assert.equal(r.rootLost?.host, 'h0');
    }
    assert.ok([...written.values()].flat().length < items.length);
  });

  it('without losses, everything ends with nothing lost; rank 0 may leave the computing to the others', async () => {
    const world = fakeWorld(3);
    const items = Array.from({ length: 20 }, (_, i) => i);
    const written = new Map<number, number[]>();
    const results = await Promise.all(world.map((comm) => runDispatched(comm, job(comm.rank === 0 ? items : [], written, comm.rank), {
      lanes: 1, onItem: () => undefined, liveness, rootComputes: false,
    })));
    assert.deepEqual(results.map((r) => [r.lost.length, r.lostElsewhere, r.rootLost]), [[0, 0, undefined], [0, 0, undefined], [0, 0, undefined]]);
    assert.equal(written.get(0), undefined, 'rank 0 computed nothing');
    assert.deepEqual([...written.values()].flat().sort((a, b) => a - b), items);
  });
});
