/**
 * Lost ranks under MPI (executors/dispatch.ts watches them): the time-out from the command line
 * or the environment, the messages, and the end of a job that lost a rank. MPI_Finalize
 * would wait forever for a lost rank, so such a job ends with MPI_Abort once the others are
 * done, with a message naming the rank and host and a non-zero status (EXIT_RANK_LOST).
 */
import { hostname } from 'node:os';
import type { Liveness, LostRank, DispatchResult } from '../executors/dispatch.js';
import type { Comm } from '../mpi/comm.js';
import { EXIT_RANK_LOST, EXIT_USAGE } from './exit_codes.js';

/** Default silence, seconds, after which a rank counts as lost (the job then ends within about a minute). */
const DEFAULT_RANK_TIMEOUT = 40;

/** The time-out in seconds: --rank-timeout, else FLUIDIMAGE_RANK_TIMEOUT, else the default. */
export function rankTimeoutSeconds(option: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  if (option !== undefined) return option;
  const v = env.FLUIDIMAGE_RANK_TIMEOUT;
  if (v === undefined || v === '') return DEFAULT_RANK_TIMEOUT;
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) {
    throw Object.assign(new Error(`Expected a positive number of seconds for FLUIDIMAGE_RANK_TIMEOUT but received ${JSON.stringify(v)}`), { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return n;
}

/**
 * Whether rank 0 computes items besides handing them out: up to ROOT_COMPUTES_UP_TO ranks
 * (below that, it would leave a large share of the machine idle; above, its answers must
 * not wait behind its own result writes), or as FLUIDIMAGE_ROOT_COMPUTES (1/0) says.
 */
export function rootComputes(size: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.FLUIDIMAGE_ROOT_COMPUTES;
  if (v === '1' || v === 'yes' || v === 'true') return true;
  if (v === '0' || v === 'no' || v === 'false') return false;
  return size <= ROOT_COMPUTES_UP_TO;
}
const ROOT_COMPUTES_UP_TO = 16;

/** What a lost rank is called in messages. */
function describeLost(l: LostRank): string {
  return `rank ${l.rank} on ${l.host} was lost (no sign of life for ${l.silentSeconds} s)`;
}

export function liveness(timeoutSeconds: number, hosts: readonly string[], log: (m: string) => void): Liveness {
  return {
    timeoutMs: timeoutSeconds * 1000,
    hosts,
    onLost: (l) => log(l.rank === 0
      ? `${describeLost(l)}: this rank takes no new item, finishes those it has, then ends the job`
      : `${describeLost(l)}${l.items.length ? `; its ${l.items.length} item(s) in flight are not done` : ''}; the other ranks go on, then the job ends`),
  };
}

/**
 * Ends the job when a rank was lost: rank 0 (after `beforeAbort`: summary, lock) and a rank
 * that lost rank 0 abort at once; the other ranks wait for rank 0's abort, and abort
 * themselves if it does not come. Returns when nothing was lost.
 */
export async function endIfLost(comm: Comm, r: DispatchResult, timeoutSeconds: number, beforeAbort?: () => Promise<void>): Promise<void> {
  const lostHere = r.rootLost ? [r.rootLost] : r.lost;
  if (lostHere.length > 0) {
    await beforeAbort?.();
    const names = lostHere.map(describeLost).join('; ');
    comm.abort(EXIT_RANK_LOST, `${names}; ending the job (rerun the same command to compute the missing items)`);
  }
  if (r.lostElsewhere > 0) {
    await new Promise((resolve) => setTimeout(resolve, timeoutSeconds * 1000));
    comm.abort(EXIT_RANK_LOST, `rank 0 reported ${r.lostElsewhere} lost rank(s) but did not end the job (rank ${comm.rank} on ${hostname()})`);
  }
}

const TAG_START = 100;
/** Seconds the other ranks wait for a silent rank 0 while it plans the job. */
const PLANNING_TIMEOUT = 600;
type StartMessage<T> = { kind: 'alive' } | { kind: 'result'; value: T };

/**
 * The start of an MPI job: rank 0 runs `work` (planning: as long as listing the series
 * takes) while telling the others it is alive; they wait for its result without blocking
 * their JS thread, and end the job if rank 0 goes silent for `timeoutSeconds`.
 */
async function startTogether<T>(comm: Comm, timeoutSeconds: number, work: () => Promise<T>): Promise<T> {
  // Planning may hold rank 0's JS thread for minutes (checking a million result files on a
  // parallel file system), when it cannot send heartbeats: a longer allowance than in the run.
  timeoutSeconds = Math.max(timeoutSeconds, PLANNING_TIMEOUT);
  const intervalMs = Math.min(5000, timeoutSeconds * 100);
  if (comm.rank === 0) {
    const others = Array.from({ length: comm.size - 1 }, (_, k) => k + 1);
    const timer = setInterval(() => {
      for (const r of others) comm.isendObject({ kind: 'alive' } satisfies StartMessage<T>, r, TAG_START).wait().catch(() => undefined);
    }, intervalMs);
    let value: T;
    try {
      value = await work();
    } finally {
      clearInterval(timer);
    }
    await Promise.all(others.map((r) => comm.isendObject({ kind: 'result', value } satisfies StartMessage<T>, r, TAG_START).wait()));
    return value;
  }
  let seen = performance.now();
  const timer = setInterval(() => {
    const silent = (performance.now() - seen) / 1000;
    if (silent > timeoutSeconds) {
      comm.abort(EXIT_RANK_LOST, `rank 0 was lost before the job started (no sign of life for ${silent.toFixed(1)} s); ending the job`);
    }
  }, intervalMs);
  try {
    for (;;) {
      const m = (await comm.irecvObject(0, TAG_START).wait()).value as StartMessage<T>;
      seen = performance.now();
      if (m.kind === 'result') return m.value;
    }
  } finally {
    clearInterval(timer);
  }
}

/** Runs a blocking phase (collectives, MPI_Finalize) that ends the job if a rank is lost meanwhile. */
export function underDeadline<T>(comm: Comm, timeoutSeconds: number, phase: string, fn: () => T): T {
  return comm.withDeadline(timeoutSeconds, EXIT_RANK_LOST,
    `${phase} did not complete within ${timeoutSeconds} s: a rank or its host is lost (rank ${comm.rank} on ${hostname()}); ending the job`, fn);
}

/** Where each rank runs, known to every rank (to name a lost rank's host), under the start deadline. */
export function gatherHosts(comm: Comm, timeoutSeconds: number): string[] {
  return underDeadline(comm, timeoutSeconds, 'the start of the job (every rank saying where it runs)',
    () => comm.bcastObject(comm.gatherObject(hostname(), 0) ?? [], 0));
}

/**
 * The end of an MPI job: rank 0's exit status agreed by every rank (so that the launcher
 * reports it), then `finalize` (MPI_Finalize: exiting non-zero is then an orderly end, not
 * an abort), under the deadline. `onAgreed` runs in between (a last log line).
 */
export function endTogether(comm: Comm, timeoutSeconds: number, status: number, finalize: () => void, onAgreed?: () => void): number {
  return underDeadline(comm, timeoutSeconds, 'the end of the job (exit status, MPI_Finalize)', () => {
    const agreed = comm.bcastObject(status, 0);
    onAgreed?.();
    finalize();
    return agreed;
  });
}

/** Rank 0's plan as every rank receives it: its value, or the error that stops everyone. */
export type Planned<T> = { ok: true; value: T } | { ok: false; error: string };

/** startTogether for a plan that may fail: rank 0's error travels to every rank instead of ending its process. */
export function planTogether<T>(comm: Comm, timeoutSeconds: number, plan: () => Promise<T>): Promise<Planned<T>> {
  return startTogether<Planned<T>>(comm, timeoutSeconds, async () => {
    try {
      return { ok: true, value: await plan() };
    } catch (e) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  });
}

/** Every rank stops with rank 0's planning error, printed once, and an orderly MPI end (exit 2). */
export function stopTogether(comm: Comm, timeoutSeconds: number, error: string, finalize: () => void): number {
  if (comm.rank === 0) process.stderr.write(`fluidimage: error: ${error}\n`);
  underDeadline(comm, timeoutSeconds, 'MPI_Finalize', finalize);
  return EXIT_USAGE;
}
