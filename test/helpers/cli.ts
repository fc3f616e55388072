/**
 * Helpers for the end-to-end tests of the command line: run `node dist/run.js ...` as a
 * child process, work in throw-away directories, copy sample images, find external tools.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SHARED_IMAGE_SAMPLES } from './shared.js';

/** dist/run.js (this file is dist/test/helpers/cli.js once compiled). */
export const RUN_JS = fileURLToPath(new URL('../../run.js', import.meta.url));
/** The repository root (holds samples/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Real images shared between projects; absent on some machines. */
export const SHARED_SAMPLES = SHARED_IMAGE_SAMPLES;
export const PYTHON = '/usr/bin/python3';

export interface CliResult {
  /** Exit status (null if killed by a signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock seconds. */
  seconds: number;
}

/** A running command; `done` resolves with its result. */
export interface Launched {
  child: ChildProcess;
  done: Promise<CliResult>;
}

/**
 * Starts `cmd ...args`; `done` resolves when it exits (never rejects on a non-zero status:
 * the tests check it). Killed after `timeoutMs`.
 */
export function launch(cmd: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Launched {
  const t0 = performance.now();
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        seconds: (performance.now() - t0) / 1000,
      });
    });
  });
  return { child, done };
}

/** Runs `node dist/run.js ...args` (see launch). */
export function runCli(args: readonly string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return launch(process.execPath, [RUN_JS, ...args], opts).done;
}

/** Whether `mpirun` is there (Open MPI's launcher; Debian: openmpi-bin). */
export const HAS_MPIRUN = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;

/** `mpirun -n N node dist/run.js ...args` on this machine (oversubscribed; as root where needed); see launch. */
export function launchMpirun(n: number, args: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Launched {
  const root = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
  return launch('mpirun', [...root, '--oversubscribe', '-n', String(n), process.execPath, RUN_JS, ...args], opts);
}

/** A fresh synthetic double-frame series (`fluidimage synth KIND`) in `dir`/`name`; its path. */
export async function synthSeries(dir: string, name: string, kind: string, pairs: number, size: number): Promise<string> {
  const images = join(dir, name);
  const s = await runCli(['synth', kind, '-o', images, '--pairs', String(pairs), '--size', String(size)]);
  assert.equal(s.code, 0, s.stderr);
  return images;
}

/** What before() set up, for the tests (which do not run when it skipped). */
export function present<T>(value: T | undefined): T {
  assert.ok(value !== undefined, 'not set up');
  return value;
}

/** A one-line description of a run, for assertion messages. */
export function describeRun(args: readonly string[], r: CliResult): string {
  return `fluidimage ${args.join(' ')} -> status ${r.code}${r.signal ? ` (${r.signal})` : ''}\n` +
    `--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
}

/** Last non-empty line of a text. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines[lines.length - 1] ?? '';
}

/** A fresh temporary directory (`os.tmpdir()/fluidimage-cli-XXXXXX`). */
export function makeTempDir(label = 'cli'): Promise<string> {
  return mkdtemp(join(tmpdir(), `fluidimage-${label}-`));
}

/** Removes a directory made by makeTempDir (ignores errors). */
export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}

/**
 * Copies the image files of `srcDir` (not sub-directories) into a new directory `dest`,
 * made writable (the shared samples are read-only). Returns the copied names.
 */
export async function copyImages(srcDir: string, dest: string, filter: (name: string) => boolean = () => true): Promise<string[]> {
  await mkdir(dest, { recursive: true });
  const names: string[] = [];
  for (const entry of await readdir(srcDir, { withFileTypes: true })) {
    if (!entry.isFile() || !filter(entry.name)) continue;
    await copyFile(join(srcDir, entry.name), join(dest, entry.name));
    await chmod(join(dest, entry.name), 0o644);
    names.push(entry.name);
  }
  return names.sort();
}

/** Sorted file names of a directory ([] when it does not exist). */
/** Entries of an output directory, without the job bookkeeping directories (job_*). */
export async function listDir(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  // The record of what made the results (topologies/provenance.ts) is bookkeeping too.
  return (await readdir(dir)).filter((n) => !n.startsWith('job_') && n !== '.fluidimage-results.json').sort();
}

/** The job bookkeeping directories (job_*) of an output directory. */
export async function listJobDirs(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((n) => n.startsWith('job_')).sort();
}

/** mtime (ms) of each file, by name. */
export async function mtimes(dir: string, names: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (await stat(join(dir, n))).mtimeMs;
  return out;
}

/** True when /usr/bin/python3 exists and can import h5py. */
export function hasPythonH5py(): boolean {
  if (!existsSync(PYTHON)) return false;
  const r = spawnSync(PYTHON, ['-c', 'import h5py'], { stdio: 'ignore', timeout: 20_000 });
  return r.status === 0;
}

/** Path of h5dump, or undefined. */
export function findH5dump(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v h5dump'], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() : '';
  return p !== '' ? p : undefined;
}

// -------------------------------------------------------------------------------------------
// Small numerics for the checks

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/** Sorted unique values. */
export function uniqueSorted(values: ArrayLike<number>): number[] {
  return [...new Set(Array.from(values))].sort((a, b) => a - b);
}

/**
 * Bilinear interpolation of a field given on a regular grid (axes `xs`, `ys`, increasing;
 * `field[iy * nx + ix]`) at (x, y); undefined outside the grid.
 */
export function bilinear(xs: readonly number[], ys: readonly number[], field: ArrayLike<number>, x: number, y: number): number | undefined {
  const nx = xs.length;
  const ny = ys.length;
  if (x < xs[0] || x > xs[nx - 1] || y < ys[0] || y > ys[ny - 1]) return undefined;
  const cell = (axis: readonly number[], v: number) => {
    let i = 0;
    while (i < axis.length - 2 && axis[i + 1] < v) i++;
    return i;
  };
  const ix = cell(xs, x);
  const iy = cell(ys, y);
  const tx = nx > 1 ? (x - xs[ix]) / (xs[ix + 1] - xs[ix]) : 0;
  const ty = ny > 1 ? (y - ys[iy]) / (ys[iy + 1] - ys[iy]) : 0;
  const at = (j: number, i: number) => field[j * nx + i];
  const ix1 = Math.min(ix + 1, nx - 1);
  const iy1 = Math.min(iy + 1, ny - 1);
  return (1 - ty) * ((1 - tx) * at(iy, ix) + tx * at(iy, ix1)) + ty * ((1 - tx) * at(iy1, ix) + tx * at(iy1, ix1));
}
