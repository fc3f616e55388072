/**
 * MPI benchmark (`npm run bench:mpi`). Prints figures; not a test.
 *  (a) dispatch: rank 0's capacity (items handed out per second, items costing nothing) and
 *      the workers' request latency (p50, p99), for 2 to 64 ranks; then the latency while
 *      rank 0 also computes items that hold its JS thread 8 ms each (a PIV result write).
 *  (b) start-up at 64 ranks: per rank, seconds from the launch to joining the job and to its
 *      first item done, and peak memory (from the per-rank logs of a real PIV job).
 *  (c) scaling: the same series by `mpirun -n R ... piv` for R = 1, 2, ...: pairs/s from
 *      the job summary (start-up excluded) and the parallel efficiency. Each rank is bound
 *      to one core (--bind-to core), as on a cluster node with one rank per core.
 * On a machine with fewer cores than ranks, (a) and (b) run oversubscribed: the figures
 * then include the ranks competing for cores (a lower bound of what a cluster gets).
 *
 * Options: --only dispatch|startup|scaling, --pairs N (16), --size N (1024), --passes N (1),
 * --ranks 1,2 (scaling), --repeats 2 (scaling: the best of), --dispatch-ranks 2,4,...,64, --startup-ranks 64
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const RUN_JS = fileURLToPath(new URL('../run.js', import.meta.url));
const DISPATCH_JS = fileURLToPath(new URL('./bench-dispatch-rank.js', import.meta.url));
const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    pairs: { type: 'string', default: '16' },
    size: { type: 'string', default: '1024' },
    passes: { type: 'string', default: '1' },
    ranks: { type: 'string', default: [1, 2, 4, 8, 16].filter((r) => r <= availableParallelism()).join(',') },
    'dispatch-ranks': { type: 'string', default: '2,4,8,16,32,64' },
    'startup-ranks': { type: 'string', default: '64' },
    repeats: { type: 'string', default: '2' },
  },
});
const ROOT = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
const wanted = (part: string) => values.only === undefined || values.only === part;

function mpirun(args: string[], what: string): string {
  const r = spawnSync('mpirun', [...ROOT, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${what} failed (mpirun exit ${r.status}):\n${r.stderr}`);
  return r.stdout;
}

const quantile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
const median = (v: number[]) => quantile([...v].sort((a, b) => a - b), 0.5);

interface DispatchRank { rank: number; seconds: number; items: number; latencies: number[] }

function dispatch(ranks: number, rootWorkMs: number): { itemsPerSecond: number; p50: number; p99: number; requests: number } {
  const items = 20000;
  const out = mpirun(['--oversubscribe', '-n', String(ranks), process.execPath, DISPATCH_JS, '--items', String(items), '--root-work', String(rootWorkMs)], `dispatch with ${ranks} ranks`);
  const all = JSON.parse(out.trim().split('\n').pop()!) as DispatchRank[];
  const lat = all.slice(1).flatMap((r) => r.latencies).sort((a, b) => a - b);
  return { itemsPerSecond: items / all[0].seconds, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), requests: lat.length };
}

const dir = mkdtempSync(join(tmpdir(), 'fi-bench-mpi-'));
const figures: Record<string, unknown> = {};
try {
  const mpiVersion = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  console.log(`machine  ${cpus()[0]?.model ?? '?'}, ${availableParallelism()} cores; ${mpiVersion}`);

  if (wanted('dispatch')) {
    console.log('\n(a) dispatch: rank 0 hands out 20,000 items that cost nothing (target >= 20,000 items/s; latency p99 <= 5 ms)');
    console.log('ranks   items/s   requests   latency p50 (ms)   p99 (ms)   [rank 0 computing: 8 ms of JS per item] p50   p99');
    const rows: unknown[] = [];
    for (const r of values['dispatch-ranks']!.split(',').map(Number)) {
      const d = dispatch(r, 0);
      const busy = r <= 16 ? dispatch(r, 8) : undefined;
      rows.push({ ranks: r, ...d, busyP50: busy?.p50, busyP99: busy?.p99 });
      console.log(`${String(r).padStart(5)} ${d.itemsPerSecond.toFixed(0).padStart(9)} ${String(d.requests).padStart(10)} ${d.p50.toFixed(2).padStart(18)} ${d.p99.toFixed(2).padStart(10)}` +
        (busy ? `${busy.p50.toFixed(2).padStart(44)} ${busy.p99.toFixed(2).padStart(5)}` : '   (rank 0 does not compute above 16 ranks)'));
    }
    figures.dispatch = rows;
  }

  if (wanted('startup')) {
    const ranks = Number(values['startup-ranks']);
    const images = join(dir, 'startup-images');
    const synth = spawnSync(process.execPath, [RUN_JS, 'synth', 'uniform', '-o', images, '--pairs', String(2 * ranks), '--size', '64'], { encoding: 'utf8' });
    if (synth.status !== 0) throw new Error(synth.stderr);
    const out = join(dir, 'startup-out');
    const launched = Date.now();
    mpirun(['--oversubscribe', '-n', String(ranks), process.execPath, RUN_JS, 'piv', images, '-o', out, '--set', 'piv0.shape_crop_im0=16', '-q'], `PIV with ${ranks} ranks`);
    const wall = (Date.now() - launched) / 1000;
    const job = readdirSync(out).find((f) => f.startsWith('job_'))!;
    const joined: number[] = [];
    const first: number[] = [];
    const memory: number[] = [];
    for (const f of readdirSync(join(out, job)).filter((n) => n.startsWith('log_rank'))) {
      const lines = readFileSync(join(out, job, f), 'utf8').split('\n');
      const at = (re: RegExp) => {
        const line = lines.find((l) => re.test(l));
        return line ? (Date.parse(line.slice(0, 24)) - launched) / 1000 : NaN;
      };
      joined.push(at(/ joined/));
      const firstDone = at(/Z done /);
      if (Number.isFinite(firstDone)) first.push(firstDone);
      const mem = lines.map((l) => / peak memory (\d+) MiB/.exec(l)).find((m) => m);
      if (mem) memory.push(Number(mem[1]));
    }
    console.log(`\n(b) start-up with ${ranks} ranks on ${availableParallelism()} cores (${2 * ranks} pairs of 64x64; whole job ${wall.toFixed(1)} s):`);
    console.log(`    launch -> rank joined the job: median ${median(joined).toFixed(2)} s, last ${Math.max(...joined).toFixed(2)} s`);
    console.log(`    launch -> first item done: median ${median(first).toFixed(2)} s, last ${Math.max(...first).toFixed(2)} s (${first.length} ranks had items)`);
    console.log(`    peak memory per rank: median ${median(memory)} MiB, max ${Math.max(...memory)} MiB, all ranks ${memory.reduce((a, b) => a + b, 0)} MiB`);
    figures.startup = { ranks, wall, joinedMedian: median(joined), firstItemMedian: median(first), memoryMedianMiB: median(memory), memoryMaxMiB: Math.max(...memory) };
  }

  if (wanted('scaling')) {
    // Two series, N and 2N pairs: the whole-job rate of the larger one, and the marginal rate
    // N / (T(2N) - T(N)), which leaves out what every process pays once (start-up, the first
    // pair's JIT, TPS factorisations and HDF5 file head): the rate of a long job.
    const pairs = Number(values.pairs);
    const series = [pairs, 2 * pairs].map((n) => {
      const images = join(dir, `images${n}`);
      const synth = spawnSync(process.execPath, [RUN_JS, 'synth', 'vortex', '-o', images, '--pairs', String(n), '--size', values.size!], { encoding: 'utf8' });
      if (synth.status !== 0) throw new Error(synth.stderr);
      return { n, images };
    });
    const passes = Number(values.passes);
    const params = passes > 1 ? ['--set', 'piv0.shape_crop_im0=64', '--set', `multipass.number=${passes}`] : [];
    console.log(`\n(c) scaling: ${pairs} and ${2 * pairs} pairs of ${values.size}x${values.size} (vortex), ${passes > 1 ? `${passes} passes from 64 px` : 'default PIV parameters (48 px, 1 pass)'}`);
    // The machine's own ceiling: R independent one-worker processes at once, one per core
    // (shared caches, memory bandwidth and a VM's neighbours cost what no MPI can win back).
    console.log('ranks | whole job: pairs/s  efficiency | marginal: s/pair  pairs/s  efficiency | R independent processes (marginal): pairs/s  efficiency; MPI / that');
    const secondsOf = (out: string) => {
      const job = readdirSync(out).find((f) => f.startsWith('job_'))!;
      return (JSON.parse(readFileSync(join(out, job, 'summary.json'), 'utf8')) as { seconds: number }).seconds;
    };
    /** Seconds of the job on each series (summary: from the first item handed out to the end), the best of `repeats`. */
    const repeats = Number(values.repeats);
    const timeMpi = (r: number) => series.map(({ n, images }) => Math.min(...Array.from({ length: repeats }, (_, k) => {
      const out = join(dir, `out${r}_${n}_${k}`);
      mpirun(['--bind-to', 'core', '-n', String(r), process.execPath, RUN_JS, 'piv', images, '-o', out, '--executor', 'mpi', '--quiet', ...params], `mpirun -n ${r}`);
      return secondsOf(out);
    })));
    const timeIndependent = async (r: number) => {
      const { spawn } = await import('node:child_process');
      const out: number[][] = [];
      for (const { n, images } of series) {
        let best: number[] | undefined;
        for (let rep = 0; rep < repeats; rep++) {
          const outs = Array.from({ length: r }, (_, k) => join(dir, `indep${r}_${n}_${rep}_${k}`));
          await Promise.all(outs.map((o, k) => new Promise((resolve) => spawn('taskset', ['-c', String(k % availableParallelism()), process.execPath, RUN_JS,
            'piv', images, '-o', o, '--executor', 'local', '--workers', '1', '--quiet', ...params], { stdio: 'ignore' }).on('exit', resolve))));
          const t = outs.map(secondsOf);
          if (!best || Math.max(...t) < Math.max(...best)) best = t;
        }
        out.push(best!);
      }
      return out;
    };
    let base = { whole: 0, marginal: 0 };
    const rates: Record<string, { whole: number; marginal: number }> = {};
    for (const r of values.ranks!.split(',').map(Number)) {
      const [t1, t2] = timeMpi(r);
      const rate = { whole: (2 * pairs) / t2!, marginal: pairs / (t2! - t1!) };
      if (r === 1) base = rate;
      rates[r] = rate;
      let ceiling = '';
      if (r > 1 && spawnSync('taskset', ['--version']).status === 0) {
        // Each process does the whole series: r processes make r times the pairs.
        const [small, large] = await timeIndependent(r);
        const together = large!.reduce((a, t, k) => a + pairs / (t - small![k]!), 0);
        ceiling = `${together.toFixed(2).padStart(12)} ${((100 * together) / base.marginal / r).toFixed(1).padStart(8)}% ${((100 * rate.marginal) / together).toFixed(1).padStart(8)}%`;
      }
      console.log(`${String(r).padStart(5)} | ${rate.whole.toFixed(2).padStart(10)} ${((100 * rate.whole) / base.whole / r).toFixed(1).padStart(10)}% | ` +
        `${(1 / rate.marginal).toFixed(4).padStart(10)} ${rate.marginal.toFixed(2).padStart(8)} ${((100 * rate.marginal) / base.marginal / r).toFixed(1).padStart(10)}% |${ceiling}`);
    }
    figures.scaling = { pairs, size: Number(values.size), passes, pairsPerSecond: rates };
  }
  console.log(JSON.stringify(figures));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
