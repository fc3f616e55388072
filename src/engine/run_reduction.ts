/**
 * The engine's runner of reducing topologies (topologies/spec.ts ReduceTopologySpec: the
 * mean image, ensemble correlation): sweeps over a series whose items add to partial
 * results, combined after each sweep. The same command line runs on one machine (lanes of
 * the local executor, each with its partials) and under mpirun/srun (rank 0 hands the
 * items out; after each sweep the partials are reduced over the ranks onto rank 0, which
 * combines them and sends every rank what the next sweep needs). Lock, job directory,
 * progress, stop signals, lost ranks and exit statuses as for the series runner. The one
 * result is written at the end only: a job stopped or killed before leaves none.
 */
import { availableParallelism, hostname } from 'node:os';
import sharp from 'sharp';
import { native } from '../native.js';
import { formatParams } from '../params/load.js';
import { Progress, type ItemOutcome, type Summary } from '../report/progress.js';
import { JobDir } from '../report/jobdir.js';
import type { ReducePlan, ReduceTopologySpec, Reduction } from '../topologies/spec.js';
import { local } from '../executors/local.js';
import { sequential } from '../executors/sequential.js';
import { runDispatched } from '../executors/dispatch.js';
import type { Job } from '../executors/types.js';
import { installStopSignals, StopRequest } from '../executors/stop.js';
import { messenger } from './messenger.js';
import { endIfLost, endTogether, gatherHosts, liveness, planTogether, rankTimeoutSeconds, stopTogether, underDeadline } from './liveness.js';
import type { ParamTree } from '../params/tree.js';
import { EXIT_ITEMS_FAILED, EXIT_OK, EXIT_STOPPED } from './exit_codes.js';
import { resolveParams } from '../params/resolve.js';
import type { RunOptions } from './options.js';
import { OutputLock } from '../report/lock.js';
import { checkResults, openJob } from './job_start.js';
import { chooseExecutor, configureNative, countHosts, jobInfo, lockScope, startMpi } from './run_series.js';

/**
 * Outcomes of the sweeps, as one summary whose items are item-sweeps (a series of N pairs
 * in 3 sweeps counts 3N, as the job's info and the monitor do): an item counts as failed
 * once, when it failed in any sweep (the next sweeps leave it out).
 */
class Sweeps {
  private readonly failed = new Map<string, ItemOutcome>();
  private readonly t0 = performance.now();
  private done = 0;
  private progress?: Progress;

  constructor(private readonly label: string, private readonly total: number, private readonly rounds: number, private readonly quiet?: boolean) {}

  start(round: number, items: number): void {
    this.progress = new Progress(this.rounds > 1 ? `${this.label} sweep ${round + 1}/${this.rounds}` : this.label, items, 0, process.stderr, this.quiet);
  }

  record(r: ItemOutcome): void {
    this.progress?.record(r);
    if (!r.ok && !this.failed.has(r.name)) this.failed.set(r.name, r);
  }

  /** Ends a sweep: true when every item of it was computed or failed (not stopped). */
  end(stop: StopRequest): boolean {
    const s = this.progress!.finish(stop.signal);
    this.done += s.done;
    return s.stoppedBy === undefined;
  }

  /** Names of the items that failed (left out of the following sweeps and of the result). */
  get failedNames(): Set<string> {
    return new Set(this.failed.keys());
  }

  /** The job without the items that failed in an earlier sweep. */
  leftOf<J extends Job<I, D, void>, I, D>(job: J): J {
    return this.failed.size === 0 ? job : { ...job, items: job.items.filter((it) => !this.failed.has(job.name(it))) };
  }

  summary(stop: StopRequest): Summary {
    return {
      total: this.total * this.rounds, done: this.done, failed: [...this.failed.values()], skipped: 0,
      seconds: (performance.now() - this.t0) / 1000, ...(stop.signal ? { stoppedBy: stop.signal } : {}),
    };
  }
}

export async function runReduction<I, D>(spec: ReduceTopologySpec<I, D>, o: RunOptions): Promise<number> {
  const stop = new StopRequest();
  const logs: ((m: string) => void)[] = [];
  const uninstall = installStopSignals(stop, (m) => logs.forEach((log) => log(m)));
  try {
    const params = await resolveParams(spec.schema, o);
    const executor = await chooseExecutor(o.executor);
    const wisdom = configureNative(params);
    sharp.concurrency(1);
    sharp.cache(false);
    const status = executor === 'mpi' ? await runMpi(spec, params, o, stop, logs) : await runLocal(spec, params, o, executor, stop, logs);
    if (wisdom) native().exportWisdom(wisdom);
    return status;
  } finally {
    uninstall();
  }
}

/**
 * Rank 0 or local, the end of a reduction (its summary written): the result when every item
 * was swept, the results record closed, the output path printed; returns the exit status.
 */
async function finishReduction<I, D>(spec: ReduceTopologySpec<I, D>, plan: ReducePlan<I, D>, summary: Summary, o: RunOptions,
  say: (m: string) => void, finish: (ok: boolean) => Promise<void>): Promise<number> {
  o.onSummary?.(summary, plan.outputDir);
  const status = await writeResult(spec, plan, summary, say);
  await finish(status === EXIT_OK);
  if (status !== EXIT_STOPPED && summary.failed.length < plan.items.length) process.stdout.write(`${plan.printed ?? plan.outputDir}\n`);
  return status;
}

/** Writes the result when every item was swept (else says why not); the exit status. */
async function writeResult<I, D>(spec: ReduceTopologySpec<I, D>, plan: ReducePlan<I, D>, summary: Summary, say: (m: string) => void): Promise<number> {
  if (summary.stoppedBy) {
    say(`stopped before the end (${summary.stoppedBy}): nothing written; run the same command again`);
    return EXIT_STOPPED;
  }
  if (summary.failed.length >= plan.items.length) {
    say(`no ${spec.itemLabel} could be used: nothing written`);
    return EXIT_ITEMS_FAILED;
  }
  say(await plan.write(summary.failed.map((f) => f.name)));
  return summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
}

function nothingToDo<I, D>(spec: ReduceTopologySpec<I, D>, plan: ReducePlan<I, D>, o: RunOptions): number {
  if (!o.quiet) process.stderr.write(`${spec.name}: results exist in ${plan.printed ?? plan.outputDir} (how: complete): nothing to do\n`);
  o.onSummary?.({ total: plan.items.length, done: 0, failed: [], skipped: plan.items.length, seconds: 0 }, plan.outputDir);
  process.stdout.write(`${plan.printed ?? plan.outputDir}\n`);
  return EXIT_OK;
}

async function runLocal<I, D>(spec: ReduceTopologySpec<I, D>, params: ParamTree, o: RunOptions, executor: 'local' | 'sequential' | 'mpi',
  stop: StopRequest, logs: ((m: string) => void)[]): Promise<number> {
  const lanes = executor === 'sequential' ? 1 : o.workers ?? availableParallelism();
  const plan = await spec.plan(params, { lanes });
  // The result there must come from the same parameters (else: an error naming what differs).
  if (plan.upToDate && !plan.place) checkResults(spec.name, params, plan.outputDir, o.quiet);
  if (plan.upToDate) return nothingToDo(spec, plan, o);
  const { reduction } = plan;
  const { jobDir, lock, finish } = await openJob(spec.name, params, plan.outputDir, o.quiet, plan.place);
  const say = (m: string) => {
    if (!o.quiet) process.stderr.write(`${spec.name}: ${m}\n`);
    jobDir.log(m);
  };
  logs.push((m) => say(m));
  try {
    say(`${plan.items.length} ${spec.itemLabel}(s), ${reduction.rounds} sweep(s); executor ${executor} with ${lanes} worker(s); result in ${plan.outputDir}`);
    const steps = plan.items.length * reduction.rounds;
    await jobDir.writeStart(jobInfo(spec.name, executor, 1, lanes, plan.outputDir, steps, 0, steps),
      formatParams(spec.schema, params, 'yaml'));
    const sweeps = new Sweeps(spec.name, plan.items.length, reduction.rounds, o.quiet);
    for (let round = 0; round < reduction.rounds && !stop.requested; round++) {
      const job = sweeps.leftOf(reduction.job(round, plan.items));
      sweeps.start(round, job.items.length);
      await (executor === 'sequential' ? sequential : local)(job, {
        workers: lanes, stop, onItem: (r) => {
          jobDir.record(r);
          sweeps.record(r);
        },
      });
      if (!sweeps.end(stop) || sweeps.failedNames.size >= plan.items.length) break;
      const partials = reduction.partials(round);
      const totals = Object.fromEntries(Object.entries(partials).map(([k, p]) => [k, p.data]));
      reduction.receive(round, await reduction.combine(round, totals));
    }
    const summary = sweeps.summary(stop);
    await jobDir.writeSummary(summary);
    return await finishReduction(spec, plan, summary, o, say, finish);
  } finally {
    lock.release();
  }
}

/** Rank 0's word after a sweep: go on with `message`, or stop (a stop signal, or nothing usable left). */
type SweepEnd = { go: true; message: unknown } | { go: false };

async function runMpi<I, D>(spec: ReduceTopologySpec<I, D>, params: ParamTree, o: RunOptions, stop: StopRequest,
  logs: ((m: string) => void)[]): Promise<number> {
  const { mpi, comm } = await startMpi();
  const lanes = o.workers ?? 1;
  const timeout = rankTimeoutSeconds(o.rankTimeout);
  let plan: ReducePlan<I, D> | undefined;
  let opened: Awaited<ReturnType<typeof openJob>> | undefined;
  const planned = await planTogether(comm, timeout, async () => {
    plan = await spec.plan(params, { lanes });
    if (plan.upToDate) {
      if (!plan.place) checkResults(spec.name, params, plan.outputDir, o.quiet);
      return { upToDate: true, outputDir: plan.outputDir, jobDir: '', shared: null, scope: undefined };
    }
    if (comm.size > plan.items.length) {
      throw Object.assign(new Error(`${comm.size} MPI ranks for a series of ${plan.items.length} ${spec.itemLabel}(s): ${comm.size - plan.items.length} rank(s) ` +
        `would have nothing to do; start at most ${plan.items.length} (e.g. mpirun -n ${plan.items.length})`), { code: 'ERR_RANKS' });
    }
    opened = await openJob(spec.name, params, plan.outputDir, o.quiet, plan.place);
    return { upToDate: false, outputDir: plan.outputDir, jobDir: opened.jobDir.path, shared: plan.shared, scope: plan.place ? plan.place.scope : lockScope(params) };
  });
  const hosts = gatherHosts(comm, timeout);
  if (!planned.ok) return stopTogether(comm, timeout, planned.error, mpi.finalize);
  const message = planned.value;
  if (message.upToDate) {
    const status = comm.rank === 0 ? nothingToDo(spec, plan!, o) : EXIT_OK;
    return endTogether(comm, timeout, status, mpi.finalize);
  }
  const jobDir = opened?.jobDir ?? new JobDir(message.outputDir, comm.rank, message.jobDir);
  const say = (m: string) => {
    if (comm.rank === 0 && !o.quiet) process.stderr.write(`${spec.name}: ${m}\n`);
    jobDir.log(m);
  };
  logs.push(say);
  const log = (m: string) => logs.forEach((l) => l(m));
  let status = EXIT_OK;
  try {
    const reduction: Reduction<I, D> = plan?.reduction ?? await spec.workerReduction(params, message.shared, lanes);
    const sweeps = plan ? new Sweeps(spec.name, plan.items.length, reduction.rounds, o.quiet) : undefined;
    if (plan) {
      say(`${plan.items.length} ${spec.itemLabel}(s), ${reduction.rounds} sweep(s); executor mpi with ${comm.size} rank(s) x ${lanes} worker(s); result in ${plan.outputDir}`);
      const steps = plan.items.length * reduction.rounds;
      await jobDir.writeStart(jobInfo(spec.name, 'mpi', comm.size, lanes, plan.outputDir, steps, 0, steps,
        mpi.mpiLibraryVersion().split('\n')[0], countHosts(hosts)), formatParams(spec.schema, params, 'yaml'));
    }
    jobDir.log(`rank ${comm.rank}/${comm.size} on ${hostname()}: ${lanes} worker(s)`);
    const abandon = async () => {
      opened?.lock.release();
      if (comm.rank !== 0) OutputLock.removeIfJob(message.outputDir, message.jobDir, message.scope);
    };
    for (let round = 0; round < reduction.rounds; round++) {
      // Rank 0 hands out the items; the others start with none.
      const all = reduction.job(round, plan?.items ?? []);
      const job = sweeps ? sweeps.leftOf(all) : all;
      sweeps?.start(round, job.items.length);
      const run = await runDispatched(messenger(comm, mpi.ANY_SOURCE), job, {
        lanes, stop,
        onItem: (r) => sweeps?.record(r),
        onLocalItem: (r) => jobDir.record(r),
        liveness: liveness(timeout, hosts, log),
      });
      // A result without a lost rank's partials would look complete: the job ends, nothing written.
      await endIfLost(comm, run, timeout, abandon);
      const whole = sweeps ? sweeps.end(stop) && sweeps.failedNames.size < plan!.items.length : true;
      // Every rank's partials onto rank 0, in a fixed order of names.
      const partials = reduction.partials(round);
      const totals = underDeadline(comm, timeout, `the reduction of sweep ${round + 1}`, () => Object.fromEntries(Object.keys(partials).sort()
        .map((k) => [k, comm.reduce(partials[k]!.data, partials[k]!.op, 0)] as const)));
      const end = await planTogether<SweepEnd>(comm, timeout, async () => {
        if (!whole) return { go: false };
        return { go: true, message: await reduction.combine(round, totals as Record<string, Float32Array | Float64Array>) };
      });
      if (!end.ok) return stopTogether(comm, timeout, end.error, mpi.finalize);
      if (!end.value.go) break;
      reduction.receive(round, end.value.message);
    }
    if (plan && sweeps) {
      const summary = sweeps.summary(stop);
      await jobDir.writeSummary(summary, { ranks: comm.size, lostRanks: [] });
      status = await finishReduction(spec, plan, summary, o, say, opened!.finish);
    }
  } finally {
    opened?.lock.release();
  }
  return endTogether(comm, timeout, status, mpi.finalize,
    () => jobDir.log(`rank ${comm.rank} done; peak memory ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`));
}
