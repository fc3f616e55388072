/**
 * The local executor over several JS threads (executors/threads.ts): the results of a
 * series are those of one thread, bit for bit; every item is done once; a thread that dies
 * does not hang the job.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTopology } from '../engine/run_series.js';
import { runDispatched } from '../executors/dispatch.js';
import { threadLayout, ThreadRanks } from '../executors/threads.js';
import type { Job } from '../executors/types.js';
import { readPivFile } from '../io/pivfile.js';
import type { ItemOutcome } from '../report/progress.js';
import { nanMean, writeShiftedSeries } from './helpers/series.js';

describe('local executor on threads', function () {
  this.timeout(180000);
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fluidimage-threads-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lays workers out as up to 4 lanes per thread, at most 16 threads, or as asked', () => {
    assert.deepEqual(threadLayout(1), { threads: 1, lanes: 1 });
    assert.deepEqual(threadLayout(2), { threads: 1, lanes: 2 });
    assert.deepEqual(threadLayout(5), { threads: 2, lanes: 3 });
    assert.deepEqual(threadLayout(16), { threads: 4, lanes: 4 });
    assert.deepEqual(threadLayout(64), { threads: 16, lanes: 4 });
    assert.deepEqual(threadLayout(100), { threads: 15, lanes: 7 });
    assert.deepEqual(threadLayout(6, 1), { threads: 1, lanes: 6 });
    assert.deepEqual(threadLayout(6, 4), { threads: 3, lanes: 2 });
    assert.deepEqual(threadLayout(2, 2), { threads: 2, lanes: 1 });
  });

  it('3 threads give the results of 1 thread, bit for bit, each pair its own', async () => {
    const shifts: [number, number][] = [[1.5, -2], [-3, 0.5], [2.25, 2.75], [0, -1.25], [-1.5, -3], [3, 1], [0.5, 0.5]];
    const images = join(dir, 'images');
    await writeShiftedSeries(images, 128, shifts);
    const run = async (out: string, threads: number) => {
      const code = await runTopology('piv', { path: images, output: join(dir, out), how: 'recompute', executor: 'local', workers: 3, threads,
        quiet: true, set: ['piv0.shape_crop_im0=32', 'multipass.number=2'] });
      assert.equal(code, 0);
      return (await readdir(join(dir, out))).filter((f) => f.endsWith('.h5')).sort();
    };
    const one = await run('one', 1);
    const three = await run('three', 3);
    assert.equal(three.length, shifts.length);
    assert.deepEqual(three, one);
    for (const [k, name] of three.entries()) {
      const a = await readPivFile(join(dir, 'one', name));
      const b = await readPivFile(join(dir, 'three', name));
      for (const [p, pass] of b.passes.entries()) {
        assert.deepEqual(pass.deltaxs, a.passes[p].deltaxs, `${name} pass ${p}`);
        assert.deepEqual(pass.deltays, a.passes[p].deltays, `${name} pass ${p}`);
        assert.deepEqual(pass.final?.deltaxs_final, a.passes[p].final?.deltaxs_final, `${name} pass ${p} final`);
      }
      const last = b.passes[b.passes.length - 1];
      assert.ok(Math.abs(nanMean(last.deltaxs) - shifts[k][0]) < 0.05, `${name}: dx ${nanMean(last.deltaxs)}`);
      assert.ok(Math.abs(nanMean(last.deltays) - shifts[k][1]) < 0.05, `${name}: dy ${nanMean(last.deltays)}`);
    }
    // The job's log says how the run was spread, and lists every pair once.
    const jobs = (await readdir(join(dir, 'three'))).filter((f) => f.startsWith('job_'));
    const log = await readFile(join(dir, 'three', jobs[0], 'log_rank0000.txt'), 'utf8');
    assert.match(log, /3 threads x 1 lane/);
    const results = await readFile(join(dir, 'three', jobs[0], 'results_rank0000.txt'), 'utf8');
    assert.deepEqual(results.trim().split('\n').sort(), three, 'every result listed once');
    assert.equal((log.match(/^.*\bdone im\d.*$/gm) ?? []).length, shifts.length, log);
  });

  it('a thread that dies is reported and does not hang the job; thread 0 does the items', async () => {
    const done: number[] = [];
    const job: Job<number, number, number> = {
      items: Array.from({ length: 10 }, (_, i) => i),
      name: (i) => `item${i}`,
      read: async (i) => i,
      compute: async (d) => d * 2,
      write: async (r) => {
        done.push(r / 2);
      },
    };
    // An unknown topology: the thread throws while building its job.
    const ranks = new ThreadRanks(2, new URL('../engine/thread_rank.js', import.meta.url), (rank) => ({ topology: 'no-such-topology', params: {}, outputDir: dir, lanes: 1, rank, size: 2 }));
    const outcomes: ItemOutcome[] = [];
    await runDispatched(ranks, job, { lanes: 1, onItem: (o) => outcomes.push(o) });
    await ranks.joined();
    assert.deepEqual(done.sort((a, b) => a - b), job.items);
    assert.equal(outcomes.length, 10);
    assert.equal(ranks.failures.length, 1);
    assert.match(ranks.failures[0], /thread 1: .*Unknown topology "no-such-topology"/);
  });
});
