/**
 * Processes of a job: killing the command a user started (kill -9 of its pid) leaves no
 * process of the job running (the program re-executes itself once: the child follows its
 * parent), and a lock whose holder is gone, a zombie or another process with its pid counts
 * as free. Processes are found by a marker variable of this test run, never by a pattern.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { holderAlive, LOCK_NAME, OutputLock } from '../report/lock.js';
import { listDir, makeTempDir, removeDir, RUN_JS, runCli } from './helpers/cli.js';

const MARK = `fluidimage-processes-${process.pid}`;

/** Pids of the processes carrying this test's marker. */
async function marked(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = await readFile(`/proc/${entry}/environ`, 'latin1');
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && env.split('\0').includes(`FLUIDIMAGE_TEST_MARK=${MARK}`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('processes of a job', function () {
  this.timeout(120_000);
  let tmp: string;
  let images: string;

  before(async function () {
    if (!existsSync('/proc/self/environ')) this.skip();
    tmp = await makeTempDir('processes');
    images = join(tmp, 'images');
    const s = await runCli(['synth', 'uniform', '-o', images, '--pairs', '30', '--size', '256']);
    assert.equal(s.code, 0, s.stderr);
  });
  afterEach(async () => {
    for (const pid of await marked()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  });
  after(async () => removeDir(tmp));

  it('kill -9 of the command: its re-executed child stops too (items in progress written), and a rerun is not locked out', async () => {
    const out = join(tmp, 'killed');
    const child = spawn(process.execPath, [RUN_JS, 'piv', images, '--set', 'piv0.shape_crop_im0=32', '--set', 'multipass.number=2', '-o', out, '-q'], {
      stdio: 'ignore', env: { ...process.env, FLUIDIMAGE_TEST_MARK: MARK },
    });
    const exited = new Promise((r) => child.on('exit', r));
    // Wait for the child (a second marked process) and the first results.
    for (let k = 0; k < 600; k++) {
      if ((await marked()).length >= 2 && existsSync(out) && (await listDir(out)).some((f) => f.endsWith('.h5'))) break;
      await sleep(50);
    }
    const before = await marked();
    assert.ok(before.length >= 2, `the command re-executed itself (processes: ${before.join(', ')})`);
    child.kill('SIGKILL');
    await exited;
    let left = await marked();
    for (let k = 0; k < 200 && left.length > 0; k++) {
      await sleep(100);
      left = await marked();
    }
    assert.deepEqual(left, [], 'no process of the job is left running');
    assert.equal(existsSync(join(out, LOCK_NAME)), false, 'the child released the lock');
    const rerun = await runCli(['piv', images, '--set', 'piv0.shape_crop_im0=32', '--set', 'multipass.number=2', '-o', out]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal((await listDir(out)).filter((f) => f.endsWith('.h5')).length, 30);
  });

  it('a lock held by a zombie, a gone process or a reused pid counts as free', async () => {
    // A zombie: a child of sh that exits while sh (exec'd into sleep) never reaps it.
    const sh = spawn('sh', ['-c', 'true & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, FLUIDIMAGE_TEST_MARK: MARK } });
    const zombie = await new Promise<number>((resolve) => sh.stdout.once('data', (b: Buffer) => resolve(Number(String(b).trim()))));
    for (let k = 0; k < 50; k++) {
      const stat = await readFile(`/proc/${zombie}/stat`, 'utf8').catch(() => '');
      if (stat.includes(') Z ')) break;
      await sleep(20);
    }
    try {
      assert.equal(holderAlive(zombie), false, 'a zombie is not alive');
      assert.equal(holderAlive(process.pid), true);
      assert.equal(holderAlive(process.pid, 1), false, 'the same pid with another start time is another process');
      for (const pid of [zombie, 999_999_999]) {
        const dir = join(tmp, `lock-${pid}`);
        await runCli(['synth', 'uniform', '-o', dir, '--pairs', '1', '--size', '64']);
        await writeFile(join(dir, LOCK_NAME), JSON.stringify({ pid, host: hostname(), start: new Date().toISOString(), command: 'old job' }));
        const lock = OutputLock.acquire(dir);
        lock.release();
      }
    } finally {
      sh.kill('SIGKILL');
    }
  });
});
