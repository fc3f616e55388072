/**
 * Fault test: a series run interrupted at random moments (kill -9 of the whole command,
 * SIGTERM, a disk that fills during the run), each followed by a rerun of the same
 * command, ends with result files bit-identical to an uninterrupted run (but for the
 * object times HDF5 writes: maskObjectTimes): nothing lost, nothing partial, nothing
 * stale, no temporary file, no lock. About half a minute.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RUN_JS, describeRun, makeTempDir, removeDir, runCli } from './helpers/cli.js';

const PAIRS = 24;

/**
 * HDF5 writes, in each version-2 object header, the times the object was made and changed
 * (h5wasm offers no way to turn that off): those 16 bytes and the header's checksum are
 * the only bytes that may differ between two writes of the same result. Zeroed here;
 * every other byte is compared.
 */
export function maskObjectTimes(buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  for (let p = out.indexOf('OHDR'); p >= 0; p = out.indexOf('OHDR', p + 4)) {
    const version = out[p + 4];
    const flags = out[p + 5];
    if (version !== 2 || (flags & 0x20) === 0) continue;
    out.fill(0, p + 6, p + 22);
    let q = p + 22 + ((flags & 0x10) !== 0 ? 4 : 0);
    const width = 1 << (flags & 3);
    const size = Number(out.readUIntLE(q, Math.min(width, 6)));
    q += width + size;
    if (q + 4 <= out.length) out.fill(0, q, q + 4);
  }
  return out;
}

/** sha256 of every visible file of `dir` (results), by name, HDF5 object times masked. */
async function hashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    if (name.startsWith('.') || name.startsWith('job_')) continue;
    out[name] = createHash('sha256').update(maskObjectTimes(await readFile(join(dir, name)))).digest('hex');
  }
  return out;
}

/** Leftovers that must not survive a rerun: temporary files, locks. */
async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.tmp') || n.endsWith('.lock'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault: interrupted runs, each followed by a rerun, end bit-identical to an uninterrupted run', function () {
  this.timeout(180_000);
  let tmp: string;
  let images: string;
  let mount: string | undefined;
  let out: string;
  let reference: Record<string, string>;
  let seconds: number;
  const args = () => ['piv', images, '-o', out, '--workers', '2', '-q', '--set', 'piv0.shape_crop_im0=32'];

  before(async () => {
    tmp = await makeTempDir('fault');
    images = join(tmp, 'images');
    const synth = await runCli(['synth', 'vortex', '-o', images, '--size', '256', '--pairs', String(PAIRS)]);
    assert.equal(synth.code, 0, synth.stderr);
    // Results on a small tmpfs where we may mount one (root): the full-disk case needs it.
    const m = join(tmp, 'disk');
    await mkdir(m);
    if (process.getuid?.() === 0 && spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', m]).status === 0) mount = m;
    out = join(m, 'out');
    const r = await runCli(args());
    assert.equal(r.code, 0, describeRun(args(), r));
    seconds = r.seconds;
    reference = await hashes(out);
    assert.equal(Object.keys(reference).length, PAIRS);
  });

  after(async () => {
    if (mount) spawnSync('umount', [mount]);
    await removeDir(tmp);
  });

  beforeEach(async () => {
    await rm(out, { recursive: true, force: true });
  });

  async function rerunAndCompare(what: string): Promise<void> {
    const r = await runCli(args());
    assert.equal(r.code, 0, `${what}: ${describeRun(args(), r)}`);
    assert.deepEqual(await hashes(out), reference, `${what}: results differ from the uninterrupted run`);
    assert.deepEqual(await leftovers(out), [], `${what}: leftovers`);
  }

  /** Starts the command in its own process group; resolves with a handle to signal it and wait for it. */
  function start(): { pid: number; done: Promise<number | null> } {
    const child = spawn(process.execPath, [RUN_JS, ...args()], { detached: true, stdio: 'ignore' });
    return { pid: child.pid!, done: new Promise((res) => child.on('close', (code) => res(code))) };
  }

  it('kill -9 at random moments', async () => {
    for (let k = 0; k < 3; k++) {
      const delay = Math.round(150 + Math.random() * seconds * 1000);
      const run = start();
      await sleep(delay);
      try {
        process.kill(-run.pid, 'SIGKILL'); // the whole command, as the OOM killer or a node failure would
      } catch {
        // Already finished.
      }
      await run.done;
      await rerunAndCompare(`kill -9 after ${delay} ms`);
      await rm(out, { recursive: true, force: true });
    }
  });

  it('SIGTERM at random moments (graceful stop, exit 3 or finished)', async () => {
    for (let k = 0; k < 3; k++) {
      const delay = Math.round(150 + Math.random() * seconds * 1000);
      const run = start();
      await sleep(delay);
      try {
        process.kill(run.pid, 'SIGTERM');
      } catch {
        // Already finished.
      }
      const code = await run.done;
      // 3: stopped gracefully; 0: it had finished; 143: killed during its start-up, before
      // the handlers were installed (nothing written yet).
      assert.ok(code === 3 || code === 0 || code === 143 || code === null, `SIGTERM after ${delay} ms: exit ${code}`);
      await rerunAndCompare(`SIGTERM after ${delay} ms`);
      await rm(out, { recursive: true, force: true });
    }
  });

  it('a disk that fills during the run: the job stops after a few failures, earlier results intact; the rerun completes', async function () {
    if (!mount) this.skip();
    const child = spawn(process.execPath, [RUN_JS, ...args().filter((a) => a !== '-q')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const done = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    // Once a few results are there, another program fills the disk.
    for (let i = 0; i < 400; i++) {
      if (existsSync(out) && (await readdir(out)).filter((n) => n.endsWith('.h5')).length >= 3) break;
      await sleep(10);
    }
    const filler = join(mount!, 'filler');
    const chunk = Buffer.alloc(1 << 16);
    try {
      for (;;) await writeFile(filler, chunk, { flag: 'a' });
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    const code = await done;
    const written = Object.keys(await hashes(out));
    if (written.length < PAIRS) {
      assert.equal(code, 1, stderr);
      assert.match(stderr, /FAILED .*(ENOSPC|No space left)/);
      assert.match(stderr, /stopped by a full disk: \d+ item\(s\) not started/);
    }
    // What was written is whole and the same as the uninterrupted run's.
    for (const name of written) assert.equal((await hashes(out))[name], reference[name], name);
    assert.deepEqual((await readdir(out)).filter((n) => n.endsWith('.tmp')), [], 'a partial file is left');
    await rm(filler);
    await rerunAndCompare('full disk');
  });
});
