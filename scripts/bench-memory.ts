/**
 * Memory of one worker (`npm run bench:memory`, also run by `npm run bench`): a process
 * that runs the whole PIV pipeline (PNG decode, 3-pass PIV with deformation and TPS,
 * HDF5 write) with --workers 1, as one MPI rank does, on a series of identical pairs.
 * Prints its resident memory over the run and one line of JSON. Not a test.
 *
 * Options: --size N (image side, default 2048), --pairs N (default 4), --bits 8|16.
 */
import { mkdir, mkdtemp, rm, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '2048' },
    pairs: { type: 'string', default: '4' },
    bits: { type: 'string', default: '16' },
  },
});
const size = Number(values.size);
const pairs = Number(values.pairs);
const bits = Number(values.bits) === 8 ? 8 : 16;

const { writeImage } = await import('../io/images.js');
const { makeField } = await import('../works/synth/fields.js');
const { renderPair } = await import('../works/synth/particles.js');
const { runPiv } = await import('../cli/piv.js');

const MiB = 1024 * 1024;
const dir = await mkdtemp(join(tmpdir(), 'fluidimage-bench-mem-'));
try {
  const images = join(dir, 'images');
  await mkdir(images);
  const shape: [number, number] = [size, size];
  const p = renderPair(makeField({ kind: 'uniform', dx: 3.3, dy: -1.7 }, shape),
    { shape, density: 0.035, diameter: 2.5, bitDepth: bits, noise: 0.01, seed: 5 });
  // One pair rendered, copied under every name: the work per pair is the same.
  const a = join(images, 'src_a.png');
  const b = join(images, 'src_b.png');
  await writeImage(a, p.width, p.height, p.im0);
  await writeImage(b, p.width, p.height, p.im1);
  const series = join(dir, 'series');
  await mkdir(series);
  for (let i = 1; i <= pairs; i++) {
    const base = join(series, `im${String(i).padStart(5, '0')}`);
    await copyFile(a, `${base}a.png`);
    await copyFile(b, `${base}b.png`);
  }
  // Resident memory sampled while the series runs (the event loop turns between pairs).
  const samples: number[] = [];
  const before = process.memoryUsage.rss();
  const timer = setInterval(() => samples.push(process.memoryUsage.rss()), 50);
  const t0 = performance.now();
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  let code: number;
  try {
    code = await runPiv({ path: series, output: join(dir, 'out'), how: 'recompute', executor: 'auto', workers: 1, quiet: true,
      set: ['piv0.shape_crop_im0=64', 'multipass.number=3'] });
  } finally {
    process.stdout.write = write;
    clearInterval(timer);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`runPiv exited with ${code}`);
  const peak = process.resourceUsage().maxRSS * 1024;
  // Growth: the highest RSS of the last tenth of the run against that of its second tenth
  // (the first tenth includes start-up: plans, code, caches).
  const tenth = Math.max(1, Math.floor(samples.length / 10));
  const maxOf = (xs: number[]) => (xs.length ? Math.max(...xs) : Number.NaN);
  const early = maxOf(samples.slice(tenth, 2 * tenth));
  const late = maxOf(samples.slice(samples.length - tenth));
  console.log(`one worker, ${pairs} pairs of ${size}x${size} ${bits}-bit PNG, 64-32-16 px: ${(pairs / seconds).toFixed(2)} pairs/s`);
  console.log(`  RSS before ${(before / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB; ` +
    `highest in the 2nd tenth ${(early / MiB).toFixed(0)} MiB, in the last tenth ${(late / MiB).toFixed(0)} MiB`);
  console.log(JSON.stringify({ size, bits, pairs, seconds: Number(seconds.toFixed(2)), rssBeforeMiB: Math.round(before / MiB),
    peakMiB: Math.round(peak / MiB), earlyMiB: Math.round(early / MiB), lateMiB: Math.round(late / MiB) }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
