/**
 * A rank that goes silent under a real `mpirun` (SIGSTOP: a frozen process or a host that
 * dropped off the network looks the same to the others) ends the job by itself within the
 * rank time-out, with a message naming the rank and its host and exit status 4; nothing
 * partial is left, and a rerun computes exactly the missing pairs. Rank 0 included.
 * The ranks' processes are found by a marker variable of this test run (never by a name
 * pattern) and killed in the end, also when an assertion fails.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPivFile } from '../io/pivfile.js';
import { native } from '../native.js';
import { listDir, listJobDirs, makeTempDir, removeDir, RUN_JS, runCli, type CliResult } from './helpers/cli.js';

const HAS_MPIRUN = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;
const PIV = ['--set', 'piv0.shape_crop_im0=32', '-q'];
/** Seconds of silence before a rank is lost, in these tests (default 40). */
const TIMEOUT = 4;
const MARK = `fluidimage-lost-rank-${process.pid}`;

/** Pids of this test's ranks (by the marker in their environment) and their MPI rank. */
async function rankPids(): Promise<Map<number, number>> {
  const found = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let env: string;
    try {
      env = await readFile(`/proc/${entry}/environ`, 'latin1');
    } catch {
      continue;
    }
    const vars = env.split('\0');
    if (!vars.includes(`FLUIDIMAGE_TEST_MARK=${MARK}`)) continue;
    const rank = vars.find((v) => v.startsWith('OMPI_COMM_WORLD_RANK='));
    if (rank) found.set(Number(rank.split('=')[1]), Number(entry));
  }
  return found;
}

async function killRanks(): Promise<void> {
  for (const pid of (await rankPids()).values()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/**
 * `mpirun -n 3 ... piv` on `images`; once `ready()` holds, sends `signal` to rank `victim`.
 * Resolves with the launcher's result.
 */
function runAndSilence(images: string, out: string, victim: number, signal: NodeJS.Signals, ready: () => Promise<boolean>): Promise<CliResult & { signalledAt: number }> {
  const root = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('mpirun', [...root, '--oversubscribe', '-n', '3', '-x', 'FLUIDIMAGE_TEST_MARK', process.execPath, RUN_JS,
      'piv', images, ...PIV, '-o', out, '--rank-timeout', String(TIMEOUT)], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLUIDIMAGE_TEST_MARK: MARK },
    });
    let stdout = '';
    let stderr = '';
    let signalledAt = NaN;
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    let busy = false;
    const poll = setInterval(() => {
      if (busy || !Number.isNaN(signalledAt)) return;
      busy = true;
      void (async () => {
        if (await ready()) {
          const pid = (await rankPids()).get(victim);
          if (pid !== undefined) {
            process.kill(pid, signal);
            signalledAt = (performance.now() - t0) / 1000;
            clearInterval(poll);
          }
        }
        busy = false;
      })();
    }, 50);
    child.on('error', reject);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ code, signal: sig, stdout, stderr, seconds: (performance.now() - t0) / 1000, signalledAt });
    });
  });
}

async function results(dir: string): Promise<string[]> {
  return existsSync(dir) ? (await listDir(dir)).filter((f) => f.endsWith('.h5')) : [];
}

async function deltas(dir: string, name: string): Promise<Float32Array[]> {
  const r = await readPivFile(join(dir, name));
  return r.passes.flatMap((p) => [p.deltaxs, p.deltays, p.correls_max]);
}

describe('a lost MPI rank ends the job (heartbeats, --rank-timeout)', function () {
  this.timeout(180_000);
  let tmp: string;
  let images: string;
  let reference: string;
  let names: string[];

  before(async function () {
    if (!HAS_MPIRUN || !native().mpiAvailable()) {
      console.log('    (skipped: needs mpirun and the native core built with MPI; Debian: apt-get install openmpi-bin libopenmpi-dev)');
      this.skip();
    }
    tmp = await makeTempDir('lost-rank');
    images = join(tmp, 'images');
    const s = await runCli(['synth', 'uniform', '-o', images, '--pairs', '48', '--size', '256']);
    assert.equal(s.code, 0, s.stderr);
    reference = join(tmp, 'reference');
    const r = await runCli(['piv', images, ...PIV, '-o', reference]);
    assert.equal(r.code, 0, r.stderr);
    names = await results(reference);
    assert.equal(names.length, 48);
  });
  afterEach(killRanks);
  after(async () => removeDir(tmp));

  /** What every lost-rank case checks: whole files only, then a rerun that completes the rest identically. */
  async function checkWholeAndRerun(out: string): Promise<void> {
    const written = await results(out);
    for (const name of written) assert.deepEqual(await deltas(out, name), await deltas(reference, name), name);
    const rerun = await runCli(['piv', images, ...PIV.filter((a) => a !== '-q'), '-o', out], { timeoutMs: 150_000 });
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, new RegExp(`${written.length} already done, ${names.length - written.length} to compute`));
    assert.deepEqual(await results(out), names);
    for (const name of names) assert.deepEqual(await deltas(out, name), await deltas(reference, name), name);
  }

  it('a frozen worker (SIGSTOP): the others finish, rank 0 names it and its host, exit 4, summary lists the lost items', async () => {
    const out = join(tmp, 'stop-worker');
    const r = await runAndSilence(images, out, 1, 'SIGSTOP', async () => (await results(out)).length >= 3);
    assert.ok(Number.isFinite(r.signalledAt), r.stderr);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /rank 1 on \S+ was lost \(no sign of life for [\d.]+ s\)/);
    assert.match(r.stderr, /aborts the job \(code 4\)/);
    // Detected after the time-out, ended well before any wall clock: time-out + the others' last items + MPI's teardown.
    assert.ok(r.seconds - r.signalledAt < TIMEOUT + 20, `ended ${(r.seconds - r.signalledAt).toFixed(1)} s after the stop`);
    const [job] = await listJobDirs(out);
    const summary = JSON.parse(await readFile(join(out, job, 'summary.json'), 'utf8')) as {
      lostRanks: { rank: number; host: string; items: string[] }[]; failed: { name: string; error: string }[];
    };
    assert.equal(summary.lostRanks.length, 1);
    assert.equal(summary.lostRanks[0].rank, 1);
    assert.deepEqual(summary.failed.map((f) => f.name).sort(), [...summary.lostRanks[0].items].sort());
    for (const f of summary.failed) assert.match(f.error, /not done: rank 1 on \S+ was lost/);
    // Every item but those the lost rank held was done by ranks 0 and 2 (the lost rank, woken by
    // mpirun's teardown, may still have written some of its own: whole files, as the rerun shows).
    const held = new Set(summary.failed.map((f) => f.name.split(' + ')[0].replace(/^im(\d+)a\.png$/, 'piv_$1ab.h5')));
    const present = new Set(await results(out));
    for (const name of names) if (!held.has(name)) assert.ok(present.has(name), `${name} missing`);
    await checkWholeAndRerun(out);
  });

  it('a frozen rank 0 (SIGSTOP): the other ranks notice, finish their items and end the job, exit 4', async () => {
    const out = join(tmp, 'stop-root');
    const r = await runAndSilence(images, out, 0, 'SIGSTOP', async () => (await results(out)).length >= 3);
    assert.ok(Number.isFinite(r.signalledAt), r.stderr);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /rank 0 on \S+ was lost \(no sign of life for [\d.]+ s\)/);
    assert.ok(r.seconds - r.signalledAt < TIMEOUT + 20, `ended ${(r.seconds - r.signalledAt).toFixed(1)} s after the stop`);
    await checkWholeAndRerun(out);
  });

  it('a worker killed with SIGKILL ends the job at once (mpirun names the rank)', async () => {
    const out = join(tmp, 'kill-worker');
    const r = await runAndSilence(images, out, 2, 'SIGKILL', async () => (await results(out)).length >= 3);
    assert.ok(Number.isFinite(r.signalledAt), r.stderr);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /rank 2 .*(exited on signal 9|Killed)/s);
    assert.ok(r.seconds - r.signalledAt < TIMEOUT + 20);
    await checkWholeAndRerun(out);
  });
});

describe('MPI launches that cannot work', function () {
  this.timeout(120_000);
  let tmp: string;
  before(async function () {
    if (!HAS_MPIRUN || !native().mpiAvailable()) this.skip();
    tmp = await makeTempDir('mpi-bad-launch');
  });
  after(async () => removeDir(tmp));

  it('more ranks than items in the series: one line naming both counts, exit 2, no job directory', async () => {
    const images = join(tmp, 'two');
    assert.equal((await runCli(['synth', 'uniform', '-o', images, '--pairs', '2', '--size', '64'])).code, 0);
    const out = join(tmp, 'two.out');
    const root = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
    const r = spawnSync('mpirun', [...root, '--oversubscribe', '-n', '3', process.execPath, RUN_JS, 'piv', images, '-o', out, '-q'], { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(r.status, 0);
    const ours = r.stderr.split('\n').filter((l) => l.startsWith('fluidimage:'));
    assert.deepEqual(ours, ['fluidimage: error: 3 MPI ranks for a series of 2 pair(s): 1 rank(s) would have nothing to do; start at most 2 (e.g. mpirun -n 2)']);
    assert.deepEqual(existsSync(out) ? await listJobDirs(out) : [], []);
  });

  it('a launcher environment without a matching MPI (srun without --mpi=pmix, another MPI): one line, exit 2, nothing written', async () => {
    const images = join(tmp, 'two');
    const out = join(tmp, 'mismatch.out');
    const r = await runCli(['piv', images, '-o', out, '-q'], { env: { OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_RANK: '0' } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^fluidimage: error: .*started 4 ranks .* but MPI reports a world of 1 rank/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(existsSync(out), false);
  });
});
