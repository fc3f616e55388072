/**
 * The series engine: runs a topology over a series (`fluidimage piv|bos|... PATH`): the
 * same command line runs on one machine (local executor: all cores) and under mpirun/srun
 * (MPI executor, chosen automatically when the launcher started several ranks), with the
 * job directory, the output lock, progress, graceful stop and exit statuses.
 */
import { availableParallelism, hostname } from 'node:os';
import sharp from 'sharp';
import { native } from '../native.js';
import { h5Ready } from '../io/h5.js';
import { formatParams } from '../params/load.js';
import { Progress, type ItemOutcome, type Summary } from '../report/progress.js';
import { JobDir, type JobInfo } from '../report/jobdir.js';
import type { PlannedJob, TopologySpec } from '../topologies/spec.js';
import type { TopologyEntry } from '../topologies/registry.js';
import { local } from '../executors/local.js';
import { sequential } from '../executors/sequential.js';
import { runDispatched } from '../executors/dispatch.js';
import { messenger } from './messenger.js';
import { endIfLost, endTogether, gatherHosts, liveness, planTogether, rankTimeoutSeconds, rootComputes, stopTogether } from './liveness.js';
import { threadLayout, ThreadRanks } from '../executors/threads.js';
import type { Executor } from '../executors/types.js';
import type { ParamTree } from '../params/tree.js';
import { PROGRAM, VERSION } from '../version.js';
import { EXIT_ITEMS_FAILED, EXIT_OK, EXIT_STOPPED } from './exit_codes.js';
import { resolveParams } from '../params/resolve.js';
import type { RunOptions } from './options.js';
import { installStopSignals, StopRequest } from '../executors/stop.js';
import { MALLOC_TUNING } from '../executors/malloc_env.js';
import { OutputLock } from '../report/lock.js';
import { openJob, stopOnFullDisk } from './job_start.js';

export type { RunOptions } from './options.js';

const EXECUTORS: Record<string, Executor> = { local, sequential };

/** Applies the compute.* parameters to the native core (planner, wisdom). */
export function configureNative(params: ParamTree): string | null {
  const compute = params.compute as ParamTree | undefined;
  if (!compute) return null;
  const core = native();
  core.setPlannerEffort(compute.fftw_planner as 'estimate' | 'measure' | 'patient');
  const wisdom = compute.fftw_wisdom as string | null;
  if (wisdom) core.importWisdom(wisdom);
  return wisdom;
}

/** The executor of a command without MPI support; refused under a parallel launch (each rank would redo the series). */
async function localExecutor(requested: RunOptions['executor'] | undefined, command: string): Promise<'local' | 'sequential'> {
  const { envRankCount } = await import('../mpi/launcher.js');
  if (requested === 'mpi' || (requested !== 'sequential' && requested !== 'local' && envRankCount() > 1)) {
    throw Object.assign(new Error(`${command} runs on one machine (all its cores, --workers); the MPI executor is not available for it: ` +
      'run it without mpirun/srun, or split the series with series.ind_start/ind_stop over several jobs'), { code: 'ERR_EXECUTOR' });
  }
  return requested === 'sequential' ? 'sequential' : 'local';
}

/** Which executor: `auto` means MPI when a launcher started several ranks, else local. */
export async function chooseExecutor(requested: RunOptions['executor']): Promise<'local' | 'sequential' | 'mpi'> {
  if (requested !== 'auto') return requested;
  const { envRankCount } = await import('../mpi/launcher.js');
  return (envRankCount() ?? 1) > 1 ? 'mpi' : 'local';
}

/** Runs the registered topology `name` (topologies/registry.ts) over the series of `o.path`. */
export async function runTopology(name: string, o: RunOptions): Promise<number> {
  const { TOPOLOGIES, isTopologyName, loadTopology } = await import('../topologies/registry.js');
  const custom = isTopologyName(name) ? (TOPOLOGIES[name] as TopologyEntry).run : undefined;
  if (custom) return custom(o);
  const spec = await loadTopology(name);
  if (spec.kind === 'reduce') return (await import('./run_reduction.js')).runReduction(spec, o);
  return runSeries(spec, o);
}

export async function runSeries<I, D, R>(spec: TopologySpec<I, D, R>, o: RunOptions): Promise<number> {
  // First thing: a stop signal (Slurm's USR1 before the walltime) may come at any time,
  // and Node's own reaction to SIGUSR1 would be to open a debugger port.
  const stop = new StopRequest();
  const logs: ((m: string) => void)[] = [];
  const uninstall = installStopSignals(stop, (m) => logs.forEach((log) => log(m)));
  try {
    return await runWith(spec, o, stop, logs);
  } finally {
    uninstall();
  }
}

async function runWith<I, D, R>(spec: TopologySpec<I, D, R>, o: RunOptions, stop: StopRequest,
  logs: ((m: string) => void)[]): Promise<number> {
  // The HDF5 library (WebAssembly, ~0.15 s to instantiate) readies while the job is planned,
  // instead of delaying the first result of every process.
  void h5Ready();
  const params = await resolveParams(spec.schema, o);
  const executor = spec.workerJob ? await chooseExecutor(o.executor) : await localExecutor(o.executor, spec.name);
  const wisdom = configureNative(params);
  // libvips threads per image: pairs already run in parallel, one thread each avoids oversubscription.
  sharp.concurrency(1);
  sharp.cache(false);
  // The allocator's tuning (executors/malloc_env.ts), where the process started without it
  // (under mpirun, or run from a script): later than from the environment, better than never.
  if (process.env.MALLOC_MMAP_THRESHOLD_ === undefined) native().setMallocMmapThreshold(Number(MALLOC_TUNING.MALLOC_MMAP_THRESHOLD_));
  if (executor !== 'mpi' && process.env.MALLOC_ARENA_MAX === undefined) native().limitMallocArenas(Number(MALLOC_TUNING.MALLOC_ARENA_MAX));
  const status = executor === 'mpi' ? await runMpiRanks(spec, params, o, stop, logs) : await runLocal(spec, params, o, executor, stop, logs);
  if (wisdom) native().exportWisdom(wisdom);
  return status;
}

export function jobInfo(topology: string, executor: string, ranks: number, workers: number, outputDir: string,
  total: number, skipped: number, toCompute: number, mpiLibrary?: string, hosts: Record<string, number> = { [hostname()]: 1 }): JobInfo {
  return {
    command: process.argv.slice(1), topology, executor, ranks, workersPerRank: workers, mpiLibrary, hosts,
    program: PROGRAM, version: VERSION, fftw: native().fftwVersion, node: process.version, outputDir,
    items: { total, skipped, toCompute }, start: new Date().toISOString(),
  };
}

async function runLocal<I, D, R>(spec: TopologySpec<I, D, R>, params: ParamTree, o: RunOptions, executor: 'local' | 'sequential',
  stop: StopRequest, logs: ((m: string) => void)[]): Promise<number> {
  const workers = o.workers ?? availableParallelism();
  const sequentialRun = executor === 'sequential';
  const plan = await spec.plan(params, { threadsPerItem: sequentialRun ? workers : 1, workers: sequentialRun ? 1 : workers });
  try {
    return await runLocalPlan(spec, params, o, executor, plan, workers, stop, logs);
  } finally {
    await plan.close?.();
  }
}

async function runLocalPlan<I, D, R>(spec: TopologySpec<I, D, R>, params: ParamTree, o: RunOptions, executor: 'local' | 'sequential',
  plan: PlannedJob<I, D, R>, workers: number, stop: StopRequest, logs: ((m: string) => void)[]): Promise<number> {
  const sequentialRun = executor === 'sequential';
  const layout = threadLayout(workers, o.threads);
  const onThreads = !sequentialRun && spec.threads === true && spec.workerJob !== undefined && layout.threads > 1 && plan.job.items.length > layout.lanes;
  const { jobDir, lock, finish } = await openJob(spec.name, params, plan.outputDir, o.quiet);
  if (!o.quiet) {
    process.stderr.write(`${spec.name}: ${plan.total} ${spec.itemLabel}(s) in the series, ${plan.skipped} already done, ${plan.job.items.length} to compute; ` +
      `executor ${executor}${sequentialRun ? '' : ` with ${workers} worker(s)`}${onThreads ? ` on ${layout.threads} threads` : ''}; results in ${plan.outputDir}\n`);
  }
  logs.push((m) => {
    process.stderr.write(`\n${spec.name}: ${m}\n`);
    jobDir.log(m);
  });
  try {
    await jobDir.writeStart(jobInfo(spec.name, executor, 1, sequentialRun ? 1 : workers, plan.outputDir, plan.total,
      plan.skipped, plan.job.items.length), formatParams(spec.schema, params, 'yaml'));
    await h5Ready();
    const progress = new Progress(spec.name, plan.job.items.length, plan.skipped, process.stderr, o.quiet);
    const onItem = stopOnFullDisk(stop, (r: ItemOutcome) => {
      jobDir.record(r);
      progress.record(r);
    }, logs[logs.length - 1]);
    let threadsFailed = false;
    if (onThreads) {
      threadsFailed = !(await runOnThreads(spec, params, plan, layout, stop, onItem, (m) => jobDir.log(m)));
    } else {
      await EXECUTORS[executor](plan.job, { workers: sequentialRun ? 1 : workers, stop, onItem });
    }
    const summary = progress.finish(stop.signal);
    await jobDir.writeSummary(summary);
    await finish(!threadsFailed && exitStatus(summary) === EXIT_OK);
    o.onSummary?.(summary, plan.outputDir);
    process.stdout.write(`${plan.outputDir}\n`);
    return threadsFailed ? EXIT_ITEMS_FAILED : exitStatus(summary);
  } finally {
    lock.release();
  }
}

/**
 * The local executor over several JS threads (executors/threads.ts): this thread hands the
 * items out and computes its share, the others build the job from the parameters.
 */
async function runOnThreads<I, D, R>(spec: TopologySpec<I, D, R>, params: ParamTree, plan: PlannedJob<I, D, R>,
  layout: { threads: number; lanes: number }, stop: StopRequest, onItem: (r: ItemOutcome) => void, log: (m: string) => void): Promise<boolean> {
  const ranks = new ThreadRanks(layout.threads, new URL('./thread_rank.js', import.meta.url), (rank) => ({
    topology: spec.name, params, outputDir: plan.outputDir, lanes: layout.lanes, rank, size: layout.threads,
  }));
  log(`${layout.threads} threads x ${layout.lanes} lane(s)`);
  try {
    await runDispatched(ranks, plan.job, { lanes: layout.lanes, stop, onItem });
    await ranks.joined();
  } catch (e) {
    await ranks.terminate();
    throw e;
  }
  for (const f of ranks.failures) {
    log(`error: ${f}`);
    process.stderr.write(`${spec.name}: error: ${f}; the items it had in flight are not done (rerun with saving.how=complete)\n`);
  }
  return ranks.failures.length === 0;
}

export function countHosts(hosts: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const h of hosts) out[h] = (out[h] ?? 0) + 1;
  return out;
}

/** 1 when an item failed, else 3 when stopped early, else 0. */
function exitStatus(summary: Summary): number {
  if (summary.failed.length > 0) return EXIT_ITEMS_FAILED;
  return summary.stoppedBy ? EXIT_STOPPED : EXIT_OK;
}

/** Lock scope: the index range when the series is restricted (job-array tasks share a directory). */
export function lockScope(params: ParamTree): string | undefined {
  const series = params.series as ParamTree;
  if (series.ind_start === undefined || (series.ind_start === 'first' && series.ind_stop === null)) return undefined;
  return `${String(series.ind_start)}-${String(series.ind_stop)}`;
}

/**
 * The MPI side of a job's start, on every rank: the communicator (a clear error where the
 * native core has no MPI or the launcher is wrong), per-rank limits, abort handlers.
 */
export async function startMpi() {
  const mpi = await import('../mpi/comm.js');
  if (!mpi.mpiAvailable()) {
    throw Object.assign(new Error('The MPI executor is unavailable: the native core was built without MPI. ' +
      'Install an MPI (e.g. libopenmpi-dev) or load an MPI module, then rebuild with `npm run build:native`.'), { code: 'ERR_MPI_UNAVAILABLE' });
  }
  // Many ranks per node: each rank computes one pair at a time, so everything that
  // would start threads or arenas per core is limited here, where users cannot forget it.
  process.env.OMP_NUM_THREADS ??= '1';
  native().limitMallocArenas(Number(process.env.MALLOC_ARENA_MAX ?? 2));
  const comm = mpi.world();
  mpi.checkLauncher(comm);
  mpi.installAbortHandlers();
  return { mpi, comm };
}

async function runMpiRanks<I, D, R>(spec: TopologySpec<I, D, R>, params: ParamTree, o: RunOptions, stop: StopRequest,
  logs: ((m: string) => void)[]): Promise<number> {
  const { mpi, comm } = await startMpi();
  // Pairs per rank at once: ranks are the parallelism; one pair in flight each (plus the
  // next one being read) unless asked otherwise.
  const lanes = o.workers ?? (spec.defaultLanes === 'cores' ? availableParallelism() : 1);
  const timeout = rankTimeoutSeconds(o.rankTimeout);
  let plan: PlannedJob<I, D, R> | undefined;
  let jobDir: JobDir | undefined;
  let lock: OutputLock | undefined;
  let finish: ((ok: boolean) => Promise<void>) | undefined;
  // Rank 0 plans while the others wait for it (watching that it stays alive).
  const planned = await planTogether(comm, timeout, async () => {
    plan = await spec.plan(params, { threadsPerItem: 1, workers: lanes });
    if (comm.size > plan.total) {
      throw Object.assign(new Error(`${comm.size} MPI ranks for a series of ${plan.total} ${spec.itemLabel}(s): ${comm.size - plan.total} rank(s) ` +
        `would have nothing to do; start at most ${plan.total} (e.g. mpirun -n ${plan.total})`), { code: 'ERR_RANKS' });
    }
    ({ jobDir, lock, finish } = await openJob(spec.name, params, plan.outputDir, o.quiet));
    return { outputDir: plan.outputDir, jobDir: jobDir.path };
  });
  // Where the ranks run: for the job's info file, and to name a lost rank's host on any rank.
  const hosts = gatherHosts(comm, timeout);
  if (!planned.ok) return stopTogether(comm, timeout, planned.error, mpi.finalize);
  const message = planned.value;
  if (comm.rank !== 0) jobDir = new JobDir(message.outputDir, comm.rank, message.jobDir);
  const workerJob = plan ? undefined : await spec.workerJob!(params, message.outputDir, lanes);
  await h5Ready();
  const job = plan?.job ?? workerJob!;
  let progress: Progress | undefined;
  if (comm.rank === 0 && plan) {
    if (!o.quiet) {
      process.stderr.write(`${spec.name}: ${plan.total} ${spec.itemLabel}(s) in the series, ${plan.skipped} already done, ${plan.job.items.length} to compute; ` +
        `executor mpi with ${comm.size} rank(s) x ${lanes} worker(s)${rootComputes(comm.size) ? '' : ' (rank 0 hands items out only)'}; results in ${plan.outputDir}\n`);
    }
    await jobDir!.writeStart(jobInfo(spec.name, 'mpi', comm.size, lanes, plan.outputDir, plan.total, plan.skipped,
      plan.job.items.length, mpi.mpiLibraryVersion().split('\n')[0], countHosts(hosts)), formatParams(spec.schema, params, 'yaml'));
    progress = new Progress(spec.name, plan.job.items.length, plan.skipped, process.stderr, o.quiet);
  }
  jobDir!.log(`rank ${comm.rank}/${comm.size} on ${hostname()}: ${lanes} worker(s)`);
  logs.push((m) => {
    if (comm.rank === 0) process.stderr.write(`\n${spec.name}: ${m}\n`);
    jobDir!.log(m);
  });
  const log = logs[logs.length - 1];
  try {
    const run = await runDispatched(messenger(comm, mpi.ANY_SOURCE), job, {
      lanes,
      stop,
      onItem: stopOnFullDisk(stop, (r: ItemOutcome) => progress?.record(r), (m) => logs.forEach((l) => l(m))),
      onLocalItem: (r: ItemOutcome) => jobDir!.record(r),
      liveness: liveness(timeout, hosts, log),
      rootComputes: rootComputes(comm.size),
    });
    let summary: Summary | undefined;
    const writeSummary = async () => {
      if (!progress) return;
      summary = progress.finish(stop.signal);
      await jobDir!.writeSummary(summary, { ranks: comm.size, lostRanks: run.lost });
      await finish?.(exitStatus(summary) === EXIT_OK && run.lost.length === 0);
      o.onSummary?.(summary, message.outputDir);
    };
    // A lost rank: the summary, the lock, then MPI_Abort (MPI_Finalize would wait for it).
    await endIfLost(comm, run, timeout, async () => {
      await writeSummary();
      lock?.release();
      // Rank 0 is gone with its lock: the ranks that lost it free the directory for the rerun.
      if (run.rootLost) OutputLock.removeIfJob(message.outputDir, message.jobDir, lockScope(params));
    });
    await writeSummary();
    if (progress) process.stdout.write(`${message.outputDir}\n`);
    return endTogether(comm, timeout, summary ? exitStatus(summary) : 0, mpi.finalize,
      () => jobDir!.log(`rank ${comm.rank} done; peak memory ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`));
  } finally {
    lock?.release();
    await plan?.close?.();
    await workerJob?.close?.();
  }
}
