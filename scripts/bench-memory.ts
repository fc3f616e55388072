/**
 * Memory of one worker (`npm run bench:memory`, also run by `npm run bench`): a process
 * that runs the whole PIV pipeline (PNG decode, 3-pass PIV with deformation and TPS,
 * HDF5 write) with --workers 1, as one MPI rank does, on a series of identical pairs.
 * Prints its resident memory over the run and one line of JSON. Not a test.
 *
 * Options: --size N (image side, default 2048), --pairs N (default 4), --bits 8|16.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withMallocTuning } from '../executors/malloc_env.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '2048' },
    pairs: { type: 'string', default: '4' },
    bits: { type: 'string', default: '16' },
    workers: { type: 'string', default: '1' },
    child: { type: 'string' },
  },
});
const size = Number(values.size);
const pairs = Number(values.pairs);
const bits = Number(values.bits) === 8 ? 8 : 16;
/** Pairs at once (the local executor puts each on a JS thread of its own). */
const workers = Math.max(1, Number(values.workers));

const MiB = 1024 * 1024;

/** In the child: the series in `dir`, with resident memory sampled during the run. */
async function measure(dir: string): Promise<void> {
  const { runTopology } = await import('../engine/run_series.js');
  const samples: number[] = [];
  const before = process.memoryUsage.rss();
  let top = process.memoryUsage();
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    samples.push(m.rss);
    if (m.rss > top.rss) top = m;
  }, 50);
  const t0 = performance.now();
  let code: number;
  try {
    code = await runTopology('piv', { path: join(dir, 'series'), output: join(dir, 'out'), how: 'recompute', executor: 'auto', workers,
      quiet: true, set: ['piv0.shape_crop_im0=64', 'multipass.number=3'] });
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`runTopology('piv') exited with ${code}`);
  // Growth: the highest RSS of the last tenth of the run against that of its second tenth
  // (the first tenth includes start-up: plans, code, caches).
  const tenth = Math.max(1, Math.floor(samples.length / 10));
  const maxOf = (xs: number[]) => (xs.length ? Math.max(...xs) : Number.NaN);
  process.stdout.write(JSON.stringify({ seconds, before, peak: process.resourceUsage().maxRSS * 1024, top,
    early: maxOf(samples.slice(tenth, 2 * tenth)), late: maxOf(samples.slice(samples.length - tenth)) }));
}

if (values.child) {
  await measure(values.child);
  process.exit(0);
}

const { writeSeriesOfCopies } = await import('./series-copies.js');
const { makeField } = await import('../works/synth/fields.js');
const { renderPair } = await import('../works/synth/particles.js');
const dir = await mkdtemp(join(tmpdir(), 'fluidimage-bench-mem-'));
try {
  const shape: [number, number] = [size, size];
  const p = renderPair(makeField({ kind: 'uniform', dx: 3.3, dy: -1.7 }, shape),
    { shape, density: 0.035, diameter: 2.5, bitDepth: bits, noise: 0.01, seed: 5 });
  // One pair rendered, copied under every name (measure() reads <dir>/series).
  await writeSeriesOfCopies(dir, p.width, p.height, p.im0, p.im1, pairs);
  // The run in a fresh process (what one worker or MPI rank is), without this one's garbage,
  // with the allocator's settings that `fluidimage piv` gives itself.
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, '--workers', String(workers)], {
    encoding: 'utf8', env: { ...withMallocTuning(process.env), UV_THREADPOOL_SIZE: String(Math.max(4, 2 * workers + 2)) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`the measuring process exited with ${r.status}`);
  const m = JSON.parse(r.stdout.slice(r.stdout.indexOf('{"seconds"'))) as { seconds: number; before: number; peak: number; early: number; late: number;
    top: { rss: number; heapUsed: number; external: number; arrayBuffers: number } };
  const mib = (x: number) => Math.round(x / MiB);
  console.log(`${workers} worker(s), ${pairs} pairs of ${size}x${size} ${bits}-bit PNG, 64-32-16 px, HDF5 written: ${(pairs / m.seconds).toFixed(2)} pairs/s`);
  console.log(`  RSS at start ${mib(m.before)} MiB, peak ${mib(m.peak)} MiB; ` +
    `highest in the 2nd tenth of the run ${mib(m.early)} MiB, in the last tenth ${mib(m.late)} MiB`);
  console.log(`  at the highest sample: JS heap ${mib(m.top.heapUsed)} MiB, typed arrays ${mib(m.top.arrayBuffers)} MiB, ` +
    `other native ${mib(m.top.rss - m.top.heapUsed - m.top.arrayBuffers)} MiB`);
  console.log(JSON.stringify({ size, bits, pairs, workers, seconds: Number(m.seconds.toFixed(2)), rssStartMiB: mib(m.before),
    peakMiB: mib(m.peak), earlyMiB: mib(m.early), lateMiB: mib(m.late) }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
