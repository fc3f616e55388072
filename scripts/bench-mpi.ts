/**
 * MPI scaling benchmark (`npm run bench:mpi`): the same synthetic series processed by
 * `mpirun -n R node dist/run.js piv ... --executor mpi` for R = 1, 2 (and more when the
 * machine has the cores); pairs/s from the job summary (start-up excluded) and the
 * parallel efficiency. Each rank is bound to one core (--bind-to core), as on a cluster
 * node with one rank per core: unbound, a single rank already spreads over ~1.4 cores
 * (image decoding, correlation and HDF5 writing overlap), which would hide the scaling.
 * Prints figures; not a test.
 *
 * Options: --pairs N (default 16), --size N (default 1024), --ranks 1,2
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const RUN_JS = fileURLToPath(new URL('../run.js', import.meta.url));
const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '16' },
    size: { type: 'string', default: '1024' },
    ranks: { type: 'string', default: [1, 2, 4, 8, 16].filter((r) => r <= availableParallelism()).join(',') },
  },
});

const dir = mkdtempSync(join(tmpdir(), 'fi-bench-mpi-'));
try {
  const images = join(dir, 'images');
  const synth = spawnSync(process.execPath, [RUN_JS, 'synth', 'vortex', '-o', images, '--pairs', values.pairs!, '--size', values.size!], { encoding: 'utf8' });
  if (synth.status !== 0) throw new Error(synth.stderr);
  const mpiVersion = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  console.log(`machine  ${cpus()[0]?.model ?? '?'}, ${availableParallelism()} cores; ${mpiVersion}`);
  console.log(`series   ${values.pairs} pairs of ${values.size}x${values.size} (vortex), default PIV parameters (48 px, 1 pass)`);
  console.log('ranks   pairs/s   s/pair   speed-up   efficiency');
  const root = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
  let base = 0;
  const figures: Record<string, number> = {};
  for (const r of values.ranks!.split(',').map(Number)) {
    const out = join(dir, `out${r}`);
    const run = spawnSync('mpirun', [...root, '--bind-to', 'core', '-n', String(r), process.execPath, RUN_JS,
      'piv', images, '-o', out, '--executor', 'mpi', '--quiet'], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`mpirun -n ${r} failed:\n${run.stderr}`);
    const job = readdirSync(out).find((f) => f.startsWith('job_'))!;
    const summary = JSON.parse(readFileSync(join(out, job, 'summary.json'), 'utf8')) as { done: number; seconds: number };
    const rate = summary.done / summary.seconds;
    if (r === 1) base = rate;
    figures[r] = rate;
    console.log(`${String(r).padStart(5)} ${rate.toFixed(2).padStart(9)} ${(1 / rate).toFixed(4).padStart(8)} ` +
      `${(rate / base).toFixed(2).padStart(10)} ${((100 * rate) / base / r).toFixed(1).padStart(11)}%`);
  }
  console.log(JSON.stringify({ pairs: Number(values.pairs), size: Number(values.size), pairsPerSecond: figures }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
