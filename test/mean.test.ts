import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { local } from '../executors/local.js';
import { withH5File, readFloat32 } from '../io/h5.js';
import { writePivFile } from '../io/pivfile.js';
import { FieldSums } from '../works/mean_fields.js';
import { listResultFiles, meanJob, writeMean, type FinalGrid } from '../topologies/mean_piv.js';
import type { PivResult } from '../results/piv_result.js';
import { runCli } from './helpers/cli.js';

/** A one-pass result on a 2x3 grid whose final field is (a + i, b - i) at point i. */
function result(a: number, b: number, nx = 3): PivResult {
  const n = 2 * nx;
  const xs = Float32Array.from({ length: n }, (_, i) => (i % nx) * 16 + 7.5);
  const ys = Float32Array.from({ length: n }, (_, i) => Math.floor(i / nx) * 16 + 7.5);
  const dx = Float32Array.from({ length: n }, (_, i) => a + i);
  const dy = Float32Array.from({ length: n }, (_, i) => b - i);
  return {
    names: ['a.png', 'b.png'], paths: ['/a.png', '/b.png'], shape_images: [32, 16 * nx], params: {},
    passes: [{
      xs, ys, deltaxs: dx, deltays: dy, correls_max: new Float32Array(n).fill(0.9),
      errors: { keys: new Int32Array(0), values: [], codes: new Int32Array(0) }, shape_grid: [2, nx],
      final: { ixvecs_final: xs.map(Math.round), iyvecs_final: ys.map(Math.round), deltaxs_final: dx, deltays_final: dy },
    }],
  };
}

describe('time average of PIV results', () => {
  it('sums partial results exactly and skips NaN point by point', () => {
    const a = new FieldSums(2);
    a.add([1, NaN], [2, 0]);
    a.add([3, 4], [2, 1]);
    const b = new FieldSums(2);
    b.add([5, 6], [2, 2]);
    a.merge(b);
    const r = a.result();
    assert.deepEqual(Array.from(r.count), [3, 2]);
    assert.deepEqual(Array.from(r.mean_dx), [3, 5]);
    assert.ok(Math.abs(r.rms_dx[0] - Math.sqrt(8 / 3)) < 1e-6);
    assert.equal(r.rms_dy[0], 0);
    assert.ok(Math.abs(r.cov_dxdy[1] - 0.5) < 1e-6);
  });

  it('averages a directory of results, reports a file on another grid, writes the mean', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fi-mean-'));
    try {
      const meta = { program: 'test', version: '0' };
      for (const k of [0, 1, 2, 3]) await writePivFile(join(dir, `piv_0${k}-0${k + 1}.h5`), result(k, 2 * k), meta);
      await writePivFile(join(dir, 'piv_09-10.h5'), result(0, 0, 4), meta);
      const files = await listResultFiles(dir);
      assert.equal(files.length, 5);
      const state: { grid?: FinalGrid; sums?: FieldSums; used: string[] } = { used: [] };
      const failed: string[] = [];
      await local(meanJob(files, state), { workers: 2, onItem: (o) => { if (!o.ok) failed.push(`${o.name}: ${o.error}`); } });
      assert.equal(failed.length, 1);
      assert.match(failed[0], /^piv_09-10.h5: its final grid \(8 points\) differs/);
      const out = join(dir, 'mean_piv.h5');
      await writeMean(out, state.grid!, state.sums!, state.used);
      const back = await withH5File(out, 'r', (f) => ({ mean: readFloat32(f, 'mean_dx')!, rms: readFloat32(f, 'rms_dy')!, count: readFloat32(f, 'count')! }));
      // mean over k = 0..3 of (k + i) = 1.5 + i; dy = 2k - i has std 2 * std(0..3) = 2 * sqrt(1.25).
      assert.deepEqual(Array.from(back.mean), [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]);
      assert.ok(back.rms.every((v) => Math.abs(v - 2 * Math.sqrt(1.25)) < 1e-5));
      assert.ok(back.count.every((c) => c === 4));
      assert.deepEqual(await listResultFiles(dir).then((f) => f.length), 5, 'the mean file itself is not an input');
      await assert.rejects(listResultFiles(join(dir, 'nothing*.h5')), /No PIV result/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the command: lock and job directory of its own beside the PIV results (monitor still shows the PIV job); --how complete; a file on another grid reported (exit 1)', async function () {
    this.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), 'fi-mean-cli-'));
    try {
      const meta = { program: 'test', version: '0' };
      const piv = join(dir, 'run.piv');
      mkdirSync(piv);
      for (const k of [0, 1, 2]) await writePivFile(join(piv, `piv_0${k}-0${k + 1}.h5`), result(k, 0), meta);
      // A PIV job's record in the directory, as a real run leaves it.
      const images = join(dir, 'im');
      assert.equal((await runCli(['synth', 'uniform', '-o', images, '--pairs', '2', '--size', '64'])).code, 0);
      assert.equal((await runCli(['piv', images, '-o', piv, '-q', '--set', 'piv0.shape_crop_im0=32'])).code, 0);
      for (const f of readdirSync(piv).filter((n) => /^piv_000/.test(n))) rmSync(join(piv, f));
      const first = await runCli(['mean', piv, '-q']);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout.trim(), join(piv, 'mean_piv.h5'));
      const names = readdirSync(piv);
      assert.equal(names.filter((n) => n.startsWith('mean_job_')).length, 1, names.join(' '));
      assert.ok(!names.includes('.fluidimage-mean.lock'), 'the lock is released');
      const monitor = await runCli(['monitor', piv, '--json']);
      assert.equal(monitor.code, 0, monitor.stderr);
      assert.match(monitor.stdout, /"jobDir": "[^"]*\/job_/);
      const back = await withH5File(join(piv, 'mean_piv.h5'), 'r', (f) => readFloat32(f, 'mean_dx')!);
      assert.deepEqual(Array.from(back), [1, 2, 3, 4, 5, 6]);

      const complete = await runCli(['mean', piv, '--how', 'complete']);
      assert.equal(complete.code, 0, complete.stderr);
      assert.match(complete.stderr, /nothing to do/);
      const newDir = await runCli(['mean', piv, '--how', 'new_dir']);
      assert.equal(newDir.code, 2);
      assert.match(newDir.stderr, /saving\.how/);

      await writePivFile(join(piv, 'piv_09-10.h5'), result(0, 0, 4), meta);
      const odd = await runCli(['mean', piv, '-o', join(dir, 'm.h5')]);
      assert.equal(odd.code, 1, odd.stderr);
      assert.match(odd.stderr, /piv_09-10\.h5: its final grid \(8 points\) differs/);
      assert.ok(existsSync(join(dir, 'm.h5')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
