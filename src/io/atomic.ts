/**
 * Atomic file creation: a file is written under a temporary name in the same directory and
 * renamed into place only when complete, so a result file that exists is always whole (a
 * killed run leaves at most a hidden `*.tmp`, which `cleanStaleTemps` removes later).
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Suffix of every temporary file made by `writeAtomic`. */
const TMP_SUFFIX = '.tmp';

/** `.<name>.<pid>.<8 hex>.tmp`, the names `writeAtomic` uses (and the only ones cleaned). */
const TMP_PATTERN = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/** Default age after which a temporary file is considered left over by a dead run. */
const DEFAULT_STALE_MS = 15 * 60 * 1000;

/** Temporary name next to `finalPath`: same directory, so that rename(2) is atomic. */
export function tempPathFor(finalPath: string): string {
  const name = `.${basename(finalPath)}.${process.pid}.${randomBytes(4).toString('hex')}${TMP_SUFFIX}`;
  return join(dirname(finalPath), name);
}

/**
 * Write a file atomically: `write` fills a temporary path, which is then fsynced and renamed
 * to `finalPath` (replacing any existing file). If `write` (or anything after it) fails,
 * the temporary file is removed and the error is rethrown; `finalPath` is left untouched.
 */
export async function writeAtomic(
  finalPath: string,
  write: (tmpPath: string) => Promise<void> | void,
): Promise<void> {
  const tmpPath = tempPathFor(finalPath);
  try {
    await write(tmpPath);
    await fsyncPath(tmpPath, 'r+');
    await rename(tmpPath, finalPath);
  } catch (error) {
    await rm(tmpPath, { force: true }).catch(() => undefined);
    throw error;
  }
  // Persist the rename itself; not possible on every platform/filesystem, hence best effort.
  await fsyncPath(dirname(finalPath), 'r').catch(() => undefined);
}

/** fsync a file or directory so its content survives a crash right after the rename. */
async function fsyncPath(path: string, flags: 'r' | 'r+'): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Remove temporary files left in `dir` by killed runs of `writeAtomic`: only names matching
 * its pattern and last modified more than `olderThanMs` ago (default 15 min, far longer than
 * any single write, so files of runs still writing, possibly on other nodes, are kept).
 * `writerGone(pid)` (for a caller that holds the directory's lock) also removes younger files
 * whose writer is known to be gone. Returns the removed paths. A missing directory is not an error.
 */
export async function cleanStaleTemps(dir: string, olderThanMs: number = DEFAULT_STALE_MS,
  writerGone?: (pid: number) => boolean): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') return [];
    throw error;
  }
  const now = Date.now();
  const removed: string[] = [];
  for (const name of names) {
    const match = TMP_PATTERN.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    try {
      const info = await stat(path);
      if (!info.isFile()) continue;
      // Young files are kept unless their writer (the pid in the name) is known to be gone.
      if (now - info.mtimeMs < olderThanMs && !writerGone?.(Number(match[1]))) continue;
      await rm(path, { force: true });
      removed.push(path);
    } catch (error) {
      // Another process may have renamed or removed it meanwhile: nothing left to clean.
      if (isErrnoException(error) && error.code === 'ENOENT') continue;
      throw error;
    }
  }
  return removed;
}

function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error;
}
