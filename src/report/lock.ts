/**
 * One job per output directory: a lock file created exclusively, refreshed by a
 * heartbeat, removed at the end. A lock left by a dead job is cleared: on the same host
 * when its process is gone (or a zombie, or its pid now another process's), anywhere when
 * its heartbeat is older than STALE_MS.
 */
import { existsSync, readFileSync, unlinkSync, utimesSync, writeFileSync, statSync } from 'node:fs';
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
/** A lock whose heartbeat (mtime) is older than this is a dead job's. */
export const STALE_MS = 5 * 60_000;

export interface LockInfo {
  pid: number;
  /** The holder's start time (Linux: clock ticks after boot), so that a reused pid is not taken for it. */
  started?: number;
  host: string;
  start: string;
  jobDir?: string;
  command: string;
}

/** Linux: the process's state letter and start time from /proc; undefined elsewhere or when it is gone. */
function procStat(pid: number): { state: string; started: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name in parentheses (which may hold spaces): state is field 3, starttime field 22.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], started: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

/** Whether the lock's holder still runs: not gone, not a zombie, not another process with its pid. */
export function holderAlive(pid: number, started?: number): boolean {
  if (existsSync('/proc/self/stat')) {
    const st = procStat(pid);
    if (!st || st.state === 'Z' || st.state === 'X') return false;
    return started === undefined || st.started === started;
  }
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
    const info: LockInfo = { pid: process.pid, started: procStat(process.pid)?.started, host: hostname(), start: new Date().toISOString(), jobDir, command: process.argv.slice(1).join(' ') };
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
      const dead = other === undefined || age > STALE_MS || (other.host === hostname() && !holderAlive(other.pid, other.started));
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

  /**
   * Removes the lock of `dir` if it belongs to the job whose job directory is `jobDir`: for
   * the ranks of an MPI job that lost rank 0 (the lock's holder, on a host that is gone).
   */
  static removeIfJob(dir: string, jobDir: string, scope?: string): boolean {
    const path = join(dir, lockName(scope));
    if (OutputLock.read(path)?.jobDir !== jobDir) return false;
    try {
      unlinkSync(path);
      return true;
    } catch {
      return false;
    }
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
