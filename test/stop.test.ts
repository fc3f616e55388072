/**
 * Graceful stop (Slurm's USR1 before the walltime, scancel's TERM): started pairs finish
 * and are written, nothing partial is left, the exit status says "stopped" (3), and the
 * same command completes the series. Also the output-directory lock.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readPivFile } from '../io/pivfile.js';
import { native } from '../native.js';
import { LOCK_NAME, lockName } from '../report/lock.js';
import { listDir, listJobDirs, makeTempDir, removeDir, RUN_JS, runCli, type CliResult } from './helpers/cli.js';

const HEAVY = ['--set', 'piv0.shape_crop_im0=64', '--set', 'multipass.number=3'];

/** Starts a command, sends `signal` once `ready()` holds, resolves with the result. */
function runAndSignal(cmd: string, args: string[], signal: NodeJS.Signals, ready: () => Promise<boolean>): Promise<CliResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    // One check at a time, one signal only (a second SIGTERM means "exit now").
    let busy = false;
    let sent = false;
    const poll = setInterval(() => {
      if (busy || sent) return;
      busy = true;
      void ready().then((ok) => {
        busy = false;
        if (ok && !sent) {
          sent = true;
          clearInterval(poll);
          child.kill(signal);
        }
      });
    }, 30);
    child.on('error', reject);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ code, signal: sig, stdout, stderr, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

async function resultsIn(dir: string): Promise<string[]> {
  return (await listDir(dir)).filter((f) => f.endsWith('.h5'));
}

describe('graceful stop and output lock', function () {
  this.timeout(120_000);
  let tmp: string;
  let images: string;
  before(async () => {
    tmp = await makeTempDir('stop');
    images = join(tmp, 'images');
    const s = await runCli(['synth', 'vortex', '-o', images, '--pairs', '30', '--size', '256']);
    assert.equal(s.code, 0, s.stderr);
  });
  after(async () => removeDir(tmp));

  it('SIGUSR1 mid-way: started pairs land whole, exit 3, a rerun completes the series', async () => {
    const out = join(tmp, 'local');
    const r = await runAndSignal(process.execPath, [RUN_JS, 'piv', images, ...HEAVY, '-o', out], 'SIGUSR1',
      async () => existsSync(out) && (await resultsIn(out)).length >= 2);
    assert.equal(r.code, 3, r.stderr);
    assert.doesNotMatch(r.stderr, /Debugger/);
    assert.match(r.stderr, /received SIGUSR1: no new item will start/);
    assert.match(r.stderr, /stopped by SIGUSR1: \d+ item\(s\) not started/);
    const done = await resultsIn(out);
    assert.ok(done.length >= 2 && done.length < 30, `${done.length} results`);
    for (const f of done) assert.equal((await readPivFile(join(out, f))).passes.length, 3);
    assert.ok(!(await readdir(out)).some((f) => f.endsWith('.tmp') || f === LOCK_NAME), 'no temp file, lock released');
    const [job] = await listJobDirs(out);
    const summary = JSON.parse(await readFile(join(out, job, 'summary.json'), 'utf8')) as { stoppedBy?: string };
    assert.equal(summary.stoppedBy, 'SIGUSR1');
    const mon = await runCli(['monitor', out]);
    assert.equal(mon.code, 0, mon.stderr);
    assert.match(mon.stdout, new RegExp(`job stopped \\(local, 1 rank\\(s\\)\\)[^]*items: ${done.length}/30 done`));
    assert.match(mon.stdout, /rerun the same command/);
    const again = await runCli(['piv', images, ...HEAVY, '-o', out]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`${done.length} already done, ${30 - done.length} to compute`));
    assert.equal((await resultsIn(out)).length, 30);
    const state = JSON.parse((await runCli(['monitor', out, '--json'])).stdout) as { state: string; done: number; toCompute: number };
    assert.deepEqual([state.state, state.done, state.toCompute], ['finished', 30 - done.length, 30 - done.length]);
  });

  it('on worker threads (--threads 2): SIGUSR1 stops every thread, pairs land whole, a rerun completes', async () => {
    const out = join(tmp, 'threads');
    const args = [RUN_JS, 'piv', images, ...HEAVY, '-o', out, '--workers', '4', '--threads', '2'];
    const r = await runAndSignal(process.execPath, args, 'SIGUSR1', async () => existsSync(out) && (await resultsIn(out)).length >= 2);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /on 2 threads/);
    assert.match(r.stderr, /stopped by SIGUSR1: \d+ item\(s\) not started/);
    const done = await resultsIn(out);
    assert.ok(done.length >= 2 && done.length < 30, `${done.length} results`);
    for (const f of done) assert.equal((await readPivFile(join(out, f))).passes.length, 3);
    assert.ok(!(await readdir(out)).some((f) => f.endsWith('.tmp') || f === LOCK_NAME), 'no temp file, lock released');
    const again = await runCli(['piv', images, ...HEAVY, '-o', out, '--workers', '4', '--threads', '2']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`${done.length} already done, ${30 - done.length} to compute`));
    assert.equal((await resultsIn(out)).length, 30);
  });

  it('monitor shows a running job with its rate and ETA', async () => {
    const out = join(tmp, 'watched');
    let seen = '';
    const r = await runAndSignal(process.execPath, [RUN_JS, 'piv', images, ...HEAVY, '-o', out], 'SIGTERM', async () => {
      if (!existsSync(out) || (await resultsIn(out)).length < 3) return false;
      seen = (await runCli(['monitor', out])).stdout;
      return true;
    });
    assert.equal(r.code, 3);
    assert.match(seen, /job running \(local/);
    assert.match(seen, /items: \d+\/30 done/);
    assert.match(seen, /ETA \d+ s/);
  });

  it('a stop signal soon after start is not lost (and opens no debugger)', async () => {
    const out = join(tmp, 'early');
    const t0 = Date.now();
    // 400 ms: past Node's own start-up (a signal before any JS runs cannot be caught), and
    // usually before the first pair is done.
    const r = await runAndSignal(process.execPath, [RUN_JS, 'piv', images, ...HEAVY, '-o', out], 'SIGUSR1',
      async () => Date.now() - t0 > 400);
    assert.doesNotMatch(r.stderr, /Debugger/);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /stopped by SIGUSR1/);
  });

  it('under mpirun: SIGUSR1 to mpirun stops all ranks gracefully (exit 3), rerun completes', async function () {
    if (spawnSync('mpirun', ['--version']).status !== 0 || !native().mpiAvailable()) this.skip();
    const out = join(tmp, 'mpi');
    const root = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
    const args = [...root, '--oversubscribe', '-n', '2', process.execPath, RUN_JS, 'piv', images, ...HEAVY, '-o', out];
    const r = await runAndSignal('mpirun', args, 'SIGUSR1', async () => existsSync(out) && (await resultsIn(out)).length >= 2);
    assert.equal(r.code, 3, r.stderr);
    assert.doesNotMatch(r.stderr, /MPI_ABORT/);
    const done = await resultsIn(out);
    assert.ok(done.length < 30, `${done.length} results`);
    for (const f of done) assert.equal((await readPivFile(join(out, f))).passes.length, 3);
    const again = await runCli(['piv', images, ...HEAVY, '-o', out]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await resultsIn(out)).length, 30);
  });

  it('refuses an output directory locked by a live job, naming it; clears a dead job\'s lock', async () => {
    const out = join(tmp, 'locked');
    const part = ['--set', 'series.ind_stop=2'];
    const first = await runCli(['piv', images, '-o', out, ...part, '-q']);
    assert.equal(first.code, 0);
    // A job on a part of the series locks that part (array tasks share one directory).
    const lock = join(out, lockName('first-2'));
    // A live job: this test process itself.
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), start: 'now', command: 'fluidimage piv other' }));
    const r = await runCli(['piv', images, '-o', out, ...part, '--how', 'recompute']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`in use by another fluidimage job \\(pid ${process.pid} on ${hostname()}`));
    // Another part of the series is not blocked by it.
    const other = await runCli(['piv', images, '-o', out, '--set', 'series.ind_start=2', '--set', 'series.ind_stop=3', '-q']);
    assert.equal(other.code, 0, other.stderr);
    // A dead job's lock (no such process) is cleared.
    await writeFile(lock, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), start: 'then', command: 'x' }));
    const ok = await runCli(['piv', images, '-o', out, ...part, '--how', 'recompute', '-q']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(!existsSync(lock) && !existsSync(join(out, LOCK_NAME)));
  });
});
