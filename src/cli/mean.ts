/** `fluidimage mean DIR.piv`: time-averaged PIV field and RMS fluctuations. */
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { local } from '../executors/local.js';
import { Progress } from '../report/progress.js';
import { FieldSums } from '../works/mean_fields.js';
import { listResultFiles, MEAN_FILE, meanJob, writeMean, type FinalGrid } from '../topologies/mean_piv.js';
import { EXIT_ITEMS_FAILED, EXIT_OK } from './common.js';

export interface MeanOptions {
  path: string;
  output?: string;
  workers?: number;
  quiet?: boolean;
}

export async function runMean(o: MeanOptions): Promise<number> {
  const files = await listResultFiles(o.path);
  const state: { grid?: FinalGrid; sums?: FieldSums; used: string[] } = { used: [] };
  const progress = new Progress('mean', files.length, 0, process.stderr, o.quiet);
  await local(meanJob(files, state), { workers: o.workers ?? availableParallelism(), onItem: (r) => progress.record(r) });
  const summary = progress.finish();
  if (!state.grid || !state.sums) throw Object.assign(new Error(`No readable PIV result among ${files.length} file(s) in ${o.path}`), { code: 'ERR_INPUT' });
  const isDir = (await stat(resolve(o.path)).catch(() => null))?.isDirectory() ?? false;
  const out = o.output ? resolve(o.output) : join(isDir ? resolve(o.path) : dirname(files[0]), MEAN_FILE);
  await writeMean(out, state.grid, state.sums, state.used.sort());
  process.stdout.write(`${out}\n`);
  return summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
}
