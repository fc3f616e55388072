/**
 * The state of the latest job writing an output directory, from its job directory alone
 * (works for a job running elsewhere, e.g. on cluster nodes): items done and failed, rate,
 * ETA, failures; or the summary of a finished job. Read by `fluidimage monitor` and the viewer.
 *
 * States: `running` (its lock is held by a live process: on this host, the process exists;
 * elsewhere, the heartbeat is recent), `finished`, `stopped` (by a signal or a full disk:
 * the summary says), `dead` (no summary, and the lock is gone, stale, or its holder is gone).
 * Any job directory, however incomplete (a job starting, a killed one), is described.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { JobInfo } from './jobdir.js';
import { holderAlive, isLockName, STALE_MS, type LockInfo } from './lock.js';

export interface JobState {
  outputDir: string;
  jobDir: string;
  state: 'running' | 'finished' | 'stopped' | 'dead';
  /** Why `dead` or `stopped`, in words. */
  reason?: string;
  executor: string;
  ranks: number;
  start: string;
  end?: string;
  /** The latest sign of life: a log line, the lock's heartbeat, the summary (ISO time). */
  lastSignOfLife: string | null;
  total: number;
  skipped: number;
  toCompute: number;
  done: number;
  failed: { name: string; error: string }[];
  ratePerSecond: number;
  etaSeconds: number | null;
  resultFiles: number;
  /** Files of the job directory that are missing or unreadable (e.g. info.json of a job killed at its start). */
  incomplete?: string[];
}

interface SummaryFile { end: string; done: number; failed: { name: string; error: string }[]; seconds: number; stoppedBy?: string }

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function mtime(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.mtimeMs ?? 0;
}

async function readLogs(jobDir: string): Promise<{ done: number; failed: number; latest: number }> {
  let done = 0;
  let failed = 0;
  let latest = 0;
  const names = await readdir(jobDir).catch(() => [] as string[]);
  for (const f of names.filter((n) => n.startsWith('log_rank'))) {
    const text = await readFile(join(jobDir, f), 'utf8').catch(() => '');
    done += (text.match(/Z done /g) ?? []).length;
    failed += (text.match(/Z FAILED /g) ?? []).length;
    latest = Math.max(latest, await mtime(join(jobDir, f)));
  }
  return { done, failed, latest };
}

/** The lock held for `jobDir`, with its heartbeat, or undefined. */
async function lockOf(dir: string, jobDir: string): Promise<{ info: LockInfo; heartbeat: number } | undefined> {
  for (const name of (await readdir(dir)).filter(isLockName)) {
    const info = await readJson<LockInfo>(join(dir, name));
    if (info?.jobDir === jobDir) return { info, heartbeat: await mtime(join(dir, name)) };
  }
  return undefined;
}

/** Whether the holder of a lock still runs, and if not, why. */
function liveness(lock: { info: LockInfo; heartbeat: number } | undefined): { alive: boolean; reason?: string } {
  if (!lock) return { alive: false, reason: 'its lock is gone and it wrote no summary (killed?)' };
  const age = Date.now() - lock.heartbeat;
  if (age > STALE_MS) return { alive: false, reason: `its lock's heartbeat is ${Math.round(age / 1000)} s old (pid ${lock.info.pid} on ${lock.info.host})` };
  if (lock.info.host === hostname() && !holderAlive(lock.info.pid, lock.info.started)) {
    return { alive: false, reason: `its process (pid ${lock.info.pid} on ${lock.info.host}) is gone (killed?)` };
  }
  return { alive: true };
}

export async function jobState(outputDir: string): Promise<JobState> {
  const dir = resolve(outputDir);
  if (!existsSync(dir)) throw Object.assign(new Error(`No such output directory: ${dir}`), { code: 'ERR_INPUT' });
  const jobs = (await readdir(dir)).filter((n) => n.startsWith('job_')).sort();
  if (jobs.length === 0) throw Object.assign(new Error(`No job directory (job_*) in ${dir}: no fluidimage job has written there`), { code: 'ERR_INPUT' });
  const jobDir = join(dir, jobs[jobs.length - 1]);
  const incomplete: string[] = [];
  const info = await readJson<JobInfo>(join(jobDir, 'info.json'));
  if (!info) incomplete.push('info.json');
  const summaryPath = join(jobDir, 'summary.json');
  const summary = await readJson<SummaryFile>(summaryPath);
  if (!summary && existsSync(summaryPath)) incomplete.push('summary.json');
  const logs = await readLogs(jobDir);
  const failedNames = await readdir(join(jobDir, 'failed')).catch(() => [] as string[]);
  const failed = summary?.failed ?? await Promise.all(failedNames.sort().map(async (f) => {
    const [name, ...rest] = (await readFile(join(jobDir, 'failed', f), 'utf8').catch(() => '')).split('\n');
    return { name, error: rest.join(' ').trim() };
  }));
  const lock = summary ? undefined : await lockOf(dir, jobDir);
  const live = liveness(lock);
  const state: JobState['state'] = summary ? (summary.stoppedBy ? 'stopped' : 'finished') : live.alive ? 'running' : 'dead';
  const reason = summary?.stoppedBy ? `stopped by ${summary.stoppedBy}` : summary ? undefined : live.reason;
  // The job directory's own time when info.json is missing (its name holds the start too).
  const start = info?.start ?? new Date((await stat(jobDir)).birthtimeMs || (await mtime(jobDir))).toISOString();
  const done = summary?.done ?? logs.done + logs.failed;
  const elapsed = summary ? summary.seconds : (Date.now() - Date.parse(start)) / 1000;
  const rate = elapsed > 0 ? done / elapsed : 0;
  const latest = Math.max(logs.latest, lock?.heartbeat ?? 0, summary ? await mtime(summaryPath) : 0);
  const toCompute = info?.items.toCompute ?? 0;
  return {
    outputDir: dir, jobDir, state, ...(reason ? { reason } : {}), executor: info?.executor ?? 'unknown', ranks: info?.ranks ?? 0,
    start, end: summary?.end, lastSignOfLife: latest > 0 ? new Date(latest).toISOString() : null,
    total: info?.items.total ?? 0, skipped: info?.items.skipped ?? 0, toCompute, done, failed,
    ratePerSecond: rate, etaSeconds: state === 'running' && rate > 0 && info ? Math.max(0, toCompute - done) / rate : null,
    resultFiles: (await readdir(dir)).filter((n) => n.endsWith('.h5') && !n.startsWith('.')).length,
    ...(incomplete.length ? { incomplete } : {}),
  };
}
