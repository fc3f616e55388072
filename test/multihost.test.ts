/**
 * The MPI executor over several hosts: 4 network-namespace hosts on this machine
 * (test/helpers/hosts.ts), each with its own hostname and address, Open MPI across them
 * through an rsh agent, TCP between hosts, the file system shared. PIV over 8 ranks gives
 * the files of the local executor; info.json and the rank logs name the hosts; mean-image
 * and mean reduce across hosts to the local results; SIGUSR1 to mpirun stops every rank on
 * every host with whole files, and a rerun completes the series; many ranks oversubscribed
 * over the hosts. Skipped, with the reason, where the namespaces cannot be made (not root,
 * no `ip`/`unshare`, namespaces refused) or without mpirun.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPivFile } from '../io/pivfile.js';
import { native } from '../native.js';
import { LOCK_NAME } from '../report/lock.js';
import { describeRun, launch, listJobDirs, makeTempDir, removeDir, RUN_JS, runCli, present, synthSeries, type Launched } from './helpers/cli.js';
import { assertSameFiles, h5Content, localPiv, rankHosts, results } from './helpers/results.js';
import { hostsMissing, HostsUnavailable, startHosts, type Hosts } from './helpers/hosts.js';

const SMALL = ['--set', 'piv0.shape_crop_im0=32'];
/** About 0.1 s a pair and rank at 128 px: a stop lands mid-series. */
const HEAVY = ['--set', 'piv0.shape_crop_im0=32', '--set', 'piv0.grid.overlap=0.75', '--set', 'multipass.number=3'];

/** Ranks of the oversubscribed run (the largest count that fits in about 60 s here). */
const MANY = Number(process.env.FLUIDIMAGE_MULTIHOST_RANKS ?? 32);

/** Counts by value. */
function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

describe('MPI executor over 4 hosts (network namespaces)', function () {
  this.timeout(120_000);
  let bed: Hosts | undefined;
  let tmp: string | undefined;
  let images = '';
  let reference = '';
  let names: string[] = [];

  before(async function () {
    this.timeout(60_000);
    const missing = hostsMissing() ?? (native().mpiAvailable() ? undefined : 'the native core was built without MPI');
    if (missing !== undefined) {
      console.log(`    (skipped: ${missing})`);
      this.skip();
    }
    try {
      bed = await startHosts(4, { slots: 2 });
    } catch (e) {
      if (!(e instanceof HostsUnavailable)) throw e;
      console.log(`    (skipped: the hosts could not be made: ${e.message})`);
      this.skip();
    }
    tmp = await makeTempDir('multihost');
    images = await synthSeries(tmp, 'images', 'uniform', 16, 128);
    reference = join(tmp, 'reference');
    names = await localPiv(images, reference, SMALL, 16);
  });
  // Nothing of a test may outlive it in the hosts (a daemon left by a killed mpirun).
  afterEach(async () => bed?.killAll());
  after(async () => {
    await bed?.stop();
    await removeDir(tmp);
  });

  const B = (): Hosts => present(bed);

  /** `mpirun` over the hosts: RANKS ranks of `node dist/run.js ...args`. */
  function mpirun(ranks: number, args: readonly string[], timeoutMs = 60_000): Launched {
    return launch('mpirun', [...B().mpirunArgs(ranks), process.execPath, RUN_JS, ...args], { timeoutMs });
  }

  /** No process is left in any host once a job is over (mpirun's daemons end with it). */
  async function assertHostsEmpty(): Promise<void> {
    let left: number[] = [];
    for (let k = 0; k < 40; k++) {
      left = B().names.flatMap((h) => B().pids(h));
      if (left.length === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(left, [], 'processes left in the hosts after the job');
  }

  it('the hosts are separate machines: own hostname and address, reachable over TCP', async () => {
    const [h1, h2] = B().hosts;
    const hn = await B().exec(h1.name, ['hostname']);
    assert.equal(hn.stdout.trim(), h1.name, hn.stderr);
    const addr = await B().exec(h2.name, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    assert.match(addr.stdout, new RegExp(`inet ${h2.address.replace(/\./g, '\\.')}/24`));
    // A listener on h2, a client on h1: through the bridge, not loopback.
    const server = B().spawn(h2.name, [process.execPath, '-e',
      'require("net").createServer((s) => s.end(require("os").hostname())).listen(7777, process.argv[1], () => console.log("up"))', h2.address],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
    const client = await B().exec(h1.name, [process.execPath, '-e',
      'const s = require("net").connect(7777, process.argv[1]); s.on("data", (d) => process.stdout.write(d)); s.on("error", (e) => { console.error(e.message); process.exit(1); })', h2.address]);
    server.kill('SIGKILL');
    assert.equal(client.stdout, h2.name, client.stderr);
    // And h2's loopback is its own: nothing listens on h1's.
    const lo = await B().exec(h1.name, [process.execPath, '-e',
      'require("net").connect(7777, "127.0.0.1").on("error", (e) => { console.log(e.code); }).on("connect", () => console.log("connected"))']);
    assert.equal(lo.stdout.trim(), 'ECONNREFUSED');
    // A host whose link is down is silent: a connection neither succeeds nor is refused.
    const probe = `const s = require("net").connect(7777, process.argv[1]); s.setTimeout(1000, () => { console.log("timeout"); process.exit(0); });
      s.on("error", (e) => console.log(e.code)); s.on("connect", () => console.log("connected"))`;
    B().linkDown(h2.name);
    const silent = await B().exec(h1.name, [process.execPath, '-e', probe, h2.address]);
    assert.match(silent.stdout.trim(), /^(timeout|EHOSTUNREACH)$/, silent.stderr);
    B().linkUp(h2.name);
    const back = await B().exec(h1.name, [process.execPath, '-e', probe, h2.address]);
    assert.equal(back.stdout.trim(), 'ECONNREFUSED', back.stderr);
  });

  it('PIV on 8 ranks over the 4 hosts: the files of the local executor; info.json and the rank logs name the hosts', async () => {
    const out = join(tmp!, 'piv8');
    {
      const r = await mpirun(8, ['piv', images, ...SMALL, '-o', out]).done;
      assert.equal(r.code, 0, describeRun(['mpirun', '-n', '8', 'piv'], r));
      assert.match(r.stderr, /executor mpi with 8 rank\(s\)/);
      assert.deepEqual(await results(out), names);
      await assertSameFiles(out, reference, names);
      const [job] = await listJobDirs(out);
      const info = JSON.parse(await readFile(join(out, job, 'info.json'), 'utf8')) as { ranks: number; hosts: Record<string, number> };
      const expected = Object.fromEntries(B().names.map((h) => [h, 2]));
      assert.equal(info.ranks, 8);
      assert.deepEqual(info.hosts, expected);
      // The hostfile's slots in order: ranks 0-1 on host 1, 2-3 on host 2, ...
      const byRank = await rankHosts(join(out, job));
      assert.deepEqual(byRank, B().names.flatMap((h) => [h, h]));
      // Every pair done once, by ranks of several hosts.
      const doneBy: string[] = [];
      for (const [k, host] of byRank.entries()) {
        const log = await readFile(join(out, job, `log_rank${String(k).padStart(4, '0')}.txt`), 'utf8');
        for (let i = 0; i < (log.match(/ done /g) ?? []).length; i++) doneBy.push(host);
      }
      assert.equal(doneBy.length, 16);
      assert.ok(Object.keys(tally(doneBy)).length >= 2, `pairs done on ${JSON.stringify(tally(doneBy))}`);
      await assertHostsEmpty();
    }
  });

  it('mean-image on 8 ranks over the hosts equals the local result (statistics and PNG)', async () => {
    const one = join(tmp!, 'mi-local');
    const many = join(tmp!, 'mi-hosts');
    const l = await runCli(['mean-image', images, '-o', one, '-q']);
    assert.equal(l.code, 0, l.stderr);
    const r = await mpirun(8, ['mean-image', images, '-o', many]).done;
    assert.equal(r.code, 0, describeRun(['mpirun', '-n', '8', 'mean-image'], r));
    // One job of 8 ranks, reported once by rank 0 (8 lone copies would each report).
    assert.equal(r.stderr.match(/mean-image: 32 computed/g)?.length, 1, r.stderr);
    assert.ok((await readFile(join(many, 'mean.png'))).equals(await readFile(join(one, 'mean.png'))), 'mean.png');
    assert.deepEqual(await h5Content(join(many, 'mean.h5'), [many, one]), await h5Content(join(one, 'mean.h5')));
  });

  it('mean of the PIV results on 8 ranks over the hosts equals the local mean', async () => {
    const one = join(tmp!, 'mean-local.h5');
    const many = join(tmp!, 'mean-hosts.h5');
    const l = await runCli(['mean', reference, '-o', one, '-q']);
    assert.equal(l.code, 0, l.stderr);
    const r = await mpirun(8, ['mean', reference, '-o', many]).done;
    assert.equal(r.code, 0, describeRun(['mpirun', '-n', '8', 'mean'], r));
    assert.equal(r.stderr.match(/mean: 16 computed/g)?.length, 1, r.stderr);
    assert.deepEqual(await h5Content(many, [many, one]), await h5Content(one));
  });

  it('SIGUSR1 to mpirun stops the ranks of every host: exit 3, whole files; a rerun over the hosts completes', async () => {
    const heavy = await synthSeries(tmp!, 'heavy', 'vortex', 40, 128);
    const out = join(tmp!, 'heavy.piv');
    const args = ['piv', heavy, ...HEAVY, '-o', out];
    const job = mpirun(8, args);
    const t0 = Date.now();
    while ((existsSync(out) ? (await results(out)).length : 0) < 4) {
      assert.ok(Date.now() - t0 < 50_000, 'no results after 50 s');
      if (job.child.exitCode !== null) assert.fail(describeRun(args, await job.done));
      await new Promise((r) => setTimeout(r, 30));
    }
    job.child.kill('SIGUSR1');
    const r = await job.done;
    assert.equal(r.code, 3, describeRun(args, r));
    assert.doesNotMatch(r.stderr, /MPI_ABORT/);
    const done = await results(out);
    assert.ok(done.length >= 4 && done.length < 40, `${done.length} results`);
    for (const f of done) assert.equal((await readPivFile(join(out, f))).passes.length, 3, f);
    assert.ok(!(await readdir(out)).some((f) => f.endsWith('.tmp') || f === LOCK_NAME), 'no temporary file, lock released');
    const [jobDir] = await listJobDirs(out);
    const summary = JSON.parse(await readFile(join(out, jobDir, 'summary.json'), 'utf8')) as { stoppedBy?: string };
    assert.equal(summary.stoppedBy, 'SIGUSR1');
    // Each rank on each host heard the signal itself (mpirun forwards it through its daemons).
    const byRank = await rankHosts(join(out, jobDir));
    assert.deepEqual([...new Set(byRank)].sort(), [...B().names].sort());
    for (const k of byRank.keys()) {
      const log = await readFile(join(out, jobDir, `log_rank${String(k).padStart(4, '0')}.txt`), 'utf8');
      assert.match(log, /received SIGUSR1: no new item will start/, `rank ${k} on ${byRank[k]}:\n${log}`);
    }
    await assertHostsEmpty();

    const again = await mpirun(8, args).done;
    assert.equal(again.code, 0, describeRun(args, again));
    assert.match(again.stderr, new RegExp(`40 pair\\(s\\) in the series, ${done.length} already done, ${40 - done.length} to compute`));
    assert.equal((await results(out)).length, 40);
    const jobs = await listJobDirs(out);
    assert.equal(jobs.length, 2);
    const hosts = (JSON.parse(await readFile(join(out, jobs[1], 'info.json'), 'utf8')) as { hosts: Record<string, number> }).hosts;
    assert.deepEqual(Object.keys(hosts).sort(), [...B().names].sort());
  });

  /**
   * A host that drops off the network mid-series: the job ends by itself within a minute
   * (mpirun's keepalives notice the silent host's daemon and end the job; the ranks of the
   * other hosts stop gracefully on its SIGTERM), with a message naming the host and a
   * non-zero status; every file is whole and a rerun on the hosts that remain completes.
   */
  for (const [k, lost] of ['a worker host', "rank 0's host"].entries()) {
    it(`${lost} whose link goes down mid-series: the job ends within a minute naming it; whole files; a rerun completes`, async function () {
      this.timeout(150_000);
      const heavy = await synthSeries(tmp!, `down${k}`, 'vortex', 40, 128);
      const out = join(tmp!, `down${k}.piv`);
      const args = ['piv', heavy, ...HEAVY, '-o', out];
      const victim = lost === "rank 0's host" ? B().names[0] : B().names[2];
      const job = mpirun(8, args, 120_000);
      const t0 = Date.now();
      while ((existsSync(out) ? (await results(out)).length : 0) < 4) {
        assert.ok(Date.now() - t0 < 50_000, 'no results after 50 s');
        if (job.child.exitCode !== null) assert.fail(describeRun(args, await job.done));
        await new Promise((r) => setTimeout(r, 30));
      }
      const downAt = Date.now();
      B().linkDown(victim);
      try {
        const r = await job.done;
        const after = (Date.now() - downAt) / 1000;
        assert.notEqual(r.code, 0, describeRun(args, r));
        assert.ok(after < 60, `the job ended ${after.toFixed(1)} s after the link went down:\n${r.stderr.slice(-3000)}`);
        assert.ok(r.stderr.includes(victim), `the message names ${victim}:\n${r.stderr}`);
        const done = await results(out);
        for (const f of done) assert.equal((await readPivFile(join(out, f))).passes.length, 3, f);
      } finally {
        B().linkUp(victim);
        await B().killAll();
      }
      // The rerun, on the hosts that remain (the rerun runs on the others if rank 0's host is gone).
      const again = await launch('mpirun', [...B().mpirunArgs(4, { oversubscribe: true }), process.execPath, RUN_JS, ...args], { timeoutMs: 120_000 }).done;
      assert.equal(again.code, 0, describeRun(args, again));
      assert.equal((await results(out)).length, 40);
    });
  }

  // On 2 cores: 32 ranks about 35 s, 48 about 45 s (3.4 GB), 64 80-150 s (4.4 GB): start-up
  // (about 1.1 s of CPU a rank) and ranks waiting for work (they poll every millisecond)
  // share the cores. FLUIDIMAGE_MULTIHOST_RANKS=64 for 64 ranks.
  it(`${MANY} ranks oversubscribed over the 4 hosts (70 pairs of 64x64): the files of the local executor`, async function () {
    this.timeout(60_000 + MANY * 2_500);
    const ranks = MANY;
    const tiny = await synthSeries(tmp!, 'tiny', 'uniform', 70, 64);
    const ref = join(tmp!, 'tiny-local');
    const expected = await localPiv(tiny, ref, SMALL, 70);
    const out = join(tmp!, 'tiny-hosts');
    const job = mpirun(ranks, ['piv', tiny, ...SMALL, '-o', out], 50_000 + ranks * 2_500);
    // Peak memory of everything in the hosts (ranks and Open MPI daemons): proportional set
    // sizes, so that the pages the processes share are counted once; sampled every 2 s (more
    // often costs the 2 cores much CPU with 64 ranks).
    let peak = 0;
    const sample = setInterval(() => {
      let total = 0;
      for (const pid of B().names.flatMap((h) => B().pids(h))) {
        try {
          total += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
        } catch {
          // exited meanwhile
        }
      }
      peak = Math.max(peak, total);
    }, 2_000);
    const r = await job.done.finally(() => clearInterval(sample));
    console.log(`      ${ranks} ranks over 4 hosts: ${r.seconds.toFixed(1)} s, peak memory (PSS) of the hosts' processes ${(peak / 1024 / 1024).toFixed(2)} GiB`);
    assert.equal(r.code, 0, describeRun(['mpirun', '-n', String(ranks), 'piv'], r));
    assert.match(r.stderr, new RegExp(`executor mpi with ${ranks} rank\\(s\\)`));
    assert.deepEqual(await results(out), expected);
    await assertSameFiles(out, ref, expected);
    const [jobDir] = await listJobDirs(out);
    const info = JSON.parse(await readFile(join(out, jobDir, 'info.json'), 'utf8')) as { hosts: Record<string, number> };
    assert.deepEqual(Object.keys(info.hosts).sort(), [...B().names].sort());
    assert.equal(Object.values(info.hosts).reduce((a, b) => a + b, 0), ranks);
    await assertHostsEmpty();
  });
});

describe('multi-host test bed: nothing outlives the process that made it', function () {
  this.timeout(30_000);
  const HOSTS_JS = new URL('./helpers/hosts.js', import.meta.url).href;

  before(async function () {
    let missing = hostsMissing({ mpirun: false });
    if (missing === undefined) {
      try {
        await (await startHosts(1)).stop();
      } catch (e) {
        if (!(e instanceof HostsUnavailable)) throw e;
        missing = `the hosts could not be made: ${e.message}`;
      }
    }
    if (missing !== undefined) {
      console.log(`    (skipped: ${missing})`);
      this.skip();
    }
  });

  /** The namespaces of this machine (names). */
  const namespaces = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n !== '');
  const linkExists = (name: string) => spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0;

  // How the process ends: its own exit, an uncaught exception, a signal (Ctrl-C, kill).
  for (const [how, code] of [['process.exit(0)', 'exit'], ['throw new Error("boom")', 'exception'], ['setInterval(() => {}, 1000)', 'SIGTERM'], ['setInterval(() => {}, 1000)', 'SIGINT']] as const) {
    it(`a bed not stopped is removed when its process ends (${code})`, async () => {
      const script = `const m = await import(${JSON.stringify(HOSTS_JS)}); const b = await m.startHosts(2);
        b.spawn(b.names[0], ['sleep', '60'], { stdio: 'ignore' });
        console.log(JSON.stringify({ names: b.names, bridge: b.bridge, veths: b.veths, dir: b.dir }));
        await new Promise((r) => process.stdin.once('data', r)); ${how}`;
      // The child ends its own way only once told (a line on stdin): the bed is checked up before.
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
      const made = await new Promise<{ names: string[]; bridge: string; veths: string[]; dir: string }>((resolve, reject) => {
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          if (out.includes('\n')) resolve(JSON.parse(out) as { names: string[]; bridge: string; veths: string[]; dir: string });
        });
        child.on('exit', () => (out.includes('\n') ? undefined : reject(new Error(`no bed made:\n${err}`))));
      });
      assert.ok(made.names.every((n) => namespaces().includes(n)) && linkExists(made.bridge), 'the bed was up');
      child.stdin.end('go\n');
      if (code === 'SIGTERM' || code === 'SIGINT') child.kill(code);
      const status = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('close', (c, s) => r([c, s])));
      // Its own fate is unchanged: killed by the signal, status 1 after an exception.
      assert.deepEqual(status, code === 'exit' ? [0, null] : code === 'exception' ? [1, null] : [null, code], err);
      assert.deepEqual(made.names.filter((n) => namespaces().includes(n)), [], 'namespaces left');
      assert.deepEqual([made.bridge, ...made.veths].filter(linkExists), [], 'links left');
      assert.equal(existsSync(made.dir), false, 'directory left');
    });
  }
});
