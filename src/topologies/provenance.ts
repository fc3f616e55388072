/**
 * What made the results of an output directory: the result-relevant parameters, the
 * program version and the inputs, recorded in `<out>/.fluidimage-results.json` when a job
 * starts (before any result is written). With `--how complete`, a later run with other
 * result-relevant parameters is refused before any work (exit 2), instead of skipping
 * results made otherwise as "already done".
 *
 * Not result-relevant (never compared): where the images are (series.path: the same
 * images moved elsewhere still count), which part of the series (series.ind_*: job-array
 * tasks share a directory), where and how results are saved (saving.path, saving.how,
 * saving.postfix: the file names), and compute.* (FFT planner, wisdom, verbosity: how fast,
 * not what). The program version is recorded and a change is reported, not refused.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { cleanStaleTemps, writeAtomic } from '../io/atomic.js';
import { holderAlive, isLockName } from '../report/lock.js';
import { PROGRAM, VERSION } from '../version.js';
import type { ParamTree } from '../params/tree.js';

export const RECORD_NAME = '.fluidimage-results.json';

/** Dotted keys (or prefixes ending with '.') that do not change results. */
const NOT_RELEVANT = ['series.path', 'series.ind_start', 'series.ind_stop', 'series.ind_step',
  'saving.path', 'saving.how', 'saving.postfix', 'compute.'];

export interface ResultRecord {
  topology: string;
  program: string;
  version: string;
  /** The result-relevant parameters, flattened: dotted key -> value. */
  params: Record<string, unknown>;
  /** The inputs when the record was written (informative, not compared). */
  inputs: string | null;
  /** `--how recompute` started over results of other parameters and has not finished. */
  recomputing?: boolean;
  written: string;
}

/** The parameter tree flattened to dotted keys, without the settings that do not change results. */
export function relevantParams(params: ParamTree): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (tree: ParamTree, prefix: string) => {
    for (const [k, v] of Object.entries(tree)) {
      const key = prefix + k;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v as ParamTree, `${key}.`);
      else if (!NOT_RELEVANT.some((n) => (n.endsWith('.') ? key.startsWith(n) : key === n))) out[key] = v;
    }
  };
  walk(params, '');
  return out;
}

/**
 * `key (old -> new)` for every key of both sets whose value differs. A key in one set
 * only is a parameter another program version added or removed: not a difference.
 */
export function paramDifferences(before: Record<string, unknown>, now: Record<string, unknown>): string[] {
  return Object.keys(now).filter((k) => k in before && JSON.stringify(before[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k} (${JSON.stringify(before[k])} -> ${JSON.stringify(now[k])})`);
}

/** Entries of an output directory that are results (not job directories, locks, hidden files). */
function hasResults(outputDir: string): boolean {
  try {
    return readdirSync(outputDir).some((n) => !n.startsWith('.') && !n.startsWith('job_') && !isLockName(n));
  } catch {
    return false;
  }
}

/** The record of a directory; for directories written before records existed, the latest job's params.yaml. */
function readRecord(outputDir: string, topology: string): ResultRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(outputDir, RECORD_NAME), 'utf8')) as ResultRecord;
  } catch {
    // No record (or unreadable): older directories have job directories.
  }
  let jobs: string[];
  try {
    jobs = readdirSync(outputDir).filter((n) => n.startsWith('job_')).sort().reverse();
  } catch {
    return undefined;
  }
  for (const job of jobs) {
    try {
      const info = JSON.parse(readFileSync(join(outputDir, job, 'info.json'), 'utf8')) as { topology?: string; version?: string };
      if (info.topology !== topology) continue;
      const tree = parseYaml(readFileSync(join(outputDir, job, 'params.yaml'), 'utf8')) as ParamTree;
      return { topology, program: PROGRAM, version: info.version ?? 'unknown', params: relevantParams(tree), inputs: null, written: job };
    } catch {
      // An incomplete job directory (refused or killed at its start): an older one may tell.
    }
  }
  return undefined;
}

function outputError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_PARAMS_CHANGED' });
}

/**
 * Before any work: refuses (`--how complete`) results made with other result-relevant
 * parameters; returns a note for a program version change (or undefined).
 */
export function checkResultParams(topology: string, params: ParamTree, outputDir: string): string | undefined {
  const saving = params.saving as ParamTree | undefined;
  if ((saving?.how ?? 'complete') !== 'complete' || !hasResults(outputDir)) return undefined;
  const record = readRecord(outputDir, topology);
  if (!record) return undefined;
  const choices = 'use --how recompute to redo them or --how new_dir for a fresh directory';
  if (record.topology !== topology) {
    throw outputError(`results in ${outputDir} were made by ${record.topology}, not ${topology}; ${choices}`);
  }
  const diff = paramDifferences(record.params, relevantParams(params));
  if (diff.length > 0) throw outputError(`results in ${outputDir} were made with other parameters: ${diff.join(', ')}; ${choices}`);
  if (record.recomputing) {
    throw outputError(`results in ${outputDir} are a mix: a --how recompute with these parameters over results of other parameters did not finish; ` +
      'rerun it with --how recompute (or use --how new_dir for a fresh directory)');
  }
  if (record.version !== VERSION) return `results in ${outputDir} were made by ${record.program} ${record.version}; this is ${VERSION}`;
  return undefined;
}

/**
 * Records what makes the results of this job (at its start, before any result). A
 * recompute over results of other parameters is marked unfinished until `finish`.
 */
async function recordResultParams(topology: string, params: ParamTree, outputDir: string): Promise<{ finish(ok: boolean): Promise<void> }> {
  const relevant = relevantParams(params);
  const before = readRecord(outputDir, topology);
  const how = (params.saving as ParamTree | undefined)?.how ?? 'complete';
  const mixed = how === 'recompute' && hasResults(outputDir) &&
    (before === undefined || before.recomputing === true || paramDifferences(before.params, relevant).length > 0);
  const record = (recomputing: boolean): ResultRecord => ({
    topology, program: PROGRAM, version: VERSION, params: relevant, inputs: ((params.series as ParamTree | undefined)?.path as string | null) ?? null,
    ...(recomputing ? { recomputing } : {}), written: new Date().toISOString(),
  });
  const write = (r: ResultRecord) => writeAtomic(join(outputDir, RECORD_NAME), (tmp) => writeFileSync(tmp, JSON.stringify(r, null, 2) + '\n'));
  // Job-array tasks (same parameters) write it concurrently: atomic replacement, same content.
  if (mixed || !existsSync(join(outputDir, RECORD_NAME)) || before?.version !== VERSION || paramDifferences(before.params, relevant).length > 0) {
    await write(record(mixed));
  }
  return { finish: async (ok) => (mixed && ok ? write(record(false)) : undefined) };
}

/**
 * The start of a job that holds the output lock, before any result: removes the temporary
 * files of killed runs (any age when the lock covers the whole directory and their writer
 * is gone; else those older than 15 min), records the parameters. `finish(ok)` at the end.
 */
export async function startResults(topology: string, params: ParamTree, outputDir: string, scope: string | undefined): Promise<{ finish(ok: boolean): Promise<void> }> {
  await cleanStaleTemps(outputDir, undefined, scope === undefined ? (pid) => pid !== process.pid && !holderAlive(pid) : undefined);
  return recordResultParams(topology, params, outputDir);
}
