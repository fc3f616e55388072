/**
 * The MPI executor under a real `mpirun`: results identical to the local executor, a
 * failing pair, a rank killed with SIGKILL and a rerun that completes the series, a
 * singleton run without mpirun.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { readPivFile } from '../io/pivfile.js';
import { readFloat32, readStrings, withH5File } from '../io/h5.js';
import { native } from '../native.js';
import { HAS_MPIRUN, lastLine, launchMpirun, listDir, listJobDirs, makeTempDir, removeDir, runCli, type CliResult } from './helpers/cli.js';

const SMALL = ['--set', 'piv0.shape_crop_im0=32'];

/** `mpirun -n N node dist/run.js ...args`, resolving with its output and status. */
const mpirun = (n: number, args: readonly string[]): Promise<CliResult> => launchMpirun(n, args).done;

/** Waits (up to 20 s) until the job that holds the output lock has exited. */
async function waitForLockRelease(out: string): Promise<void> {
  for (let k = 0; k < 200; k++) {
    let pid: number | undefined;
    try {
      pid = (JSON.parse(await readFile(join(out, '.fluidimage.lock'), 'utf8')) as { pid: number }).pid;
    } catch {
      return;
    }
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function deltas(dir: string, name: string): Promise<Float32Array[]> {
  const r = await readPivFile(join(dir, name));
  return r.passes.flatMap((p) => [p.deltaxs, p.deltays, p.correls_max]);
}

describe('MPI executor under mpirun', function () {
  this.timeout(120_000);
  let tmp: string;
  let images: string;
  let reference: string;
  let names: string[];

  before(async function () {
    if (!HAS_MPIRUN) {
      console.log('    (skipped: mpirun is not installed; Debian: apt-get install openmpi-bin libopenmpi-dev)');
      this.skip();
    }
    if (!native().mpiAvailable()) {
      console.log('    (skipped: the native core was built without MPI)');
      this.skip();
    }
    tmp = await makeTempDir('mpi-exec');
    images = join(tmp, 'images');
    const s = await runCli(['synth', 'vortex', '-o', images, '--pairs', '6', '--size', '128']);
    assert.equal(s.code, 0, s.stderr);
    reference = join(tmp, 'reference');
    const r = await runCli(['piv', images, ...SMALL, '-o', reference, '-q']);
    assert.equal(r.code, 0, r.stderr);
    names = await listDir(reference);
    assert.equal(names.length, 6);
  });
  after(async () => removeDir(tmp));

  for (const n of [1, 2, 3]) {
    it(`${n} rank(s): the same files, bit for bit, as the local executor; one log per rank`, async () => {
      const out = join(tmp, `out${n}`);
      const r = await mpirun(n, ['piv', images, ...SMALL, '-o', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(lastLine(r.stdout), out, 'only rank 0 prints the output directory');
      assert.equal(r.stdout.trim().split('\n').length, 1);
      // One rank is not a parallel launch: auto picks the local executor (MPI untouched).
      assert.match(r.stderr, n === 1 ? /executor local/ : new RegExp(`executor mpi with ${n} rank\\(s\\)`));
      assert.deepEqual(await listDir(out), names);
      for (const name of names) assert.deepEqual(await deltas(out, name), await deltas(reference, name), name);
      if (n === 1) return;
      const [job] = await listJobDirs(out);
      const logs = (await readdir(join(out, job))).filter((f) => f.startsWith('log_rank')).sort();
      assert.deepEqual(logs, Array.from({ length: n }, (_, k) => `log_rank${String(k).padStart(4, '0')}.txt`));
      const info = JSON.parse(await readFile(join(out, job, 'info.json'), 'utf8')) as { executor: string; ranks: number; mpiLibrary: string };
      assert.equal(info.executor, 'mpi');
      assert.equal(info.ranks, n);
      assert.match(info.mpiLibrary, /MPI/);
      // Every pair was done once, by some rank; the results lists (one per rank) name them all.
      let done = 0;
      for (const log of logs) done += ((await readFile(join(out, job, log), 'utf8')).match(/ done /g) ?? []).length;
      assert.equal(done, 6);
      const listed: string[] = [];
      for (const f of (await readdir(join(out, job))).filter((f) => f.startsWith('results_rank'))) {
        listed.push(...(await readFile(join(out, job, f), 'utf8')).trim().split('\n'));
      }
      assert.deepEqual(listed.sort(), names);
      const hosts = (JSON.parse(await readFile(join(out, job, 'info.json'), 'utf8')) as { hosts: Record<string, number> }).hosts;
      assert.equal(Object.values(hosts).reduce((a, b) => a + b, 0), n);
    });
  }

  it('a pair that fails on any rank is reported; the others land; exit status 1', async () => {
    const bad = join(tmp, 'bad');
    const s = await runCli(['synth', 'uniform', '-o', bad, '--pairs', '5', '--size', '128']);
    assert.equal(s.code, 0);
    const victim = join(bad, 'im0004b.png');
    await truncate(victim, 200);
    const out = join(tmp, 'bad.out');
    const r = await mpirun(2, ['piv', bad, ...SMALL, '-o', out]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(await listDir(out), ['piv_0001ab.h5', 'piv_0002ab.h5', 'piv_0003ab.h5', 'piv_0005ab.h5']);
    assert.match(r.stderr, /4 computed, 1 failed/);
    assert.ok(r.stderr.includes(`failed: im0004a.png + im0004b.png: Cannot read image ${victim}`), r.stderr);
  });

  it('a rank killed with SIGKILL stops the job; rerunning completes exactly the missing pairs', async () => {
    const many = join(tmp, 'many');
    const s = await runCli(['synth', 'vortex', '-o', many, '--pairs', '40', '--size', '256']);
    assert.equal(s.code, 0);
    const out = join(tmp, 'many.out');
    const args = ['piv', many, '--set', 'piv0.shape_crop_im0=64', '--set', 'multipass.number=3', '-o', out];
    const running = mpirun(2, args);
    // Wait for rank 1 to have done some work, then kill it.
    let pid: number | undefined;
    for (let k = 0; k < 400 && pid === undefined; k++) {
      await new Promise((r) => setTimeout(r, 50));
      const [job] = existsSync(out) ? await listJobDirs(out) : [];
      if (!job || !existsSync(join(out, job, 'log_rank0001.txt'))) continue;
      const log = await readFile(join(out, job, 'log_rank0001.txt'), 'utf8');
      if ((log.match(/ done /g) ?? []).length >= 1) pid = Number(/pid (\d+)/.exec(log)![1]);
    }
    assert.ok(pid, 'rank 1 started working');
    process.kill(pid, 'SIGKILL');
    const r = await running;
    assert.notEqual(r.code, 0, 'the job fails when a rank dies');
    assert.ok(r.seconds < 60, 'and does not hang');
    const partial = (await listDir(out)).filter((f) => f.endsWith('.h5'));
    assert.ok(partial.length >= 1 && partial.length < 40, `${partial.length} results before the kill`);
    // Every file present is whole (atomic writes), temp files are never results.
    for (const f of partial) assert.ok((await readPivFile(join(out, f))).passes.length === 3, f);
    // mpirun may return while rank 0 still finishes its pair (SIGTERM is a graceful stop):
    // the rerun starts once the killed job's processes are gone, as a user's would.
    await waitForLockRelease(out);
    const again = await mpirun(2, args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`40 pair\\(s\\) in the series, ${partial.length} already done, ${40 - partial.length} to compute`));
    assert.equal((await listDir(out)).filter((f) => f.endsWith('.h5')).length, 40);
  });

  it('mean: the time average as a reduction over 3 ranks equals the local one', async () => {
    const local = join(tmp, 'mean_local.h5');
    const r1 = await runCli(['mean', reference, '-o', local, '-q']);
    assert.equal(r1.code, 0, r1.stderr);
    const par = join(tmp, 'mean_mpi.h5');
    const r3 = await mpirun(3, ['mean', reference, '-o', par, '-q']);
    assert.equal(r3.code, 0, r3.stderr);
    const read = (f: string) => withH5File(f, 'r', (h) => ({
      mean: readFloat32(h, 'mean_dx')!, rms: readFloat32(h, 'rms_dy')!, count: readFloat32(h, 'count')!, files: readStrings(h, 'sources/files')!,
    }));
    const a = await read(local);
    const b = await read(par);
    assert.deepEqual(b.files, names);
    assert.deepEqual(Array.from(b.count), Array.from(a.count));
    for (let k = 0; k < a.mean.length; k++) {
      assert.ok(Math.abs(a.mean[k] - b.mean[k]) < 1e-6 && Math.abs(a.rms[k] - b.rms[k]) < 1e-6, `point ${k}`);
    }
  });

  it('preproc under mpirun writes the same images as on one machine', async () => {
    const set = ['--set', 'preproc.tools.sliding_median.enable=true', '--set', 'preproc.tools.sliding_median.window_size=5'];
    const one = join(tmp, 'pre1');
    const two = join(tmp, 'pre2');
    assert.equal((await runCli(['preproc', images, ...set, '-o', one, '-q'])).code, 0);
    const r = await mpirun(2, ['preproc', images, ...set, '-o', two]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /executor mpi with 2 rank\(s\)/);
    const pngs = (await listDir(one)).filter((f) => f.endsWith('.png'));
    assert.equal(pngs.length, 12);
    assert.deepEqual((await listDir(two)).filter((f) => f.endsWith('.png')), pngs);
    for (const f of pngs) assert.ok((await readFile(join(one, f))).equals(await readFile(join(two, f))), f);
  });

  it('mean-image under mpirun: partial sums reduced over 3 ranks equal the local statistics', async () => {
    const one = join(tmp, 'mi1');
    const three = join(tmp, 'mi3');
    assert.equal((await runCli(['mean-image', images, '-o', one, '-q'])).code, 0);
    const r = await mpirun(3, ['mean-image', images, '-o', three, '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await readFile(join(one, 'mean.png'))).equals(await readFile(join(three, 'mean.png'))));
    const read = (f: string) => withH5File(f, 'r', (h) => ['mean', 'min', 'max', 'std'].map((k) => Array.from(readFloat32(h, k)!)));
    assert.deepEqual(await read(join(three, 'mean.h5')), await read(join(one, 'mean.h5')));
  });

  it('a bad input stops every rank in order: one message, status 2, no abort', async () => {
    const r = await mpirun(3, ['piv', join(tmp, 'nothing-here'), '-o', join(tmp, 'never')]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.match(/fluidimage: error: series.path does not exist/g)?.length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /MPI_ABORT/);
  });

  it('runs as a singleton without mpirun (--executor mpi, one rank)', async () => {
    const out = join(tmp, 'single');
    const r = await runCli(['piv', images, ...SMALL, '-o', out, '--executor', 'mpi']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /executor mpi with 1 rank\(s\)/);
    for (const name of names) assert.deepEqual(await deltas(out, name), await deltas(reference, name));
  });
});
