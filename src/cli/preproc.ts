/**
 * `fluidimage preproc PATH`: preprocessing of a series of images on one machine: items
 * read ahead on the main thread, computed in `--workers` threads, written atomically;
 * job directory, lock, progress, graceful stop and exit status as `fluidimage piv`.
 */
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { local } from '../executors/local.js';
import { sequential } from '../executors/sequential.js';
import { installStopSignals, StopRequest } from '../executors/stop.js';
import { formatParams } from '../params/load.js';
import { preprocSchema } from '../params/preproc.js';
import { JobDir } from '../report/jobdir.js';
import { OutputLock } from '../report/lock.js';
import { Progress, type Summary } from '../report/progress.js';
import { planPreproc } from '../topologies/preproc.js';
import { PROGRAM, VERSION } from '../version.js';
import type { ParamTree } from '../works/piv/types.js';
import { EXIT_ITEMS_FAILED, EXIT_OK, EXIT_STOPPED, resolveParams, type ParamOptions } from './common.js';

export interface PreprocOptions extends ParamOptions {
  executor?: 'auto' | 'local' | 'sequential' | 'mpi';
  workers?: number;
  quiet?: boolean;
}

/** 1 when an item failed, else 3 when stopped early, else 0 (as piv). */
export function exitStatus(summary: Summary): number {
  if (summary.failed.length > 0) return EXIT_ITEMS_FAILED;
  return summary.stoppedBy ? EXIT_STOPPED : EXIT_OK;
}

/** Lock scope: the index range when the series is restricted (job-array tasks share a directory). */
export function lockScope(params: ParamTree): string | undefined {
  const series = params.series as ParamTree;
  if (series.ind_start === 'first' && series.ind_stop === null) return undefined;
  return `${String(series.ind_start)}-${String(series.ind_stop)}`;
}

/** The executor to use; MPI is refused here (each rank would redo the whole series). */
export async function localExecutor(requested: PreprocOptions['executor'], command: string): Promise<'local' | 'sequential'> {
  const { envRankCount } = await import('../mpi/launcher.js');
  if (requested === 'mpi' || (requested !== 'sequential' && requested !== 'local' && (envRankCount() ?? 1) > 1)) {
    throw Object.assign(new Error(`${command} runs on one machine (all its cores, --workers); the MPI executor is not available for it: ` +
      'run it without mpirun/srun, or split the series with series.ind_start/ind_stop over several jobs'), { code: 'ERR_EXECUTOR' });
  }
  return requested === 'sequential' ? 'sequential' : 'local';
}

export async function runPreproc(o: PreprocOptions): Promise<number> {
  const stop = new StopRequest();
  const logs: ((m: string) => void)[] = [];
  const uninstall = installStopSignals(stop, (m) => logs.forEach((log) => log(m)));
  try {
    return await runWith(o, stop, logs);
  } finally {
    uninstall();
  }
}

async function runWith(o: PreprocOptions, stop: StopRequest, logs: ((m: string) => void)[]): Promise<number> {
  const params = await resolveParams(preprocSchema, o);
  const executor = await localExecutor(o.executor, 'preproc');
  const workers = o.workers ?? availableParallelism();
  // Items run in parallel in threads: one libvips thread per decode avoids oversubscription.
  sharp.concurrency(1);
  sharp.cache(false);
  const threads = executor === 'sequential' ? 1 : workers;
  const plan = await planPreproc(params, { threads });
  try {
    if (!o.quiet) {
      process.stderr.write(`preproc: ${plan.total} item(s) in the series, ${plan.skipped} already done, ${plan.job.items.length} to compute; ` +
        `executor ${executor}${executor === 'sequential' ? '' : ` with ${workers} worker(s)`}; results in ${plan.outputDir}\n`);
    }
    const jobDir = new JobDir(plan.outputDir);
    const lock = OutputLock.acquire(plan.outputDir, jobDir.path, lockScope(params));
    logs.push((m) => {
      process.stderr.write(`\npreproc: ${m}\n`);
      jobDir.log(m);
    });
    try {
      await jobDir.writeStart({
        command: process.argv.slice(1), topology: 'preproc', executor, ranks: 1, workersPerRank: threads,
        program: PROGRAM, version: VERSION, fftw: 'not used', node: process.version, outputDir: plan.outputDir,
        items: { total: plan.total, skipped: plan.skipped, toCompute: plan.job.items.length }, start: new Date().toISOString(),
      }, formatParams(preprocSchema, params, 'yaml'));
      const progress = new Progress('preproc', plan.job.items.length, plan.skipped, process.stderr, o.quiet);
      await (executor === 'sequential' ? sequential : local)(plan.job, {
        workers: threads,
        stop,
        onItem: (r) => {
          jobDir.record(r);
          progress.record(r);
        },
      });
      const summary = progress.finish(stop.signal);
      await jobDir.writeSummary(summary);
      process.stdout.write(`${plan.outputDir}\n`);
      return exitStatus(summary);
    } finally {
      lock.release();
    }
  } finally {
    await plan.close();
  }
}
