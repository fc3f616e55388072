/**
 * Time average of a series of PIV results (`fluidimage mean DIR.piv`): mean field,
 * RMS fluctuations and the uncertainty of the mean (uncertainty_mean_x/_y) on the final grid. Each worker (or MPI rank) sums the files it
 * reads; the sums are then added (a reduction) and written once.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import { createGroup, withH5File, writeFloat32, writeInt64Attr, writeProgramAttrs, writeStrings } from '../io/h5.js';
import { readPivFile } from '../io/pivfile.js';
import { globToRegExp } from '../series/discovery.js';
import { FieldSums } from '../works/mean_fields.js';
import type { Job } from '../executors/types.js';

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
