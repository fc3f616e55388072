/**
 * The batch templates (slurm/*.sbatch) on a real one-node Slurm started by the test: PIV
 * with srun --mpi=pmix and with mpirun, a graceful stop by USR1 (the walltime warning) and
 * its resubmission, a job array writing into one output directory. Skipped where Slurm
 * cannot run (not root, not installed, daemons not coming up).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPivFile } from '../io/pivfile.js';
import { native } from '../native.js';
import { listDir, listJobDirs, makeTempDir, mean, removeDir, synthSeries } from './helpers/cli.js';
import { describeJob, outText, startSlurm, slurmMissing, SlurmUnavailable, submitTemplate, untilCount, type Slurm } from './helpers/slurm.js';

/** Heavy enough (about 0.15 s a pair and rank) that a stop lands mid-series. */
const HEAVY_YAML = 'piv0:\n  shape_crop_im0: 64\n  grid:\n    overlap: 0.875\nmultipass:\n  number: 3\n';

async function results(dir: string): Promise<string[]> {
  return (await listDir(dir)).filter((f) => f.endsWith('.h5'));
}

function hasMpirun(): boolean {
  const ok = spawnSync('mpirun', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!ok) console.log('      (skipped: no mpirun; Debian: apt-get install openmpi-bin)');
  return ok;
}

const expected6 = Array.from({ length: 6 }, (_, i) => `piv_${String(i + 1).padStart(4, '0')}ab.h5`);

describe('Slurm batch templates on a real one-node Slurm', function () {
  this.timeout(120_000);
  let slurm: Slurm | undefined;
  let tmp: string | undefined;

  before(async function () {
    // Starting munge and Slurm can take a while on a cold machine.
    this.timeout(60_000);
    const missing = slurmMissing() ??
      (native().mpiAvailable() ? undefined : 'the native core was built without MPI (the templates launch MPI jobs)');
    if (missing !== undefined) {
      console.log(`    (skipped: ${missing})`);
      this.skip();
    }
    try {
      slurm = await startSlurm();
    } catch (e) {
      if (!(e instanceof SlurmUnavailable)) throw e;
      console.log(`    (skipped: Slurm did not start: ${e.message.replace(/\n/g, '\n      ')})`);
      this.skip();
    }
    tmp = await makeTempDir('slurm');
  });
  // A job left running by a failed test would hold the node and fail the next ones.
  afterEach(async () => slurm?.cancelAll());
  // Always: the daemons must not outlive the tests, whatever failed.
  after(async () => {
    await slurm?.stop();
    await removeDir(tmp);
  });

  /** The Slurm and the work directory of before() (the tests do not run when it skipped). */
  const S = (): Slurm => {
    assert.ok(slurm !== undefined);
    return slurm;
  };
  const T = (): string => {
    assert.ok(tmp !== undefined);
    return tmp;
  };

  /** A fresh synthetic double-frame series (im0001a/b ...) in tmp/name. */
  const synth = (name: string, pairs: number, size: number) => synthSeries(T(), name, 'uniform', pairs, size);
  /** sbatch of a template with FLUIDIMAGE_HOME (and extra variables) exported, in tmp. */
  const submit = (template: string, args: readonly string[], opts: { sbatch?: string[]; vars?: string[] } = {}) =>
    submitTemplate(S(), T(), template, args, opts);

  for (const template of ['piv-one-node.sbatch', 'piv-one-node-mpirun.sbatch']) {
    it(`${template}: 2 ranks, 6 pairs, results and job directory`, async function () {
      if (template.includes('mpirun') && !hasMpirun()) this.skip();
      const images = await synth(template.replace('.sbatch', ''), 6, 128);
      const out = `${images}.piv`;
      const id = await submit(template, [images]);
      const rec = await S().waitJob(id, 60_000);
      const outFile = join(T(), `fluidimage-piv-${id}.out`);
      const why = `${describeJob(rec)}\n${await outText(outFile)}`;
      assert.deepEqual([rec.length, rec[0].state, rec[0].exitCode], [1, 'COMPLETED', '0:0'], why);
      assert.ok(existsSync(outFile), `no Slurm output file ${outFile}`);
      assert.deepEqual(await results(out), expected6, why);
      for (const f of expected6) {
        const r = await readPivFile(join(out, f));
        const dx = Array.from(r.passes[r.passes.length - 1].deltaxs).filter(Number.isFinite);
        assert.ok(dx.length > 0 && Math.abs(mean(dx) - 3.3) < 0.2, `${f}: mean deltaxs ${mean(dx)}`);
      }
      const jobs = await listJobDirs(out);
      assert.equal(jobs.length, 1, jobs.join(' '));
      const jobDir = join(out, jobs[0]);
      const info = JSON.parse(await readFile(join(jobDir, 'info.json'), 'utf8')) as { executor: string; ranks: number };
      assert.deepEqual([info.executor, info.ranks], ['mpi', 2], why);
      const logs = (await readdir(jobDir)).filter((f) => /^log_rank\d+\.txt$/.test(f)).sort();
      assert.deepEqual(logs, ['log_rank0000.txt', 'log_rank0001.txt']);
      const summary = JSON.parse(await readFile(join(jobDir, 'summary.json'), 'utf8')) as { done: number; failed: unknown[] };
      assert.deepEqual([summary.done, summary.failed.length], [6, 0]);
    });
  }

  // The resubmission is checked once (the program's --how complete, not the launcher).
  for (const [template, resubmit] of [['piv-one-node.sbatch', true], ['piv-one-node-mpirun.sbatch', false]] as const) {
    it(`${template}: graceful stop by scancel --signal=USR1 --batch: 3:0, whole results${resubmit ? ', resubmission completes' : ''}`, async function () {
      if (template.includes('mpirun') && !hasMpirun()) this.skip();
      const images = await synth(`stop-${template.replace('.sbatch', '')}`, 40, 256);
      const out = `${images}.piv`;
      const params = join(T(), 'heavy.yaml');
      await writeFile(params, HEAVY_YAML);
      const id = await submit(template, [images, params]);
      // A few results, then the walltime warning as Slurm would send it (to the batch shell).
      const seen = await untilCount(S(), id, async () => (await results(out)).length, 3);
      await S().scancel(['--signal=USR1', '--batch', id]);
      const rec = await S().waitJob(id, 60_000);
      const outFile = join(T(), `fluidimage-piv-${id}.out`);
      const why = `${describeJob(rec)}\n${await outText(outFile)}`;
      // A non-zero exit is FAILED for Slurm; 3 is the program's "stopped early, resubmit".
      assert.deepEqual([rec[0].state, rec[0].exitCode], ['FAILED', '3:0'], why);
      assert.match(await readFile(outFile, 'utf8'), /walltime near, stopping gracefully/);
      const done = await results(out);
      assert.ok(done.length >= seen && done.length < 40, `${done.length} results (stop sent after ${seen})\n${why}`);
      for (const f of done) assert.equal((await readPivFile(join(out, f))).passes.length, 3, f);
      const leftovers = (await readdir(out)).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock'));
      assert.deepEqual(leftovers, [], 'no temporary file, no lock');
      const [job] = await listJobDirs(out);
      const summary = JSON.parse(await readFile(join(out, job, 'summary.json'), 'utf8')) as { stoppedBy?: string };
      assert.equal(summary.stoppedBy, 'SIGUSR1');

      if (!resubmit) return;
      // The same command again completes the series.
      const id2 = await submit(template, [images, params]);
      const rec2 = await S().waitJob(id2, 90_000);
      const why2 = `${describeJob(rec2)}\n${await outText(join(T(), `fluidimage-piv-${id2}.out`))}`;
      assert.deepEqual([rec2[0].state, rec2[0].exitCode], ['COMPLETED', '0:0'], why2);
      assert.equal((await results(out)).length, 40, why2);
    });
  }

  it('piv-array.sbatch: 2 tasks of PAIRS_PER_TASK=3, all 6 results in one directory', async () => {
    const images = await synth('array', 6, 128);
    const out = `${images}.piv`;
    // One rank per task: both tasks run at once on the 2 cores, into the same directory.
    const id = await submit('piv-array.sbatch', [images], { sbatch: ['--array=0-1', '--ntasks-per-node=1'], vars: ['PAIRS_PER_TASK=3'] });
    const rec = await S().waitJob(id, 60_000);
    const outs = await Promise.all([0, 1].map((k) => outText(join(T(), `fluidimage-piv-array-${id}_${k}.out`))));
    const why = `${describeJob(rec)}\n${outs.join('\n')}`;
    assert.equal(rec.length, 2, why);
    for (const r of rec) assert.deepEqual([r.state, r.exitCode], ['COMPLETED', '0:0'], why);
    assert.deepEqual(await results(out), expected6, why);
    assert.equal((await listJobDirs(out)).length, 2);
    assert.match(outs[1], /array task 1: pairs 3 to 5/);
  });
});
