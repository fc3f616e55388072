/** `fluidimage piv PATH`: PIV of a series of image pairs. */
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { native } from '../native.js';
import { pivSchema } from '../params/piv.js';
import { Progress } from '../report/progress.js';
import { JobDir } from '../report/jobdir.js';
import { formatParams } from '../params/load.js';
import { PROGRAM, VERSION } from '../version.js';
import { planPiv } from '../topologies/piv.js';
import { local } from '../executors/local.js';
import { sequential } from '../executors/sequential.js';
import type { Executor } from '../executors/types.js';
import type { ParamTree } from '../works/piv/types.js';
import { EXIT_ITEMS_FAILED, EXIT_OK, resolveParams, type ParamOptions } from './common.js';

export interface RunOptions extends ParamOptions {
  executor: 'auto' | 'local' | 'sequential' | 'mpi';
  workers?: number;
  quiet?: boolean;
}

const EXECUTORS: Record<string, Executor> = { local, sequential };

/** Applies the compute.* parameters to the native core (planner, wisdom). */
export function configureNative(params: ParamTree): string | null {
  const compute = params.compute as ParamTree;
  const core = native();
  core.setPlannerEffort(compute.fftw_planner as 'estimate' | 'measure' | 'patient');
  const wisdom = compute.fftw_wisdom as string | null;
  if (wisdom) core.importWisdom(wisdom);
  return wisdom;
}

export async function runPiv(o: RunOptions): Promise<number> {
  const params = await resolveParams(pivSchema, o);
  const workers = o.workers ?? availableParallelism();
  if (o.executor === 'mpi') {
    throw Object.assign(new Error('The MPI executor is not available in this version: run without --executor mpi'), { code: 'ERR_EXECUTOR' });
  }
  const executorName = o.executor === 'auto' ? 'local' : o.executor;
  const wisdom = configureNative(params);
  // libvips threads per image: pairs already run in parallel, one thread each avoids oversubscription.
  sharp.concurrency(1);
  sharp.cache(false);
  const sequentialRun = executorName === 'sequential';
  const plan = await planPiv(params, { threadsPerItem: sequentialRun ? workers : 1 });
  const log = (s: string) => { if (!o.quiet) process.stderr.write(s); };
  log(`piv: ${plan.total} pair(s) in the series, ${plan.skipped} already done, ${plan.job.items.length} to compute; ` +
    `executor ${executorName}${sequentialRun ? '' : ` with ${workers} worker(s)`}; results in ${plan.outputDir}\n`);
  const jobDir = new JobDir(plan.outputDir);
  await jobDir.writeStart({
    command: process.argv.slice(1), topology: 'piv', executor: executorName, ranks: 1,
    workersPerRank: sequentialRun ? 1 : workers, program: PROGRAM, version: VERSION, fftw: native().fftwVersion,
    node: process.version, outputDir: plan.outputDir,
    items: { total: plan.total, skipped: plan.skipped, toCompute: plan.job.items.length }, start: new Date().toISOString(),
  }, formatParams(pivSchema, params, 'yaml'));
  const progress = new Progress('piv', plan.job.items.length, plan.skipped, process.stderr, o.quiet);
  await EXECUTORS[executorName](plan.job, {
    workers: sequentialRun ? 1 : workers,
    onItem: (r) => {
      jobDir.record(r);
      progress.record(r);
    },
  });
  const summary = progress.finish();
  await jobDir.writeSummary(summary);
  if (wisdom) native().exportWisdom(wisdom);
  process.stdout.write(`${plan.outputDir}\n`);
  return summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
}
