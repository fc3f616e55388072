import assert from 'node:assert/strict';
import { local } from '../executors/local.js';
import { sequential } from '../executors/sequential.js';
import type { Executor, Job } from '../executors/types.js';
import type { ItemOutcome } from '../report/progress.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fake job recording what runs when; items listed in `bad` fail in compute, `unreadable` in read. */
function fakeJob(n: number, bad: number[] = [], unreadable: number[] = []) {
  const events: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const written: number[] = [];
  const job: Job<number, number, number> = {
    items: Array.from({ length: n }, (_, i) => i),
    name: (i) => `item${i}`,
    read: async (i) => {
      events.push(`read${i}`);
      await sleep(2);
      if (unreadable.includes(i)) throw new Error(`cannot read item${i}`);
      return i * 10;
    },
    compute: async (d, i) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      events.push(`compute${i}`);
      await sleep(10);
      inFlight--;
      if (bad.includes(i)) throw new Error(`bad item${i}`);
      return d + 1;
    },
    write: async (r, i) => {
      assert.equal(r, i * 10 + 1);
      written.push(i);
    },
  };
  return { job, events, written, maxInFlight: () => maxInFlight };
}

async function run(executor: Executor, job: Job<number, number, number>, workers: number): Promise<ItemOutcome[]> {
  const outcomes: ItemOutcome[] = [];
  await executor(job, { workers, onItem: (o) => outcomes.push(o) });
  return outcomes;
}

describe('executors', () => {
  it('local: runs every item once with at most `workers` in flight, reading ahead', async () => {
    const f = fakeJob(12);
    const outcomes = await run(local, f.job, 3);
    assert.equal(outcomes.length, 12);
    assert.ok(outcomes.every((o) => o.ok));
    assert.deepEqual([...f.written].sort((a, b) => a - b), f.job.items);
    assert.equal(f.maxInFlight(), 3);
    // Item 3 (the next round of lane 0) is read before item 0's compute has ended.
    assert.ok(f.events.indexOf('read3') < f.events.indexOf('compute3'));
    assert.ok(f.events.indexOf('read3') < f.events.indexOf('compute1'), f.events.join(' '));
  });

  it('isolates failures in read and compute: reported, the others go on', async () => {
    for (const executor of [local, sequential]) {
      const f = fakeJob(6, [2], [4]);
      const outcomes = await run(executor, f.job, 2);
      const failed = outcomes.filter((o) => !o.ok);
      assert.deepEqual(failed.map((o) => o.name).sort(), ['item2', 'item4']);
      assert.match(failed.find((o) => o.name === 'item2')!.error!, /bad item2/);
      assert.match(failed.find((o) => o.name === 'item4')!.error!, /cannot read item4/);
      assert.deepEqual([...f.written].sort(), [0, 1, 3, 5]);
    }
  });

  it('sequential: one at a time, in order', async () => {
    const f = fakeJob(4);
    await run(sequential, f.job, 4);
    assert.equal(f.maxInFlight(), 1);
    assert.deepEqual(f.written, [0, 1, 2, 3]);
  });

  it('recycles the input of every item read, once, after its compute (failed computes too)', async () => {
    for (const executor of [local, sequential]) {
      const f = fakeJob(6, [2], [4]);
      const recycled: number[] = [];
      f.job.recycle = (d) => {
        const i = d / 10;
        assert.ok(f.events.includes(`compute${i}`), `item${i} recycled before its compute`);
        assert.ok(!f.written.includes(i), `item${i} written before its input was recycled`);
        recycled.push(i);
      };
      await run(executor, f.job, 2);
      assert.deepEqual(recycled.sort(), [0, 1, 2, 3, 5]);
    }
  });

  it('copes with fewer items than workers and with no item', async () => {
    assert.equal((await run(local, fakeJob(1).job, 8)).length, 1);
    assert.equal((await run(local, fakeJob(0).job, 8)).length, 0);
  });
});
