#!/usr/bin/env node
/**
 * Entry point (`fluidimage` / `node dist/run.js`).
 *
 * The native correlation and image decoding run on libuv's thread pool, whose size is
 * read from UV_THREADPOOL_SIZE once, when the pool starts; under ES modules the loader
 * has started it (4 threads) before this file runs. When more threads are needed, the
 * program re-executes itself once with the variable set (forwarding signals and the
 * exit status), and so it does to tune glibc's allocator (executors/malloc_env.ts).
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mallocTuningMissing, withMallocTuning } from './executors/malloc_env.js';
import { catchEarlySignals } from './executors/stop.js';
import { isTopologyName } from './topologies/registry.js';

catchEarlySignals();

function workersFromArgv(argv: readonly string[]): number | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = a.startsWith('--workers=') ? a.slice(10) : a === '--workers' ? argv[i + 1] : undefined;
    if (v !== undefined && /^\d+$/.test(v)) return Number(v);
  }
  return undefined;
}

/** libuv's default pool size. */
const DEFAULT_POOL = 4;

/**
 * In the re-executed child: when the command the user started dies without passing a
 * signal on (kill -9), this process stops as on SIGTERM (items in progress finish, the lock
 * is released) instead of going on alone.
 */
function followParent(): void {
  const parent = Number(process.env[PARENT_VAR]);
  delete process.env[PARENT_VAR];
  if (!Number.isInteger(parent) || parent <= 0) return;
  const check = () => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      process.kill(process.pid, 'SIGTERM');
    }
  };
  const timer = setInterval(check, 500);
  timer.unref();
  check();
}

/** Set by the re-executing parent to its pid. */
const PARENT_VAR = 'FLUIDIMAGE_PARENT_PID';

async function start(): Promise<number> {
  followParent();
  const args = process.argv.slice(2);
  const launchedByMpi = ['OMPI_COMM_WORLD_SIZE', 'PMI_SIZE', 'PMIX_RANK', 'SLURM_STEP_ID'].some((k) => process.env[k] !== undefined);
  if (!launchedByMpi && args[0] !== undefined && isTopologyName(args[0])) {
    // Per pair in flight, one slot for its computation and one for the reading of its
    // successor (file IO, PNG decoding), plus two for writes (an fsync can hold a thread
    // for milliseconds): a computation never waits for a free thread. Idle threads sleep.
    const workers = workersFromArgv(args) ?? availableParallelism();
    const wanted = process.env.UV_THREADPOOL_SIZE ? undefined : Math.max(DEFAULT_POOL, 2 * workers + 2);
    if ((wanted !== undefined && wanted > DEFAULT_POOL) || mallocTuningMissing()) return reexec(wanted);
  }
  const { main } = await import('./cli/main.js');
  return main(args);
}

/**
 * Runs this program again with UV_THREADPOOL_SIZE (when given) and the allocator's tuning
 * (executors/malloc_env.ts) set; resolves to its exit status.
 */
function reexec(poolSize: number | undefined): Promise<number> {
  const env = withMallocTuning(process.env);
  if (poolSize !== undefined) env.UV_THREADPOOL_SIZE = String(poolSize);
  env[PARENT_VAR] = String(process.pid);
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGHUP'];
  const forward = (s: NodeJS.Signals) => child.kill(s);
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      resolve(code ?? (signal ? 128 + 15 : 1));
    });
  });
}

process.exitCode = await start();
