/**
 * The batch templates on a real multi-node Slurm: 2 network-namespace hosts
 * (test/helpers/hosts.ts), one slurmd on each (`slurmd -N HOST` in its namespace, with its
 * hostname and address), slurmctld and munged beside them (test/helpers/slurm.ts).
 * piv-multi-node.sbatch runs one MPI job over both nodes with srun --mpi=pmix and gives the
 * files of the local executor; the walltime signal (scancel --signal=USR1 --batch) stops the
 * ranks of both nodes with whole files and the resubmission completes; piv-array.sbatch runs
 * its tasks on different nodes into one directory. Skipped where Slurm or the hosts cannot
 * be made (not root, not installed, namespaces refused).
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPivFile } from '../io/pivfile.js';
import { native } from '../native.js';
import { listJobDirs, makeTempDir, present, removeDir, synthSeries } from './helpers/cli.js';
import { hostsMissing, HostsUnavailable, startHosts, type Hosts } from './helpers/hosts.js';
import { assertSameFiles, localPiv, rankHosts, results } from './helpers/results.js';
import { describeJob, outText, slurmMissing, SlurmUnavailable, startSlurm, submitTemplate, untilCount, type Slurm } from './helpers/slurm.js';

const SMALL_YAML = 'piv0:\n  shape_crop_im0: 32\n';
/** About 0.1 s a pair and rank at 128 px: a stop lands mid-series. */
const HEAVY_YAML = 'piv0:\n  shape_crop_im0: 32\n  grid:\n    overlap: 0.75\nmultipass:\n  number: 3\n';

interface JobInfo { executor: string; ranks: number; hosts: Record<string, number> }

describe('Slurm batch templates on a 2-node Slurm (namespace hosts)', function () {
  this.timeout(120_000);
  let bed: Hosts | undefined;
  let slurm: Slurm | undefined;
  let tmp: string | undefined;
  let small = '';

  before(async function () {
    this.timeout(60_000);
    const missing = slurmMissing() ?? hostsMissing({ mpirun: false }) ??
      (native().mpiAvailable() ? undefined : 'the native core was built without MPI (the templates launch MPI jobs)');
    if (missing !== undefined) {
      console.log(`    (skipped: ${missing})`);
      this.skip();
    }
    try {
      bed = await startHosts(2);
      slurm = await startSlurm({ hosts: bed });
    } catch (e) {
      if (!(e instanceof SlurmUnavailable || e instanceof HostsUnavailable)) throw e;
      await bed?.stop();
      console.log(`    (skipped: the multi-node Slurm did not start: ${e.message.replace(/\n/g, '\n      ')})`);
      this.skip();
    }
    tmp = await makeTempDir('slurm-nodes');
    small = join(tmp, 'small.yaml');
    await writeFile(small, SMALL_YAML);
  });
  afterEach(async function () {
    await slurm?.cancelAll();
    if (this.currentTest?.state !== 'passed' || bed === undefined || slurm === undefined) return;
    // Nothing of the jobs survives on the nodes: only the slurmd daemons are left.
    const daemons = new Set(slurm.daemonPids());
    let left: number[] = [];
    for (let k = 0; k < 50; k++) {
      left = bed.names.flatMap((h) => bed!.pids(h)).filter((p) => !daemons.has(p));
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(left, [], 'processes of the jobs left on the nodes');
  });
  after(async () => {
    await slurm?.stop();
    await bed?.stop();
    await removeDir(tmp);
  });

  const S = (): Slurm => present(slurm);
  const B = (): Hosts => present(bed);
  const T = (): string => present(tmp);

  const synth = (name: string, kind: string, pairs: number) => synthSeries(T(), name, kind, pairs, 128);
  const submit = (template: string, args: readonly string[], sbatch: readonly string[], vars: readonly string[] = []) =>
    submitTemplate(S(), T(), template, args, { sbatch, vars });

  const info = async (out: string, job: string): Promise<JobInfo> => JSON.parse(await readFile(join(out, job, 'info.json'), 'utf8')) as JobInfo;
  const bothNodes = () => Object.fromEntries(B().names.map((h) => [h, 2]));

  it('piv-multi-node.sbatch on 2 nodes x 2 ranks (srun --mpi=pmix): the files of the local executor; the job names both nodes', async () => {
    const images = await synth('multi', 'uniform', 8);
    const ref = join(T(), 'multi.local');
    const names = await localPiv(images, ref, ['-c', small], 8);
    const id = await submit('piv-multi-node.sbatch', [images, small], ['--nodes=2', '--ntasks-per-node=2']);
    const rec = await S().waitJob(id, 60_000);
    const why = `${describeJob(rec)}\n${outText(join(T(), `fluidimage-piv-${id}.out`))}\n${S().logTail()}`;
    assert.deepEqual([rec.length, rec[0].state, rec[0].exitCode], [1, 'COMPLETED', '0:0'], why);
    assert.match(rec[0].raw, new RegExp(`NodeList=${B().tag}h\\[1-2\\]`), why);
    const out = `${images}.piv`;
    assert.deepEqual(await results(out), names, why);
    // The template leaves the output directory to its default (IMAGES.piv).
    await assertSameFiles(out, ref, names, ['/params/saving@path']);
    const [job] = await listJobDirs(out);
    const i = await info(out, job);
    assert.deepEqual([i.executor, i.ranks, i.hosts], ['mpi', 4, bothNodes()], why);
    // Block distribution: ranks 0-1 on the first node, 2-3 on the second.
    assert.deepEqual(await rankHosts(join(out, job)), B().names.flatMap((h) => [h, h]));
  });

  it('piv-multi-node.sbatch: the walltime signal stops the ranks of both nodes (3:0, whole files); the resubmission completes', async () => {
    const images = await synth('stop', 'vortex', 40);
    const params = join(T(), 'heavy.yaml');
    await writeFile(params, HEAVY_YAML);
    const out = `${images}.piv`;
    const sbatch = ['--nodes=2', '--ntasks-per-node=2'];
    const id = await submit('piv-multi-node.sbatch', [images, params], sbatch);
    const seen = await untilCount(S(), id, async () => (await results(out)).length, 3);
    // What Slurm sends before the walltime (--signal=B:USR1@300): USR1 to the batch shell.
    await S().scancel(['--signal=USR1', '--batch', id]);
    const rec = await S().waitJob(id, 60_000);
    const outFile = join(T(), `fluidimage-piv-${id}.out`);
    const why = `${describeJob(rec)}\n${outText(outFile)}`;
    assert.deepEqual([rec[0].state, rec[0].exitCode], ['FAILED', '3:0'], why);
    assert.match(await readFile(outFile, 'utf8'), /walltime near, stopping gracefully/);
    const done = await results(out);
    assert.ok(done.length >= seen && done.length < 40, `${done.length} results (stop sent after ${seen})\n${why}`);
    for (const f of done) assert.equal((await readPivFile(join(out, f))).passes.length, 3, f);
    assert.deepEqual((await readdir(out)).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock')), [], 'no temporary file, no lock');
    const [job] = await listJobDirs(out);
    assert.deepEqual((await info(out, job)).hosts, bothNodes());
    // srun passed the signal on to every rank, on both nodes.
    const byRank = await rankHosts(join(out, job));
    assert.deepEqual(byRank, B().names.flatMap((h) => [h, h]));
    for (const k of byRank.keys()) {
      const log = await readFile(join(out, job, `log_rank${String(k).padStart(4, '0')}.txt`), 'utf8');
      assert.match(log, /received SIGUSR1: no new item will start/, `rank ${k} on ${byRank[k]}:\n${log}`);
    }

    const id2 = await submit('piv-multi-node.sbatch', [images, params], sbatch);
    const rec2 = await S().waitJob(id2, 90_000);
    const outFile2 = join(T(), `fluidimage-piv-${id2}.out`);
    const why2 = `${describeJob(rec2)}\n${outText(outFile2)}`;
    assert.deepEqual([rec2[0].state, rec2[0].exitCode], ['COMPLETED', '0:0'], why2);
    assert.match(await readFile(outFile2, 'utf8'), new RegExp(`40 pair\\(s\\) in the series, ${done.length} already done, ${40 - done.length} to compute`));
    assert.equal((await results(out)).length, 40, why2);
  });

  it('piv-array.sbatch: 2 tasks of one node each run on different nodes, into one directory, with the local files', async () => {
    const images = await synth('array', 'uniform', 6);
    const ref = join(T(), 'array.local');
    const names = await localPiv(images, ref, ['-c', small], 6);
    // 2 ranks a task fill a node (2 CPUs): the tasks run at once, one on each node.
    const id = await submit('piv-array.sbatch', [images, small], ['--array=0-1', '--nodes=1', '--ntasks-per-node=2'], ['PAIRS_PER_TASK=3']);
    const rec = await S().waitJob(id, 60_000);
    const why = `${describeJob(rec)}\n${[0, 1].map((k) => outText(join(T(), `fluidimage-piv-array-${id}_${k}.out`))).join('\n')}`;
    assert.equal(rec.length, 2, why);
    for (const r of rec) assert.deepEqual([r.state, r.exitCode], ['COMPLETED', '0:0'], why);
    const out = `${images}.piv`;
    assert.deepEqual(await results(out), names, why);
    // Each task records its part of the series (ind_start, ind_stop).
    await assertSameFiles(out, ref, names, ['/params/saving@path', '/params/series@ind_start', '/params/series@ind_stop']);
    const jobs = await listJobDirs(out);
    assert.equal(jobs.length, 2);
    const hosts = await Promise.all(jobs.map(async (j) => Object.keys((await info(out, j)).hosts)));
    assert.deepEqual(hosts.map((h) => h.length), [1, 1], JSON.stringify(hosts));
    assert.deepEqual(hosts.flat().sort(), [...B().names].sort(), 'one task on each node');
  });

  it('piv-multi-node.sbatch: a node whose link goes down mid-series ends the batch script within a minute naming it, the other node released; whole files; the resubmission completes', async function () {
    this.timeout(240_000);
    const images = await synth('down', 'vortex', 40);
    const params = join(T(), 'heavy-down.yaml');
    await writeFile(params, HEAVY_YAML);
    const out = `${images}.piv`;
    const sbatch = ['--nodes=2', '--ntasks-per-node=2'];
    const id = await submit('piv-multi-node.sbatch', [images, params], sbatch, ['FLUIDIMAGE_RANK_TIMEOUT=10']);
    await untilCount(S(), id, async () => (await results(out)).length, 3);
    const [first, victim] = [B().names[0]!, B().names[1]!];
    const downAt = Date.now();
    B().linkDown(victim);
    const outFile = join(T(), `fluidimage-piv-${id}.out`);
    try {
      // The batch script ends (its exit code set) while Slurm, which cannot reach the lost
      // node, keeps the job COMPLETING on that node alone until it is back or declared down.
      let rec = await S().job(id);
      while (rec[0]?.exitCode === '0:0' && Date.now() - downAt < 90_000) {
        await new Promise((r) => setTimeout(r, 500));
        rec = await S().job(id);
      }
      const after = (Date.now() - downAt) / 1000;
      const why = `${describeJob(rec)}\n${outText(outFile)}`;
      assert.equal(rec[0]!.exitCode, '4:0', `exit status 4 (a rank lost)\n${why}`);
      assert.ok(after < 60, `the batch script ended ${after.toFixed(1)} s after the link went down\n${why}`);
      assert.ok((await readFile(outFile, 'utf8')).includes(victim), `the message names ${victim}\n${why}`);
      assert.doesNotMatch(rec[0]!.raw, new RegExp(`NodeList=\\S*${first}`), `the healthy node ${first} is released\n${why}`);
      for (const f of await results(out)) assert.equal((await readPivFile(join(out, f))).passes.length, 3, f);
    } finally {
      B().linkUp(victim);
    }
    await S().waitJob(id, 60_000);
    const id2 = await submit('piv-multi-node.sbatch', [images, params], sbatch);
    const rec2 = await S().waitJob(id2, 90_000);
    assert.deepEqual([rec2[0]!.state, rec2[0]!.exitCode], ['COMPLETED', '0:0'], `${describeJob(rec2)}\n${outText(join(T(), `fluidimage-piv-${id2}.out`))}`);
    assert.equal((await results(out)).length, 40);
  });
});
