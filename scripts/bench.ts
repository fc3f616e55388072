/**
 * Benchmark (`npm run bench`): prints figures, asserts nothing.
 *
 *  - the machine, Node, FFTW and its planner effort;
 *  - PIV of one synthetic 1024x1024 8-bit pair, (a) one 32 px pass and (b) three passes
 *    64-32-16, and (c) a 2048x2048 16-bit pair with three passes, 50 % overlap: s/pair
 *    with one worker, with N pairs at once, with N threads inside one pair; the FFT-only
 *    lower bound of the same windows and its GFlop/s; the RMS error against the known
 *    displacement; the share of each stage; decoding the PNGs and writing the HDF5 file;
 *  - end to end: `runPiv` on 32 PNG pairs of 1024x1024 with the parameters of (b) (reading,
 *    PIV, HDF5 writing), with the default local executor and with --workers 1, against the
 *    same computations alone, timed alternately;
 *  - the three one-worker targets (TARGETS: (a), (b), (c)) against those times, with their
 *    FFT-only bounds and stage shares;
 *  - memory of one worker (scripts/bench-memory.ts, a process per measurement): peak
 *    resident memory over 8 pairs of 2048x2048 16-bit, and its growth over 1,000 pairs.
 *
 * A readable table, then one line of JSON with all the figures.
 * `--only cases|e2e|memory` runs one part (e.g. `npm run bench -- --only e2e`); `--uncertainty`
 * computes the per-vector uncertainty too (piv0.uncertainty; its share among the stages).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { PairImages } from '../works/piv/work.js';
import type { PivResult } from '../results/piv_result.js';
import type { ParamTree } from '../params/tree.js';

const PARTS = ['cases', 'e2e', 'memory'] as const;
const { values: cli } = parseArgs({ options: { only: { type: 'string' }, uncertainty: { type: 'boolean', default: false } } });
if (cli.only !== undefined && !(PARTS as readonly string[]).includes(cli.only)) {
  console.error(`bench: --only must be one of ${PARTS.join(', ')} (got ${JSON.stringify(cli.only)})`);
  process.exit(2);
}
const runs = (part: (typeof PARTS)[number]): boolean => cli.only === undefined || cli.only === part;

/** N: pairs computed at once, threads inside one pair. */
const WORKERS = availableParallelism();

// libuv sizes its thread pool on first use, and the ESM loader already used it to load
// this file: setting UV_THREADPOOL_SIZE here would come too late. Re-run with it set.
if (Number(process.env.UV_THREADPOOL_SIZE ?? 0) < 2 * WORKERS + 2) {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(4, 2 * WORKERS + 2)) }, // as src/run.ts
  });
  process.exit(r.status ?? 1);
}

// Project modules only in the re-run process (dynamic imports: nothing loaded twice).
const { native } = await import('../native.js');
const { pivSchema } = await import('../params/piv.js');
const { defaults, setAt } = await import('../params/schema.js');
const { WorkPIV } = await import('../works/piv/work.js');
const { SYNTH_CASES } = await import('../works/synth/cases.js');
const { makeField } = await import('../works/synth/fields.js');
const { renderPair } = await import('../works/synth/particles.js');
const { readImage, toFloat32, writeImage } = await import('../io/images.js');
const { writePivFile } = await import('../io/pivfile.js');
const { runTopology } = await import('../engine/run_series.js');
const runPiv = (o: Parameters<typeof runTopology>[1]) => runTopology('piv', o);
const { writeSeriesOfCopies } = await import('./series-copies.js');

/** Seconds of wall time spent in each timed measurement (one warm-up, then repetitions). */
const BUDGET_S = 4;
const SIZE = 1024;
const E2E_PAIRS = 40;
/** The short runs, whose times are taken off the long ones'. */
const E2E_SHORT = 8;
/** Rounds of (end to end, compute only) timed alternately. */
const E2E_ROUNDS = 5;
/** Parameters of case (b), for the end-to-end runs (compared with its compute-only rate). */
const CASE_B_SETS = ['piv0.shape_crop_im0=64', 'multipass.number=3'];
/**
 * Targets of one worker, s/pair (issue 17: 30 times OpenPIV-python per core), for the three
 * cases: (a) 1 pass of 32 px, (b) 3 passes 64-32-16, (c) 2048^2 16-bit, 3 passes.
 */
const TARGETS = { a: 0.019, b: 0.075, c: 0.3 } as const;
const uniform = SYNTH_CASES.uniform;
const [TRUE_DX, TRUE_DY] = [uniform.field.dx ?? 0, uniform.field.dy ?? 0];

const now = (): number => performance.now() / 1000;
const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** 4 significant digits, for the JSON line. */
const sig = (x: number): number => Number(x.toPrecision(4));

/** Median seconds of `fn` after one warm-up; as many repetitions (3..15) as fit in BUDGET_S. */
async function timeMedian(fn: () => Promise<unknown>): Promise<number> {
  let t = now();
  await fn();
  const reps = Math.min(15, Math.max(3, Math.round(BUDGET_S / Math.max(now() - t, 1e-3))));
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    t = now();
    await fn();
    times.push(now() - t);
  }
  return median(times);
}

/** Default PIV parameters with some dotted keys set (and piv0.uncertainty with --uncertainty). */
function params(sets: Record<string, number>): ParamTree {
  let tree = defaults(pivSchema);
  for (const [k, v] of Object.entries(sets)) tree = setAt(pivSchema, tree, k, v);
  if (cli.uncertainty) tree = setAt(pivSchema, tree, 'piv0.uncertainty', true);
  return tree;
}

/** RMS of the last pass's valid vectors against the known displacement, and the valid fraction. */
function accuracy(r: PivResult): { rms: number; valid: number } {
  const last = r.passes[r.passes.length - 1];
  let sum = 0;
  let n = 0;
  for (let k = 0; k < last.deltaxs.length; k++) {
    const ex = last.deltaxs[k] - TRUE_DX;
    const ey = last.deltays[k] - TRUE_DY;
    if (Number.isNaN(ex) || Number.isNaN(ey)) continue;
    sum += ex * ex + ey * ey;
    n++;
  }
  return { rms: Math.sqrt(sum / Math.max(n, 1)), valid: n / last.deltaxs.length };
}

interface CaseFigures {
  windows: string;
  vectors: number[];
  /** Seconds per pair. */
  oneWorker: number;
  allWorkers: number;
  threadsInPair: number;
  fftOnly: number;
  ratio: number;
  /**
   * FFT flops per pair of the transforms done: per window 1.5 complex FFTs of N points (two
   * real windows in one forward transform, two correlations in one inverse), 5 N log2 N each.
   */
  flops: number;
  gflops: number;
  rms: number;
  valid: number;
  /** Shares of the single-worker time: correlation, deformation, TPS, validation, uncertainty, other (JS glue). */
  shares: Record<string, number>;
  /** The correlation's share split by phase: loading windows, FFTs, cross-spectra, peaks and sub-pixel fits. */
  phases: Record<string, number>;
  /** Seconds to decode the two images from PNG and to write the HDF5 result. */
  decode: number;
  write: number;
  /** The one-worker target of this case (s/pair). */
  target: number;
}

/** All PIV figures of one parameter set on one pair. */
async function benchCase(tree: ParamTree, pair: PairImages, bitDepth: 8 | 16, target: number): Promise<CaseFigures> {
  const single = new WorkPIV(tree, 1);
  const first = await single.calcul(pair); // also makes the FFTW plans
  const shapes = single.passShapes;
  const vectors = first.passes.map((p) => p.shape_grid[0] * p.shape_grid[1]);
  const oneWorker = await timeMedian(() => single.calcul(pair));
  const st = single.stages;
  const other = st.total - st.correlation - st.deformation - st.tps - st.validation - st.uncertainty;
  const shares = Object.fromEntries(Object.entries({ correlation: st.correlation, deformation: st.deformation, tps: st.tps,
    validation: st.validation, uncertainty: st.uncertainty, other }).map(([k, v]) => [k, v / st.total]));
  // The correlation's phases, from a few profiled runs (the clock reads stay out of the timings above).
  single.profile = true;
  for (let i = 0; i < 3; i++) await single.calcul(pair);
  const ph = single.correlationPhases;
  const phaseSum = ph.load + ph.fft + ph.spectra + ph.peaks;
  const phases = Object.fromEntries((['load', 'fft', 'spectra', 'peaks'] as const).map((k) => [k, shares.correlation * ph[k] / phaseSum]));
  const io = await ioTimes(pair, first, bitDepth);
  // N pairs at once, one WorkPIV each (as the local executor does): throughput.
  const works = Array.from({ length: WORKERS }, () => new WorkPIV(tree, 1));
  const allWorkers = (await timeMedian(() => Promise.all(works.map((w) => w.calcul(pair))))) / WORKERS;
  const threaded = new WorkPIV(tree, WORKERS);
  const threadsInPair = await timeMedian(() => threaded.calcul(pair));
  // FFT-only lower bound of the same windows (synchronous, one thread): median of 3.
  const fftOnly = median([0, 1, 2].map(() =>
    shapes.reduce((s, [h, w], k) => s + native().timeFftOnly(h, w, vectors[k]), 0)));
  const flops = shapes.reduce((s, [h, w], k) => s + vectors[k] * 1.5 * 5 * h * w * Math.log2(h * w), 0);
  return {
    windows: shapes.map(([h, w]) => (h === w ? `${h}` : `${h}x${w}`)).join('-'),
    vectors, oneWorker, allWorkers, threadsInPair, fftOnly,
    ratio: oneWorker / fftOnly, flops, gflops: flops / fftOnly / 1e9, ...accuracy(first), shares, phases, ...io, target,
  };
}

/** Reading the pair back from PNG files (decode) and writing its result (HDF5), seconds. */
async function ioTimes(pair: PairImages, result: PivResult, bitDepth: 8 | 16): Promise<{ decode: number; write: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'fluidimage-bench-io-'));
  try {
    const files = [join(dir, 'a.png'), join(dir, 'b.png')];
    const ints = (f: Float32Array) => (bitDepth === 16 ? Uint16Array.from(f) : Uint8Array.from(f));
    await writeImage(files[0], pair.width, pair.height, ints(pair.im0));
    await writeImage(files[1], pair.width, pair.height, ints(pair.im1));
    const decode = await timeMedian(() => Promise.all(files.map(async (f) => toFloat32(await readImage(f)))));
    const write = await timeMedian(() => writePivFile(join(dir, 'piv.h5'), result, { program: 'bench', version: '0' }));
    return { decode, write };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs `fn` with stdout muted (runPiv prints the output directory). */
async function muted<T>(fn: () => Promise<T>): Promise<T> {
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await fn();
  } finally {
    process.stdout.write = write;
  }
}

/** Pairs/s of the whole pipeline on a PNG series, default executor and --workers 1. */
interface EndToEnd {
  /** Pairs/s of runPiv (decode + PIV + write). */
  endToEnd: number;
  /** Pairs/s of the same computations alone, `workers` pairs at once, measured alternately with it. */
  computeOnly: number;
  /** Median over the rounds of end-to-end rate / compute-only rate. */
  ratio: number;
  /** Seconds of a run beyond its pairs at the steady rate: start-up (listing, job files) and tail. */
  fixedSeconds: number;
}

/**
 * The whole pipeline (PNG decode, PIV of case (b), HDF5 write) on series of E2E_SHORT and
 * E2E_PAIRS pairs of SIZE x SIZE, with the default local executor and with --workers 1, each
 * against the computations alone with as many pairs at once: all four timed alternately
 * (E2E_ROUNDS rounds, medians), so that the ratio compares like with like on a shared
 * machine. Rates are steady-state rates (the extra pairs of the long series over the extra
 * time), what a long series sees; the fixed cost of a run is reported beside them.
 * The pairs are copies of one rendered pair (the work per pair is the same).
 */
async function benchEndToEnd(pair: PairImages, tree: ParamTree): Promise<{ allWorkers: EndToEnd; oneWorker: EndToEnd }> {
  const dir = await mkdtemp(join(tmpdir(), 'fluidimage-bench-'));
  try {
    const images = await writeSeriesOfCopies(dir, pair.width, pair.height, Uint8Array.from(pair.im0), Uint8Array.from(pair.im1), E2E_PAIRS);
    const run = async (workers: number, pairs: number): Promise<void> => {
      const code = await muted(() => runPiv({
        path: images, output: join(dir, 'out'), how: 'recompute', executor: 'auto', workers, quiet: true,
        set: [...CASE_B_SETS, `series.ind_stop=${pairs}`],
      }));
      if (code !== 0) throw new Error(`runPiv exited with ${code}`);
    };
    const compute = async (workers: number, pairs: number): Promise<void> => {
      // One WorkPIV per lane, each computing its share of the series one pair after the other,
      // on fresh copies of the images (the work overwrites those it owns) in arrays reused
      // from pair to pair, as the pipeline's are: no allocation in the baseline either.
      await Promise.all(Array.from({ length: workers }, async (_, lane) => {
        const work = new WorkPIV(tree, 1);
        const im0 = new Float32Array(pair.im0.length);
        const im1 = new Float32Array(pair.im1.length);
        for (let i = lane; i < pairs; i += workers) {
          im0.set(pair.im0);
          im1.set(pair.im1);
          await work.calcul({ ...pair, im0, im1, owned: true });
        }
      }));
    };
    const timed = async (fn: () => Promise<void>): Promise<number> => {
      const t = now();
      await fn();
      return now() - t;
    };
    const measure = async (workers: number): Promise<EndToEnd> => {
      await run(workers, E2E_SHORT);
      await compute(workers, E2E_SHORT);
      // Per round, both runs of both lengths, interleaved; the rates are those of the extra
      // pairs of the long runs (start-up and the last pairs' tail cancel out).
      const rounds: { e: number; c: number; fixed: number }[] = [];
      for (let r = 0; r < E2E_ROUNDS; r++) {
        const eShort = await timed(() => run(workers, E2E_SHORT));
        const cShort = await timed(() => compute(workers, E2E_SHORT));
        const eLong = await timed(() => run(workers, E2E_PAIRS));
        const cLong = await timed(() => compute(workers, E2E_PAIRS));
        const extra = E2E_PAIRS - E2E_SHORT;
        const e = extra / (eLong - eShort);
        rounds.push({ e, c: extra / (cLong - cShort), fixed: eShort - E2E_SHORT / e });
      }
      // Medians over the rounds, of the ratio too: a shared machine's speed drifts over a
      // minute, far less within one round.
      return {
        endToEnd: median(rounds.map((r) => r.e)), computeOnly: median(rounds.map((r) => r.c)),
        ratio: median(rounds.map((r) => r.e / r.c)), fixedSeconds: median(rounds.map((r) => r.fixed)),
      };
    };
    return { allWorkers: await measure(WORKERS), oneWorker: await measure(1) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Left-aligned first column, right-aligned others. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   ')).join('\n');
}

const cpuModel = (): string => {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch { /* not Linux */ }
  return cpus()[0]?.model ?? 'unknown';
};

/** The MPI library the addon was built with (first line), or why there is none. */
function mpiLibrary(): string {
  if (!native().mpiAvailable()) return 'none (built without MPI)';
  return native().mpiLibraryVersion().split('\n')[0].split(',')[0].trim();
}

const base = params({});
native().setPlannerEffort((base.compute as ParamTree).fftw_planner as 'estimate' | 'measure' | 'patient');
const machine = {
  cpu: cpuModel(), cores: cpus().length, workers: WORKERS, node: process.version,
  fftw: native().fftwVersion, planner: native().getPlannerEffort(), uvThreadpool: Number(process.env.UV_THREADPOOL_SIZE),
  simd: native().deformKernel, mpi: mpiLibrary(),
};
console.log(`machine  ${machine.cpu}, ${machine.cores} cores (N = ${WORKERS} workers), libuv pool ${machine.uvThreadpool}`);
console.log(`software Node ${machine.node}, ${machine.fftw}, planner ${machine.planner}, MPI ${machine.mpi}, ` +
  `resampling kernel ${machine.simd}\n`);

// One pair, converted to float32 once, outside the timings.
const shape: [number, number] = [SIZE, SIZE];
const synth = renderPair(makeField(uniform.field, shape),
  { shape, density: 0.035, diameter: 2.5, bitDepth: 8, noise: uniform.noise, seed: 1 });
const pair: PairImages = {
  im0: Float32Array.from(synth.im0), im1: Float32Array.from(synth.im1), height: SIZE, width: SIZE,
  names: ['synth_a', 'synth_b'], paths: ['synth_a', 'synth_b'],
};
const caseB = params(Object.fromEntries(CASE_B_SETS.map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)])));
const BIG = 2048;
const figures: Record<string, unknown> = { machine, imageSize: SIZE };
if (runs('cases')) {
  const cases = {
    a: await benchCase(params({ 'piv0.shape_crop_im0': 32 }), pair, 8, TARGETS.a),
    b: await benchCase(caseB, pair, 8, TARGETS.b),
  };
  // The large-camera case: 2048x2048 16-bit, 3 passes.
  const bigSynth = renderPair(makeField(uniform.field, [BIG, BIG]),
    { shape: [BIG, BIG], density: 0.035, diameter: 2.5, bitDepth: 16, noise: uniform.noise, seed: 2 });
  const bigPair: PairImages = {
    im0: Float32Array.from(bigSynth.im0), im1: Float32Array.from(bigSynth.im1), height: BIG, width: BIG,
    names: ['big_a', 'big_b'], paths: ['big_a', 'big_b'],
  };
  const big = await benchCase(params({ 'piv0.shape_crop_im0': 64, 'multipass.number': 3 }), bigPair, 16, TARGETS.c);
  const s = (x: number): string => x.toFixed(4);
  const rows: [string, (c: CaseFigures) => string][] = [
    ['windows (px)', (c) => c.windows],
    ['vectors per pass', (c) => c.vectors.join(' / ')],
    ['1 worker (s/pair)', (c) => s(c.oneWorker)],
    ['  target (s/pair)', (c) => s(c.target)],
    [`${WORKERS} pairs at once (s/pair)`, (c) => `${s(c.allWorkers)} (x${(c.oneWorker / c.allWorkers).toFixed(2)})`],
    [`threads=${WORKERS} in one pair (s/pair)`, (c) => `${s(c.threadsInPair)} (x${(c.oneWorker / c.threadsInPair).toFixed(2)})`],
    ['FFT only, 1 thread (s/pair)', (c) => s(c.fftOnly)],
    ['1 worker / FFT only', (c) => c.ratio.toFixed(2)],
    ['FFT GFlop per pair', (c) => (c.flops / 1e9).toFixed(3)],
    ['FFT GFlop/s (1 thread)', (c) => c.gflops.toFixed(2)],
    ['RMS error (px), valid', (c) => `${c.rms.toFixed(4)}, ${(100 * c.valid).toFixed(1)}%`],
    ['share: correlation', (c) => `${(100 * c.shares.correlation).toFixed(0)}%`],
    ['  loading windows', (c) => `${(100 * c.phases.load).toFixed(0)}%`],
    ['  FFTs (bound alone)', (c) => `${(100 * c.phases.fft).toFixed(0)}% (${(100 * c.fftOnly / c.oneWorker).toFixed(0)}%)`],
    ['  cross-spectra', (c) => `${(100 * c.phases.spectra).toFixed(0)}%`],
    ['  peaks, sub-pixel', (c) => `${(100 * c.phases.peaks).toFixed(0)}%`],
    ['share: deformation', (c) => `${(100 * c.shares.deformation).toFixed(0)}%`],
    ['share: TPS', (c) => `${(100 * c.shares.tps).toFixed(0)}%`],
    ['share: validation', (c) => `${(100 * c.shares.validation).toFixed(0)}%`],
    ['share: uncertainty', (c) => `${(100 * c.shares.uncertainty).toFixed(1)}%`],
    ['share: other (JS)', (c) => `${(100 * c.shares.other).toFixed(0)}%`],
    ['decode 2 PNG (s)', (c) => s(c.decode)],
    ['HDF5 write (s)', (c) => s(c.write)],
  ];
  console.log(`PIV of one synthetic pair, uniform (${TRUE_DX}, ${TRUE_DY}) px, 50% overlap, default parameters (TPS on the final field)`);
  console.log(table([['', `(a) ${SIZE}^2 8-bit, 1 pass`, `(b) ${SIZE}^2 8-bit, 3 passes`, `(c) ${BIG}^2 16-bit, 3 passes`],
    ...rows.map(([label, f]) => [label, f(cases.a), f(cases.b), f(big)])]));
  // The targets in one place: each case's time against its target and its FFT-only bound,
  // with the stage shares.
  console.log('\nTargets, one worker (s/pair; FFT-only bound; stages: correlation, deformation, TPS, validation, other)');
  for (const [name, c] of [[`(a) ${SIZE}^2 8-bit, 1 x 32 px`, cases.a], [`(b) ${SIZE}^2 8-bit, 64-32-16`, cases.b],
    [`(c) ${BIG}^2 16-bit, 64-32-16`, big]] as const) {
    const pc = (k: string) => `${(100 * c.shares[k]).toFixed(0)}%`;
    console.log(`  ${name.padEnd(28)} ${s(c.oneWorker)} (target ${s(c.target)}: ${c.oneWorker <= c.target ? 'met' : `x${(c.oneWorker / c.target).toFixed(2)} over`}); ` +
      `FFT only ${s(c.fftOnly)}; ${['correlation', 'deformation', 'tps', 'validation', 'other'].map(pc).join(' / ')}`);
  }
  const round = (c: CaseFigures) => Object.fromEntries(Object.entries(c).map(([k, v]) =>
    [k, typeof v === 'number' ? sig(v) : v])) as Record<string, number | string | number[]>;
  figures.cases = { a: round(cases.a), b: round(cases.b), c2048x16: round(big) };
}

if (runs('e2e')) {
  const e2e = await benchEndToEnd(pair, caseB);
  console.log(`\nEnd to end: runPiv on PNG pairs of ${SIZE}x${SIZE}, case (b) (decode + PIV + HDF5 write); steady rates ` +
    `from series of ${E2E_SHORT} and ${E2E_PAIRS} pairs`);
  console.log(table([
    ['executor', 'pairs/s', 'compute only', 'end to end / compute only', 'fixed cost per run (s)'],
    [`local, ${WORKERS} workers (default)`, e2e.allWorkers.endToEnd.toFixed(2), e2e.allWorkers.computeOnly.toFixed(2),
      e2e.allWorkers.ratio.toFixed(2), e2e.allWorkers.fixedSeconds.toFixed(2)],
    ['local, --workers 1', e2e.oneWorker.endToEnd.toFixed(2), e2e.oneWorker.computeOnly.toFixed(2),
      e2e.oneWorker.ratio.toFixed(2), e2e.oneWorker.fixedSeconds.toFixed(2)],
  ]));
  figures.endToEnd = { size: SIZE, pairs: E2E_PAIRS, allWorkers: e2e.allWorkers, oneWorker: e2e.oneWorker };
}

// One worker's memory, each measurement in a process of its own.
interface MemoryFigures { seconds: number; rssStartMiB: number; peakMiB: number; earlyMiB: number; lateMiB: number }
function memoryRun(args: string[]): MemoryFigures {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('./bench-memory.js', import.meta.url)), ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`bench-memory ${args.join(' ')} exited with ${r.status}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as MemoryFigures;
}
if (runs('memory')) {
  const memBig = memoryRun(['--size', '2048', '--bits', '16', '--pairs', '8']);
  const memLong = memoryRun(['--size', '256', '--bits', '8', '--pairs', '1000']);
  // All workers at once in one process (the local executor's default layout): the peak per worker.
  const memAll = memoryRun(['--size', '2048', '--bits', '16', '--pairs', String(4 * WORKERS), '--workers', String(WORKERS)]);
  console.log('\nMemory of one worker (a process running `fluidimage piv --workers 1`: decode, 64-32-16 px PIV, HDF5 write)');
  console.log(table([
    ['series', 'RSS at start', 'peak RSS', '2nd tenth', 'last tenth', 'pairs/s'],
    ['8 pairs 2048x2048 16-bit', `${memBig.rssStartMiB} MiB`, `${memBig.peakMiB} MiB`, `${memBig.earlyMiB} MiB`, `${memBig.lateMiB} MiB`, (8 / memBig.seconds).toFixed(2)],
    ['1000 pairs 256x256 8-bit', `${memLong.rssStartMiB} MiB`, `${memLong.peakMiB} MiB`, `${memLong.earlyMiB} MiB`, `${memLong.lateMiB} MiB`, (1000 / memLong.seconds).toFixed(1)],
  ]));
  console.log(`${4 * WORKERS} pairs 2048x2048 16-bit, ${WORKERS} workers in one process: peak ${memAll.peakMiB} MiB for the process, ` +
    `${Math.round(memAll.peakMiB / WORKERS)} MiB per worker, ${(4 * WORKERS / memAll.seconds).toFixed(2)} pairs/s`);
  console.log('  (2nd / last tenth: highest resident memory in that part of the run; no growth means last <= 2nd)');
  figures.memoryOneWorker = { big2048x16: memBig, long1000x256: memLong };
  figures.memoryAllWorkers = { workers: WORKERS, ...memAll, perWorkerMiB: Math.round(memAll.peakMiB / WORKERS) };
}

// Peak resident memory of this process (all the runs above, N pairs at once at most).
const peakMiB = process.resourceUsage().maxRSS / 1024;
console.log(`\npeak memory of the process: ${peakMiB.toFixed(0)} MiB (${WORKERS} pair(s) of ${SIZE}x${SIZE} in flight at most)`);

figures.peakMemoryMiB = Math.round(peakMiB);
console.log(JSON.stringify(figures));
