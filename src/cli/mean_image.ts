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
import { JobDir } from '../report/jobdir.js';
import { OutputLock } from '../report/lock.js';
import { Progress } from '../report/progress.js';
import { planMeanImage } from '../topologies/mean_image.js';
import { PROGRAM, VERSION } from '../version.js';
import { EXIT_ITEMS_FAILED, EXIT_OK, EXIT_STOPPED, resolveParams } from './common.js';
import type { PreprocOptions } from './preproc.js';
import { localExecutor, lockScope } from './run_series.js';

export type MeanImageOptions = PreprocOptions;

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
  const executor = await localExecutor(o.executor, 'mean-image');
  const workers = executor === 'sequential' ? 1 : o.workers ?? availableParallelism();
  sharp.concurrency(1);
  sharp.cache(false);
  const plan = await planMeanImage(params);
  const say = (m: string) => {
    if (!o.quiet) process.stderr.write(`mean-image: ${m}\n`);
  };
  if (plan.upToDate) {
    say(`results exist in ${plan.outputDir} (how: complete): nothing to do`);
    process.stdout.write(`${plan.outputDir}\n`);
    return EXIT_OK;
  }
  say(`${plan.total} image(s); executor ${executor} with ${workers} worker(s); results in ${plan.outputDir}`);
  const jobDir = new JobDir(plan.outputDir);
  const lock = OutputLock.acquire(plan.outputDir, jobDir.path, lockScope(params));
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
    say(`mean of ${r.count} image(s) written: ${plan.outputs.join(', ')}`);
    process.stdout.write(`${plan.outputDir}\n`);
    return summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
  } finally {
    lock.release();
  }
}
