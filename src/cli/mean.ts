/**
 * `fluidimage mean DIR.piv`: time-averaged PIV field and RMS fluctuations. On one machine
 * the files are read by `--workers` lanes; under mpirun/srun the ranks share them (rank 0
 * hands them out) and their partial sums are added by an MPI reduction on rank 0.
 */
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { local } from '../executors/local.js';
import { Progress } from '../report/progress.js';
import { FieldSums } from '../works/mean_fields.js';
import { readPivFile } from '../io/pivfile.js';
import { listResultFiles, MEAN_FILE, meanJob, writeMean, type FinalGrid } from '../topologies/mean_piv.js';
import { EXIT_ITEMS_FAILED, EXIT_OK } from './common.js';

export interface MeanOptions {
  path: string;
  output?: string;
  workers?: number;
  quiet?: boolean;
}

type State = { grid?: FinalGrid; sums?: FieldSums; used: string[] };

async function outputPath(o: MeanOptions, files: string[]): Promise<string> {
  const isDir = (await stat(resolve(o.path)).catch(() => null))?.isDirectory() ?? false;
  return o.output ? resolve(o.output) : join(isDir ? resolve(o.path) : dirname(files[0]), MEAN_FILE);
}

function noResult(o: MeanOptions, count: number): Error {
  return Object.assign(new Error(`No readable PIV result among ${count} file(s) in ${o.path}`), { code: 'ERR_INPUT' });
}

export async function runMean(o: MeanOptions): Promise<number> {
  const { envRankCount } = await import('../mpi/launcher.js');
  if (envRankCount() > 1) return runMeanMpi(o);
  const files = await listResultFiles(o.path);
  const state: State = { used: [] };
  const progress = new Progress('mean', files.length, 0, process.stderr, o.quiet);
  await local(meanJob(files, state), { workers: o.workers ?? availableParallelism(), onItem: (r) => progress.record(r) });
  const summary = progress.finish();
  if (!state.grid || !state.sums) throw noResult(o, files.length);
  const out = await outputPath(o, files);
  await writeMean(out, state.grid, state.sums, state.used.sort());
  process.stdout.write(`${out}\n`);
  return summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
}

/** What rank 0 tells the others: the files and the grid every field must share. */
async function runMeanMpi(o: MeanOptions): Promise<number> {
  const mpi = await import('../mpi/comm.js');
  const { runDispatched } = await import('../executors/dispatch.js');
  const comm = mpi.world();
  mpi.checkLauncher(comm);
  mpi.installAbortHandlers();
  const { endIfLost, endTogether, gatherHosts, liveness, planTogether, rankTimeoutSeconds, stopTogether, underDeadline } = await import('../engine/liveness.js');
  const timeout = rankTimeoutSeconds(undefined);
  const planned = await planTogether(comm, timeout, async () => {
    const files = await listResultFiles(o.path);
    // The reference grid: the first file that has a final field.
    let grid: FinalGrid | undefined;
    for (const f of files) {
      const last = await readPivFile(f).then((r) => r.passes[r.passes.length - 1], () => undefined);
      if (last?.final) {
        grid = { ixvecs: last.final.ixvecs_final, iyvecs: last.final.iyvecs_final };
        break;
      }
    }
    if (!grid) throw noResult(o, files.length);
    return { files, ixvecs: Array.from(grid.ixvecs), iyvecs: Array.from(grid.iyvecs) };
  });
  const hosts = gatherHosts(comm, timeout);
  if (!planned.ok) return stopTogether(comm, timeout, planned.error, mpi.finalize);
  const plan = planned.value;
  const grid = { ixvecs: Float32Array.from(plan.ixvecs), iyvecs: Float32Array.from(plan.iyvecs) };
  const state: State = { grid, sums: new FieldSums(grid.ixvecs.length), used: [] };
  const progress = comm.rank === 0 ? new Progress('mean', plan.files.length, 0, process.stderr, o.quiet) : undefined;
  const { messenger } = await import('../engine/messenger.js');
  const run = await runDispatched(messenger(comm, mpi.ANY_SOURCE), meanJob(comm.rank === 0 ? plan.files : [], state), {
    lanes: o.workers ?? 1,
    onItem: (r) => progress?.record(r),
    liveness: liveness(timeout, hosts, (m) => process.stderr.write(`mean: ${m}\n`)),
  });
  // A mean without a lost rank's sums would look complete: nothing is written then.
  await endIfLost(comm, run, timeout);
  // The parallel reduction: partial sums of every rank added on rank 0.
  const [total, used] = underDeadline(comm, timeout, 'the reduction of the sums', () => [comm.reduce(state.sums!.data, 'sum', 0), comm.gatherObject(state.used, 0)] as const);
  let status = EXIT_OK;
  if (comm.rank === 0) {
    const summary = progress!.finish();
    const out = await outputPath(o, plan.files);
    await writeMean(out, grid, new FieldSums(grid.ixvecs.length, total as Float64Array), used!.flat().sort());
    process.stdout.write(`${out}\n`);
    status = summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
  }
  return endTogether(comm, timeout, status, mpi.finalize);
}
