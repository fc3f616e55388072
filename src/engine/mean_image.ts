/**
 * `fluidimage mean-image PATH`: mean (min, max, std) of all the images of a series.
 * Unreadable images are reported and left out (exit status 1); the statistics of the
 * others are written, and the HDF5 file records the failures, so that `--how complete`
 * computes again next time.
 */
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { local } from '../executors/local.js';
import { sequential } from '../executors/sequential.js';
import { installStopSignals, StopRequest } from '../executors/stop.js';
import { formatParams } from '../params/load.js';
import { meanImageSchema } from '../params/mean_image.js';
import { checkResults, openJob } from './job_start.js';
import { recordResultParams } from '../topologies/provenance.js';
import { Progress } from '../report/progress.js';
import { accumulator, planMeanImage, statsOptions } from '../topologies/mean_image.js';
import { ImageSums } from '../works/mean_image.js';
import type { ParamTree } from '../works/piv/types.js';
import { PROGRAM, VERSION } from '../version.js';
import { EXIT_ITEMS_FAILED, EXIT_OK, EXIT_STOPPED } from './exit_codes.js';
import { resolveParams } from '../params/resolve.js';
import { endIfLost, endTogether, gatherHosts, liveness, planTogether, rankTimeoutSeconds, stopTogether, underDeadline } from './liveness.js';
import type { RunOptions } from './options.js';
import { localExecutor } from './run_series.js';

export type MeanImageOptions = RunOptions;

export async function runMeanImage(o: MeanImageOptions): Promise<number> {
  const stop = new StopRequest();
  const logs: ((m: string) => void)[] = [];
  const uninstall = installStopSignals(stop, (m) => logs.forEach((log) => log(m)));
  try {
    return await runWith(o, stop, logs);
  } finally {
    uninstall();
  }
}

async function runWith(o: MeanImageOptions, stop: StopRequest, logs: ((m: string) => void)[]): Promise<number> {
  const params = await resolveParams(meanImageSchema, o);
  const { envRankCount } = await import('../mpi/launcher.js');
  if (o.executor === 'mpi' || ((o.executor ?? 'auto') === 'auto' && envRankCount() > 1)) return runMeanImageMpi(o, params, stop);
  const executor = await localExecutor(o.executor, 'mean-image');
  const workers = executor === 'sequential' ? 1 : o.workers ?? availableParallelism();
  sharp.concurrency(1);
  sharp.cache(false);
  const plan = await planMeanImage(params);
  const say = (m: string) => {
    if (!o.quiet) process.stderr.write(`mean-image: ${m}\n`);
  };
  checkResults('mean-image', params, plan.outputDir, o.quiet);
  if (plan.upToDate) {
    say(`results exist in ${plan.outputDir} (how: complete): nothing to do`);
    o.onSummary?.({ total: plan.total, done: 0, failed: [], skipped: plan.total, seconds: 0 }, plan.outputDir);
    process.stdout.write(`${plan.outputDir}\n`);
    return EXIT_OK;
  }
  say(`${plan.total} image(s); executor ${executor} with ${workers} worker(s); results in ${plan.outputDir}`);
  const { jobDir, lock, finish } = await openJob('mean-image', params, plan.outputDir, o.quiet);
  logs.push((m) => {
    process.stderr.write(`\nmean-image: ${m}\n`);
    jobDir.log(m);
  });
  try {
    await jobDir.writeStart({
      command: process.argv.slice(1), topology: 'mean-image', executor, ranks: 1, workersPerRank: workers,
      program: PROGRAM, version: VERSION, fftw: 'not used', node: process.version, outputDir: plan.outputDir,
      items: { total: plan.total, skipped: 0, toCompute: plan.total }, start: new Date().toISOString(),
    }, formatParams(meanImageSchema, params, 'yaml'));
    const progress = new Progress('mean-image', plan.total, 0, process.stderr, o.quiet);
    await (executor === 'sequential' ? sequential : local)(plan.job, {
      workers,
      stop,
      onItem: (r) => {
        jobDir.record(r);
        progress.record(r);
      },
    });
    const summary = progress.finish(stop.signal);
    await jobDir.writeSummary(summary);
    o.onSummary?.(summary, plan.outputDir);
    if (summary.stoppedBy) {
      // A mean over part of the series would look complete: write nothing.
      say('stopped before the end: nothing written; run the same command again');
      return EXIT_STOPPED;
    }
    if (summary.failed.length === summary.done) {
      say('no image could be read: nothing written');
      return EXIT_ITEMS_FAILED;
    }
    const r = await plan.finish(summary.failed.map((f) => f.name));
    await finish(summary.failed.length === 0);
    say(`mean of ${r.count} image(s) written: ${plan.outputs.join(', ')}`);
    process.stdout.write(`${plan.outputDir}\n`);
    return summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
  } finally {
    lock.release();
  }
}

/**
 * Under mpirun/srun: rank 0 lists the images and hands them out; every rank sums what it
 * reads; the sums are then reduced on rank 0 (sum, sum of squares, min, max, count), which
 * writes the results.
 */
async function runMeanImageMpi(o: MeanImageOptions, params: ParamTree, stop: StopRequest): Promise<number> {
  const mpi = await import('../mpi/comm.js');
  const { runDispatched } = await import('../executors/dispatch.js');
  const { messenger } = await import('./messenger.js');
  const comm = mpi.world();
  mpi.checkLauncher(comm);
  mpi.installAbortHandlers();
  sharp.concurrency(1);
  sharp.cache(false);
  let plan: Awaited<ReturnType<typeof planMeanImage>> | undefined;
  const timeout = rankTimeoutSeconds(o.rankTimeout);
  const planned = await planTogether(comm, timeout, async () => {
    plan = await planMeanImage(params);
    checkResults('mean-image', params, plan.outputDir, o.quiet);
    const g = plan.geometry();
    if (!g) throw Object.assign(new Error('No readable image in the series: nothing written'), { code: 'ERR_INPUT' });
    return { upToDate: plan.upToDate, width: g.width, height: g.height, bitDepth: g.bitDepth };
  });
  const hosts = gatherHosts(comm, timeout);
  if (!planned.ok) return stopTogether(comm, timeout, planned.error, mpi.finalize);
  const message = planned.value;
  if (message.upToDate) {
    if (comm.rank === 0 && !o.quiet) process.stderr.write(`mean-image: results exist in ${plan!.outputDir} (how: complete): nothing to do\n`);
    if (comm.rank === 0) process.stdout.write(`${plan!.outputDir}\n`);
    underDeadline(comm, timeout, 'MPI_Finalize', () => mpi.finalize());
    return EXIT_OK;
  }
  const options = statsOptions(params);
  const geometry = { width: message.width, height: message.height, bitDepth: message.bitDepth };
  const acc = plan ? { partials: plan.partials, used: plan.used, job: () => plan!.job } : accumulator(options, geometry);
  const progress = plan ? new Progress('mean-image', plan.total, 0, process.stderr, o.quiet) : undefined;
  const run = await runDispatched(messenger(comm, mpi.ANY_SOURCE), acc.job([]), {
    lanes: o.workers ?? 1, stop, onItem: (r) => progress?.record(r),
    liveness: liveness(timeout, hosts, (m) => process.stderr.write(`mean-image: ${m}\n`)),
  });
  // A mean without a lost rank's sums would look complete: nothing is written then.
  await endIfLost(comm, run, timeout);
  // This rank's sums, then the reduction over ranks (neutral values where a rank read nothing).
  const size = geometry.width * geometry.height;
  const mine = new ImageSums(size, options);
  for (const p of acc.partials) mine.merge(p);
  const { sum, squares, min, max, count, used } = underDeadline(comm, timeout, 'the reduction of the sums', () => ({
    sum: comm.reduce(mine.sum, 'sum', 0),
    squares: mine.sumSquares ? comm.reduce(mine.sumSquares, 'sum', 0) : undefined,
    min: mine.min ? comm.reduce(mine.min, 'min', 0) : undefined,
    max: mine.max ? comm.reduce(mine.max, 'max', 0) : undefined,
    count: comm.reduce(Float64Array.of(mine.count), 'sum', 0),
    used: comm.gatherObject(acc.used, 0),
  }));
  let status = EXIT_OK;
  if (plan && progress) {
    const summary = progress.finish(stop.signal);
    o.onSummary?.(summary, plan.outputDir);
    const total = new ImageSums(size, options);
    total.sum.set(sum!);
    if (squares) total.sumSquares!.set(squares);
    if (min) total.min!.set(min);
    if (max) total.max!.set(max);
    total.count = count![0];
    plan.partials.splice(0, plan.partials.length, total);
    plan.used.splice(0, plan.used.length, ...used!.flat());
    if (summary.stoppedBy) status = EXIT_STOPPED;
    else if (total.count === 0) status = EXIT_ITEMS_FAILED;
    else {
      await (await recordResultParams('mean-image', params, plan.outputDir)).finish(summary.failed.length === 0);
      await plan.finish(summary.failed.map((f) => f.name));
      process.stdout.write(`${plan.outputDir}\n`);
      status = summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
    }
  }
  return endTogether(comm, timeout, status, mpi.finalize);
}
