/**
 * One job per output directory: a lock file created exclusively, refreshed by a
 * heartbeat, removed at the end. A lock left by a dead job is cleared: on the same host
 * when its process is gone, anywhere when its heartbeat is older than STALE_MS.
 */
import { readFileSync, unlinkSync, utimesSync, writeFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_NAME = '.fluidimage.lock';

/**
 * Lock file name: one per output directory, or one per part of a series (job-array
 * tasks writing disjoint index ranges into the same directory).
 */
export function lockName(scope?: string): string {
  return scope ? `.fluidimage-${scope.replace(/[^A-Za-z0-9_-]+/g, '_')}.lock` : LOCK_NAME;
}

/** Whether a file name is one of the lock files. */
export function isLockName(name: string): boolean {
  return name === LOCK_NAME || /^\.fluidimage-.*\.lock$/.test(name);
}
const HEARTBEAT_MS = 30_000;
const STALE_MS = 5 * 60_000;

interface LockInfo {
  pid: number;
  host: string;
  start: string;
  jobDir?: string;
  command: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class OutputLock {
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  /** Removes the lock file if the process exits without releasing it. */
  private readonly onExit = () => this.release();

  private constructor(readonly path: string) {}

  /** Takes the lock of `dir` or throws an error (code ERR_LOCKED) naming the other job. */
  static acquire(dir: string, jobDir?: string, scope?: string): OutputLock {
    const path = join(dir, lockName(scope));
    const info: LockInfo = { pid: process.pid, host: hostname(), start: new Date().toISOString(), jobDir, command: process.argv.slice(1).join(' ') };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, JSON.stringify(info, null, 2) + '\n', { flag: 'wx' });
        const lock = new OutputLock(path);
        lock.timer = setInterval(() => {
          try {
            const now = new Date();
            utimesSync(path, now, now);
          } catch {
            // The directory went away: nothing left to protect.
          }
        }, HEARTBEAT_MS);
        lock.timer.unref();
        process.once('exit', lock.onExit);
        return lock;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const other = OutputLock.read(path);
      const age = Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0);
      const dead = other === undefined || age > STALE_MS || (other.host === hostname() && !alive(other.pid));
      if (!dead) {
        throw Object.assign(new Error(`The output directory ${dir}${scope ? ` (series part ${scope})` : ''} is in use by another fluidimage job ` +
          `(pid ${other.pid} on ${other.host} since ${other.start}${other.jobDir ? `, job directory ${other.jobDir}` : ''}: ` +
          `${other.command}). Wait for it to end, or write elsewhere with -o; if that job is dead, remove ${path}.`), { code: 'ERR_LOCKED' });
      }
      try {
        unlinkSync(path);
      } catch {
        // Another job cleared it first: try again.
      }
    }
    throw Object.assign(new Error(`Could not take the lock ${path}: another job is starting in ${dir}`), { code: 'ERR_LOCKED' });
  }

  private static read(path: string): LockInfo | undefined {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    } catch {
      return undefined;
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.onExit);
    if (this.timer) clearInterval(this.timer);
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}
