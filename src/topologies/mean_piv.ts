/**
 * Time average of a series of PIV results (`fluidimage mean DIR.piv`): mean field,
 * RMS fluctuations and the uncertainty of the mean (uncertainty_mean_x/_y) on the final grid. Each worker (or MPI rank) sums the files it
 * reads; the sums are then added (a reduction) and written once.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import { createGroup, withH5File, writeFloat32, writeInt64Attr, writeProgramAttrs, writeStrings } from '../io/h5.js';
import { readPivFile } from '../io/pivfile.js';
import { globToRegExp } from '../series/discovery.js';
import { FieldSums } from '../works/mean_fields.js';
import type { Job } from '../executors/types.js';
import { meanSchema } from '../params/mean.js';
import { ParamError, typedTree } from '../params/schema.js';
import type { ParamTree } from '../params/tree.js';
import { checkOutputLocation } from './output.js';
import type { PartialArray, ReducePlan, ReduceTopologySpec, Reduction } from './spec.js';

export const MEAN_FILE = 'mean_piv.h5';

/** PIV result files of a directory or a glob (`DIR/piv_*.h5`), sorted; the average itself excluded. */
export async function listResultFiles(path: string): Promise<string[]> {
  const full = resolve(path);
  const st = await stat(full).catch(() => null);
  let dir = full;
  let match = (name: string) => name.endsWith('.h5');
  if (!st) {
    const pattern = basename(full);
    if (!/[*?[]/.test(pattern)) throw Object.assign(new Error(`No such file or directory: ${full}`), { code: 'ERR_INPUT' });
    dir = dirname(full);
    const re = globToRegExp(pattern);
    match = (name) => re.test(name);
  } else if (!st.isDirectory()) {
    return [full];
  }
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.') && n !== MEAN_FILE && match(n)).sort();
  if (names.length === 0) throw Object.assign(new Error(`No PIV result (*.h5) in ${path}`), { code: 'ERR_INPUT' });
  return names.map((n) => join(dir, n));
}

/** The grid every file must share, taken from the first readable file. */
export interface FinalGrid {
  ixvecs: Float32Array;
  iyvecs: Float32Array;
}

function sameGrid(a: FinalGrid, x: Float32Array, y: Float32Array): boolean {
  if (a.ixvecs.length !== x.length) return false;
  for (let i = 0; i < x.length; i++) if (a.ixvecs[i] !== x[i] || a.iyvecs[i] !== y[i]) return false;
  return true;
}

/**
 * The job that sums the final fields of `files` into `sums` (created from the first
 * file read). The grid of every file must equal the reference grid.
 */
export function meanJob(files: string[], state: { grid?: FinalGrid; sums?: FieldSums; used: string[] }): Job<string, Awaited<ReturnType<typeof readPivFile>>, void> {
  return {
    items: files,
    name: (f) => basename(f),
    read: (f) => readPivFile(f),
    compute: async (result, f) => {
      const last = result.passes[result.passes.length - 1];
      if (!last?.final) throw new Error('no final field in this file');
      const { ixvecs_final: x, iyvecs_final: y, deltaxs_final: dx, deltays_final: dy } = last.final;
      if (!state.grid) {
        state.grid = { ixvecs: x, iyvecs: y };
        state.sums = new FieldSums(x.length);
      } else if (!sameGrid(state.grid, x, y)) {
        throw new Error(`its final grid (${x.length} points) differs from the first file's (${state.grid.ixvecs.length} points)`);
      }
      state.sums!.add(dx, dy, last.extra?.uncertainty_x_final, last.extra?.uncertainty_y_final);
      state.used.push(basename(f));
    },
    write: async () => {},
  };
}

/** Writes the average (atomically). */
export async function writeMean(path: string, grid: FinalGrid, sums: FieldSums, files: string[]): Promise<void> {
  const r = sums.result();
  await writeAtomic(path, (tmp) => withH5File(tmp, 'w', (f) => {
    writeProgramAttrs(f, 'TimeAveragePIV');
    writeInt64Attr(f, 'nb_fields', files.length);
    writeFloat32(f, 'ixvecs', grid.ixvecs);
    writeFloat32(f, 'iyvecs', grid.iyvecs);
    for (const [k, v] of Object.entries(r)) writeFloat32(f, k, v);
    const g = createGroup(f, 'sources');
    writeStrings(g, 'files', files);
  }));
}

/** The grid every rank sums on: the final grid of the first file that has one (rank 0 reads it while planning). */
async function referenceGrid(files: string[]): Promise<FinalGrid | undefined> {
  for (const f of files) {
    const last = await readPivFile(f).then((r) => r.passes[r.passes.length - 1], () => undefined);
    if (last?.final) return { ixvecs: last.final.ixvecs_final, iyvecs: last.final.iyvecs_final };
  }
  return undefined;
}

/** This process's sums (its lanes add into one set), reduced over ranks by the engine. */
class MeanReduction implements Reduction<string, Awaited<ReturnType<typeof readPivFile>>> {
  readonly rounds = 1;
  readonly state: { grid: FinalGrid; sums: FieldSums; used: string[] };
  total?: FieldSums;

  constructor(grid: FinalGrid) {
    this.state = { grid, sums: new FieldSums(grid.ixvecs.length), used: [] };
  }

  job(_round: number, items: string[]) {
    return meanJob(items, this.state);
  }

  partials(): Record<string, PartialArray> {
    return { sums: { data: this.state.sums.data, op: 'sum' } };
  }

  async combine(_round: number, totals: Record<string, Float32Array | Float64Array>): Promise<null> {
    this.total = new FieldSums(this.state.grid.ixvecs.length, totals.sums as Float64Array);
    return null;
  }

  receive(): void {}
}

type Shared = { ixvecs: number[]; iyvecs: number[] };

async function planMean(params: ParamTree): Promise<ReducePlan<string, Awaited<ReturnType<typeof readPivFile>>>> {
  const p = typedTree(meanSchema, params);
  if (p.series.path === null || p.series.path === '') {
    throw new ParamError('series.path', 'Expected a directory or glob of PIV result files for series.path (the PATH argument)');
  }
  const files = await listResultFiles(p.series.path);
  const isDir = (await stat(resolve(p.series.path)).catch(() => null))?.isDirectory() ?? false;
  const out = p.saving.path !== null ? resolve(p.saving.path) : join(isDir ? resolve(p.series.path) : dirname(files[0]!), MEAN_FILE);
  const outputDir = dirname(out);
  checkOutputLocation(outputDir);
  const grid = await referenceGrid(files);
  if (!grid) throw Object.assign(new Error(`No readable PIV result with a final field among ${files.length} file(s) in ${p.series.path}`), { code: 'ERR_INPUT' });
  const reduction = new MeanReduction(grid);
  return {
    outputDir, items: files, reduction, printed: out,
    upToDate: p.saving.how === 'complete' && existsSync(out),
    shared: { ixvecs: Array.from(grid.ixvecs), iyvecs: Array.from(grid.iyvecs) } satisfies Shared,
    // The average is one file beside the PIV results: the PIV job's lock and records stay its own.
    place: { scope: 'mean', prefix: 'mean_job_' },
    write: async (failed) => {
      const left = new Set(failed);
      const used = files.map((f) => basename(f)).filter((n) => !left.has(n)).sort();
      await writeMean(out, grid, reduction.total!, used);
      return `mean of ${used.length} field(s) written: ${out}`;
    },
  };
}

export const meanTopology: ReduceTopologySpec<string, Awaited<ReturnType<typeof readPivFile>>> = {
  kind: 'reduce',
  name: 'mean',
  itemLabel: 'field',
  schema: meanSchema,
  plan: (params) => planMean(params),
  workerReduction: async (_params, shared) => {
    const s = shared as Shared;
    return new MeanReduction({ ixvecs: Float32Array.from(s.ixvecs), iyvecs: Float32Array.from(s.iyvecs) });
  },
};
