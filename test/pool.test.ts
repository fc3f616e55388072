/**
 * Arrays recycled from one item of a series to the next (io/pool.ts): the pools themselves,
 * and a PIV series whose pairs differ, computed two at once with recycled image arrays:
 * every result must be that of its own pair.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTopology } from '../engine/run_series.js';
import { readPivFile } from '../io/pivfile.js';
import { BytePool, Float32Pool, imagePool } from '../io/pool.js';
import { nanMean, writeShiftedSeries } from './helpers/series.js';

describe('array pools', () => {
  it('Float32Pool reuses arrays of the exact length, keeps at most `max`, refuses views', () => {
    const pool = new Float32Pool(2);
    const a = pool.take(100);
    const b = pool.take(100);
    const c = pool.take(50);
    pool.give(a);
    pool.give(b);
    pool.give(c); // over max: the oldest (a) goes
    assert.equal(pool.take(50), c);
    assert.equal(pool.take(100), b);
    assert.notEqual(pool.take(100), a);
    const whole = new Float32Array(10);
    pool.give(whole.subarray(2));
    assert.notEqual(pool.take(8).buffer, whole.buffer);
  });

  it('BytePool gives views of the asked length on the smallest buffer that fits', () => {
    const pool = new BytePool(4);
    const big = pool.take(1000);
    const small = pool.take(100);
    assert.equal(big.length, 1000);
    pool.give(big);
    pool.give(small);
    const again = pool.take(90);
    assert.equal(again.length, 90);
    assert.equal(again.buffer, small.buffer);
    const larger = pool.take(1010); // within the headroom of the 1000-byte buffer
    assert.equal(larger.buffer, big.buffer);
  });
});

describe('PIV series with recycled image arrays', function () {
  this.timeout(120000);
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fluidimage-pool-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives each pair its own displacement, two pairs at once', async () => {
    const n = 128;
    const shifts: [number, number][] = [[1.5, -2], [-3, 0.5], [2.25, 2.75], [0, -1.25], [-1.5, -3], [3, 1]];
    const images = join(dir, 'images');
    await writeShiftedSeries(images, n, shifts);
    const given: Float32Array[] = [];
    const give = imagePool.give.bind(imagePool);
    imagePool.give = (a: Float32Array) => {
      given.push(a);
      give(a);
    };
    try {
      // One JS thread (--threads 1): the pool watched here is that thread's.
      const code = await runTopology('piv', { path: images, output: join(dir, 'out'), how: 'recompute', executor: 'local', workers: 2, threads: 1,
        quiet: true, set: ['piv0.shape_crop_im0=32', 'multipass.number=2'] });
      assert.equal(code, 0);
    } finally {
      delete (imagePool as { give?: unknown }).give; // back to the prototype's
    }
    assert.equal(given.length, 2 * shifts.length, 'both images of every pair are given back');
    assert.ok(new Set(given.map((a) => a.buffer)).size < given.length, 'arrays were reused across pairs');
    const files = (await readdir(join(dir, 'out'))).filter((f) => f.endsWith('.h5')).sort();
    assert.equal(files.length, shifts.length);
    for (const [k, [dx, dy]] of shifts.entries()) {
      const r = await readPivFile(join(dir, 'out', files[k]));
      const last = r.passes[r.passes.length - 1];
      const [mx, my] = [nanMean(last.deltaxs), nanMean(last.deltays)];
      assert.ok(Math.abs(mx - dx) < 0.05 && Math.abs(my - dy) < 0.05, `${files[k]}: mean (${mx}, ${my}), expected (${dx}, ${dy})`);
    }
  });
});
