/**
 * Job bookkeeping in the output directory, as Fluidimage's `job_<time>_<pid>`: the
 * resolved parameters (re-runnable with -c), what ran where, one log per rank, one
 * file per failed item and a summary. Small files, appended or written atomically, so a
 * killed job still leaves a readable record.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import type { ItemOutcome, Summary } from './progress.js';

export interface JobInfo {
  command: string[];
  topology: string;
  executor: string;
  ranks: number;
  workersPerRank: number;
  mpiLibrary?: string;
  /** Host names with the number of ranks on each. */
  hosts?: Record<string, number>;
  program: string;
  version: string;
  fftw: string;
  node: string;
  outputDir: string;
  items: { total: number; skipped: number; toCompute: number };
  start: string;
}

/** Timestamp usable in file names (UTC): 2026-11-25_21-03-07. */
function stamp(d = new Date()): string {
  return d.toISOString().slice(0, 19).replace('T', '_').replace(/:/g, '-');
}

/** A file-name-safe version of an item name. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 150);
}

export class JobDir {
  readonly path: string;
  private readonly logPath: string;

  /** The path a new job directory of this process gets (made by the constructor). */
  static newPath(outputDir: string, prefix = 'job_'): string {
    return join(outputDir, `${prefix}${stamp()}_${process.pid}`);
  }

  /** Creates (rank 0) or joins (other ranks: pass the path rank 0 made) the job directory. */
  constructor(outputDir: string, readonly rank = 0, path?: string) {
    this.path = path ?? JobDir.newPath(outputDir);
    mkdirSync(join(this.path, 'failed'), { recursive: true });
    this.logPath = join(this.path, `log_rank${String(rank).padStart(4, '0')}.txt`);
    this.log(`rank ${rank} on ${hostname()} (pid ${process.pid}) joined`);
  }

  /** One timestamped line in this rank's log. */
  log(line: string): void {
    this.bestEffort(() => appendFileSync(this.logPath, `${new Date().toISOString()} ${line}\n`));
  }

  private warned = false;

  /**
   * The job's record must not end the job (a full disk fails the results first, and they
   * say so): a failed write is told once on stderr.
   */
  private bestEffort(write: () => void): void {
    try {
      write();
    } catch (e) {
      if (this.warned) return;
      this.warned = true;
      process.stderr.write(`fluidimage: warning: cannot write the job record in ${this.path}: ${(e as Error).message}\n`);
    }
  }

  /**
   * Records an item's outcome in this rank's log, its error in failed/, and the result
   * file in this rank's results list (one file per rank: appends from several nodes to
   * one file are not safe on shared file systems).
   */
  record(o: ItemOutcome): void {
    this.log(`${o.ok ? 'done' : 'FAILED'} ${o.name} (${o.seconds.toFixed(3)} s)${o.ok ? '' : `: ${o.error}`}`);
    this.bestEffort(() => {
      if (!o.ok) writeFileSync(join(this.path, 'failed', `${safeName(o.name)}.txt`), `${o.name}\n${o.error}\n`);
      else if (o.output) appendFileSync(join(this.path, `results_rank${String(this.rank).padStart(4, '0')}.txt`), `${o.output}\n`);
    });
  }

  async writeStart(info: JobInfo, paramsText: string): Promise<void> {
    await writeAtomic(join(this.path, 'params.yaml'), (tmp) => writeFileSync(tmp, paramsText));
    await writeAtomic(join(this.path, 'info.json'), (tmp) => writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n'));
  }

  async writeSummary(summary: Summary, extra: Record<string, unknown> = {}): Promise<void> {
    const data = {
      end: new Date().toISOString(),
      total: summary.total, done: summary.done, failed: summary.failed.map((f) => ({ name: f.name, error: f.error })),
      skipped: summary.skipped, seconds: summary.seconds, stoppedBy: summary.stoppedBy, ...extra,
    };
    await writeAtomic(join(this.path, 'summary.json'), (tmp) => writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n'))
      .catch((e: unknown) => this.bestEffort(() => {
        throw e;
      }));
  }
}
