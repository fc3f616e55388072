/**
 * The state of the latest job writing an output directory, from its job directory alone
 * (works for a job running elsewhere, e.g. on cluster nodes): items done and failed, rate,
 * ETA, failures; or the summary of a finished job. Read by `fluidimage monitor` and the viewer.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { JobInfo } from './jobdir.js';
import { isLockName } from './lock.js';

export interface JobState {
  outputDir: string;
  jobDir: string;
  state: 'running' | 'finished' | 'stopped' | 'died';
  executor: string;
  ranks: number;
  start: string;
  end?: string;
  total: number;
  skipped: number;
  toCompute: number;
  done: number;
  failed: { name: string; error: string }[];
  ratePerSecond: number;
  etaSeconds: number | null;
  resultFiles: number;
}

async function countLogLines(jobDir: string): Promise<{ done: number; failed: number }> {
  let done = 0;
  let failed = 0;
  for (const f of (await readdir(jobDir)).filter((n) => n.startsWith('log_rank'))) {
    const text = await readFile(join(jobDir, f), 'utf8');
    done += (text.match(/Z done /g) ?? []).length;
    failed += (text.match(/Z FAILED /g) ?? []).length;
  }
  return { done, failed };
}

export async function jobState(outputDir: string): Promise<JobState> {
  const dir = resolve(outputDir);
  if (!existsSync(dir)) throw Object.assign(new Error(`No such output directory: ${dir}`), { code: 'ERR_INPUT' });
  const jobs = (await readdir(dir)).filter((n) => n.startsWith('job_')).sort();
  if (jobs.length === 0) throw Object.assign(new Error(`No job directory (job_*) in ${dir}: no fluidimage job has written there`), { code: 'ERR_INPUT' });
  const jobDir = join(dir, jobs[jobs.length - 1]);
  const info = JSON.parse(await readFile(join(jobDir, 'info.json'), 'utf8')) as JobInfo;
  const summaryPath = join(jobDir, 'summary.json');
  const summary = existsSync(summaryPath)
    ? JSON.parse(await readFile(summaryPath, 'utf8')) as { end: string; done: number; failed: { name: string; error: string }[]; seconds: number; stoppedBy?: string }
    : undefined;
  const counts = await countLogLines(jobDir);
  const failedFiles = existsSync(join(jobDir, 'failed')) ? await readdir(join(jobDir, 'failed')) : [];
  const failed = summary?.failed ?? await Promise.all(failedFiles.sort().map(async (f) => {
    const [name, ...rest] = (await readFile(join(jobDir, 'failed', f), 'utf8')).split('\n');
    return { name, error: rest.join(' ').trim() };
  }));
  const done = summary?.done ?? counts.done + counts.failed;
  const elapsed = summary ? summary.seconds : (Date.now() - Date.parse(info.start)) / 1000;
  const rate = elapsed > 0 ? done / elapsed : 0;
  let lockedByThisJob = false;
  for (const name of (await readdir(dir)).filter(isLockName)) {
    try {
      const lock = JSON.parse(await readFile(join(dir, name), 'utf8')) as { jobDir?: string };
      if (lock.jobDir === jobDir) lockedByThisJob = true;
    } catch {
      // Removed meanwhile: that job ended.
    }
  }
  const state: JobState['state'] = summary ? (summary.stoppedBy ? 'stopped' : 'finished') : lockedByThisJob ? 'running' : 'died';
  const remaining = info.items.toCompute - done;
  return {
    outputDir: dir, jobDir, state, executor: info.executor, ranks: info.ranks, start: info.start, end: summary?.end,
    total: info.items.total, skipped: info.items.skipped, toCompute: info.items.toCompute, done, failed,
    ratePerSecond: rate, etaSeconds: state === 'running' && rate > 0 ? remaining / rate : null,
    resultFiles: (await readdir(dir)).filter((n) => n.endsWith('.h5') && !n.startsWith('.')).length,
  };
}

