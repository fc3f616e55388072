/**
 * Preprocessing: every filter against a direct (slow, obvious) implementation on small
 * random images; CLAHE on a known image; the sequence of tools; the command line on
 * synthetic series (names, bit depth, --how complete, a corrupt image, bad parameters).
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readFloat32, withH5File } from '../io/h5.js';
import { readImage, toFloat32, writeImage } from '../io/images.js';
import { PREPROC_TOOLS, preprocSchema, type PreprocToolName } from '../params/preproc.js';
import { defaults } from '../params/schema.js';
import { middleRange, outputIndices, outputName, toIntegers } from '../topologies/preproc.js';
import type { ParamTree } from '../params/tree.js';
import { clahe, clipHistogram } from '../works/preproc/clahe.js';
import { equalizeHistGlobal, equalizeHistLocal } from '../works/preproc/equalize.js';
import type { Boundary, Img } from '../works/preproc/image.js';
import {
  adaptiveThreshold, gammaCorrection, globalThreshold, rescaleIntensity, rescaleIntensityTanh, sharpen,
} from '../works/preproc/intensity.js';
import { gaussianFilter, uniformFilter } from '../works/preproc/linear.js';
import { preprocPool } from '../works/preproc/pool.js';
import { minimumFilter, percentileRank, rankFilter } from '../works/preproc/rank.js';
import { temporalStatistic } from '../works/preproc/temporal.js';
import { makeStep, type ImageContext } from '../works/preproc/tools.js';
import { WorkPreproc } from '../works/preproc/work.js';
import { describeRun, listDir, listJobDirs, makeTempDir, mtimes, removeDir, runCli, type CliResult } from './helpers/cli.js';

// ---------------------------------------------------------------------------------------
// Direct implementations (slow and obvious), independent of the code under test

/** Deterministic pseudo-random numbers in [0, 1). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** A random image: integers in [0, top) or floats (as float32). */
function randomImage(nx: number, ny: number, seed: number, top = 1000, integers = true): Img {
  const r = random(seed);
  const data = new Float32Array(nx * ny);
  for (let i = 0; i < data.length; i++) data[i] = integers ? Math.floor(r() * top) : r() * top;
  return { width: nx, height: ny, data };
}

/** Index of coordinate i of an axis of n pixels, or null (constant 0), by repeated unfolding. */
function borderIndex(i: number, n: number, mode: Boundary): number | null {
  if (mode === 'constant') return i < 0 || i >= n ? null : i;
  if (mode === 'nearest') return Math.min(n - 1, Math.max(0, i));
  if (mode === 'wrap') return ((i % n) + n) % n;
  if (n === 1) return 0;
  while (i < 0 || i >= n) {
    if (mode === 'reflect') i = i < 0 ? -i - 1 : 2 * n - 1 - i; // d c b a | a b c d
    else i = i < 0 ? -i : 2 * n - 2 - i; // mirror: d c b | a b c d
  }
  return i;
}

function at(im: Img, y: number, x: number, mode: Boundary): number {
  const yy = borderIndex(y, im.height, mode);
  const xx = borderIndex(x, im.width, mode);
  return yy === null || xx === null ? 0 : im.data[yy * im.width + xx]!;
}

/** Values of the window around (y, x): scipy puts the centre at size // 2. */
function windowValues(im: Img, y: number, x: number, sy: number, sx: number, mode: Boundary): number[] {
  const v: number[] = [];
  for (let r = 0; r < sy; r++) for (let c = 0; c < sx; c++) v.push(at(im, y - (sy >> 1) + r, x - (sx >> 1) + c, mode));
  return v;
}

function directRank(im: Img, sy: number, sx: number, k: number, mode: Boundary): Float32Array {
  const out = new Float32Array(im.width * im.height);
  for (let y = 0; y < im.height; y++) {
    for (let x = 0; x < im.width; x++) out[y * im.width + x] = windowValues(im, y, x, sy, sx, mode).sort((a, b) => a - b)[k]!;
  }
  return out;
}

/** Direct 2-D correlation with the separable kernel (weights w[j], j = -before..). */
function directCorrelate(im: Img, w: number[], before: number, mode: Boundary): Float64Array {
  const out = new Float64Array(im.width * im.height);
  for (let y = 0; y < im.height; y++) {
    for (let x = 0; x < im.width; x++) {
      let s = 0;
      for (let a = 0; a < w.length; a++) for (let b = 0; b < w.length; b++) s += w[a]! * w[b]! * at(im, y - before + a, x - before + b, mode);
      out[y * im.width + x] = s;
    }
  }
  return out;
}

function gaussWeights(sigma: number): number[] {
  const r = Math.floor(4 * sigma + 0.5);
  const w = Array.from({ length: 2 * r + 1 }, (_, j) => Math.exp(-((j - r) ** 2) / (2 * sigma * sigma)));
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / sum);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= tol * Math.max(1, Math.abs(expected[i]!)))) {
      assert.fail(`${what}: at ${i}, ${actual[i]} vs expected ${expected[i]} (tolerance ${tol})`);
    }
  }
}

function assertExact(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assertClose(actual, expected, 0, what);
}

const minMax = (a: ArrayLike<number>): [number, number] => {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < a.length; i++) {
    lo = Math.min(lo, a[i]!);
    hi = Math.max(hi, a[i]!);
  }
  return [lo, hi];
};

/** The default tools tree with one tool enabled and some of its parameters set. */
function toolsWith(settings: Partial<Record<PreprocToolName, Record<string, unknown>>>, sequence: string[] | null = null): ParamTree {
  const tools = structuredClone((defaults(preprocSchema).preproc as ParamTree).tools as ParamTree);
  tools.sequence = sequence;
  for (const [name, values] of Object.entries(settings)) Object.assign(tools[name] as ParamTree, { enable: true, ...values });
  return tools;
}

/** A spatial tool as a function of the pixels. */
function spatialTool(name: PreprocToolName, tools: ParamTree, ctx: ImageContext): (d: Float32Array) => Float32Array {
  const step = makeStep(name, tools[name] as ParamTree);
  assert.ok(!step.temporal, `${name} is spatial`);
  return (d) => step.apply(d, ctx);
}

// ---------------------------------------------------------------------------------------

describe('preprocessing filters against direct implementations', () => {
  const modes: Boundary[] = ['reflect', 'mirror', 'nearest', 'wrap', 'constant'];

  it('rank filters (median, percentile) are exact: small and large windows, integer and float data, every border mode', () => {
    const windows: [number, number][] = [[1, 1], [3, 3], [5, 5], [2, 4], [4, 3], [7, 6], [9, 9], [15, 4], [20, 20]];
    let seed = 1;
    for (const integers of [true, false]) {
      for (const [sy, sx] of windows) {
        for (const mode of modes) {
          const im = randomImage(13, 11, seed++, integers ? 40 : 1000, integers);
          for (const k of [(sy * sx) >> 1, percentileRank(sy * sx, 10), sy * sx - 1]) {
            assertExact(rankFilter(im, [sy, sx], k, mode), directRank(im, sy, sx, k, mode),
              `rank ${k} of ${sy}x${sx}, ${mode}, ${integers ? 'integers' : 'floats'}`);
          }
        }
      }
    }
  });

  it('rank filters handle windows larger than the image and repeated values', () => {
    const im = randomImage(4, 3, 7, 3); // values 0..2: many ties
    for (const mode of modes) {
      assertExact(rankFilter(im, [9, 11], 49, mode), directRank(im, 9, 11, 49, mode), `big window ${mode}`);
      assertExact(rankFilter(im, [3, 3], 4, mode), directRank(im, 3, 3, 4, mode), `ties ${mode}`);
    }
  });

  it('sliding median 5x5 of a 1024 x 1024 16-bit image takes well under a second', () => {
    const im = randomImage(1024, 1024, 99, 65536);
    rankFilter(im, [5, 5], 12, 'reflect'); // compiled by the first call
    // CPU time, not wall time: the test machine may be busy with other processes.
    const c0 = process.cpuUsage();
    rankFilter(im, [5, 5], 12, 'reflect');
    const c = process.cpuUsage(c0);
    const ms = (c.user + c.system) / 1000;
    assert.ok(ms < 1000, `${ms.toFixed(0)} ms of CPU`);
  });

  it('minimum filter is exact', () => {
    let seed = 100;
    for (const [sy, sx] of [[1, 1], [3, 3], [4, 7], [30, 2], [6, 5]] as [number, number][]) {
      for (const mode of modes) {
        const im = randomImage(17, 9, seed++, 1000, false);
        assertExact(minimumFilter(im, [sy, sx], mode), directRank(im, sy, sx, 0, mode), `min ${sy}x${sx} ${mode}`);
      }
    }
  });

  it('sliding tools subtract weight x the filtered image and clip at 0', () => {
    const im = randomImage(12, 10, 5, 500);
    const ctx = { width: 12, height: 10, bitDepth: 16 as const };
    const cases: [PreprocToolName, Record<string, unknown>, (i: number, w: number[]) => number][] = [
      ['sliding_median', { window_size: [3, 4], weight: 0.7 }, (_, w) => w.sort((a, b) => a - b)[6]!],
      ['sliding_percentile', { window_size: 5, weight: 1, percentile: 30 }, (_, w) => w.sort((a, b) => a - b)[7]!],
      ['sliding_minima', { window_size: 3, weight: 0.5, boundary_condition: 'nearest' }, (_, w) => Math.min(...w)],
    ];
    for (const [name, p, stat] of cases) {
      const tools = toolsWith({ [name]: p });
      const tree = tools[name] as ParamTree;
      const out = spatialTool(name, tools, ctx)(im.data);
      const [sy, sx] = typeof p.window_size === 'number' ? [p.window_size, p.window_size] : p.window_size as number[];
      const expected = new Float32Array(out.length);
      for (let y = 0; y < 10; y++) {
        for (let x = 0; x < 12; x++) {
          const i = y * 12 + x;
          const v = im.data[i]! - (p.weight as number) * stat(i, windowValues(im, y, x, sy!, sx!, (tree.boundary_condition as Boundary)));
          expected[i] = Math.max(0, v);
        }
      }
      assertClose(out, expected, 1e-6, name);
    }
  });

  it('temporal median, percentile and minima over the item, with and without a spatial window', () => {
    const nx = 9;
    const ny = 7;
    for (const integers of [true, false]) {
      const stack = [1, 2, 3, 4, 5].map((s) => randomImage(nx, ny, 40 + s, 100, integers).data);
      for (const window of [null, [3, 3], [2, 4]] as ([number, number] | null)[]) {
        const [sy, sx] = window ?? [1, 1];
        for (const [kind, p] of [['median', 50], ['percentile', 20], ['minima', 0]] as const) {
          const got = temporalStatistic(stack, nx, ny, kind, p, window);
          const expected = new Float32Array(nx * ny);
          for (let y = 0; y < ny; y++) {
            for (let x = 0; x < nx; x++) {
              const values = stack.flatMap((data) => windowValues({ width: nx, height: ny, data }, y, x, sy, sx, 'reflect'));
              values.sort((a, b) => a - b);
              const k = kind === 'minima' ? 0 : kind === 'median' ? values.length >> 1 : Math.floor((values.length * p) / 100);
              expected[y * nx + x] = values[k]!;
            }
          }
          assertExact(got, expected, `temporal ${kind} ${JSON.stringify(window)} ${integers ? 'integers' : 'floats'}`);
        }
      }
      // The tool: every image minus weight x the median, no clipping.
      const step = makeStep('temporal_median', toolsWith({ temporal_median: { weight: 0.5 } }).temporal_median as ParamTree);
      assert.ok(step.temporal);
      const out = step.apply(stack, { width: nx, height: ny, bitDepth: 8 });
      for (let i = 0; i < nx * ny; i++) {
        const med = stack.map((s) => s[i]!).sort((a, b) => a - b)[2]!;
        stack.forEach((s, t) => assert.ok(Math.abs(out[t]![i]! - (s[i]! - 0.5 * med)) < 1e-4));
      }
    }
  });

  it('gaussian, uniform, sharpen and adaptive threshold match direct 2-D correlations', () => {
    const im = randomImage(15, 12, 9, 1000, false);
    for (const sigma of [0.7, 1, 2.5]) {
      assertClose(gaussianFilter(im, sigma), directCorrelate(im, gaussWeights(sigma), Math.floor(4 * sigma + 0.5), 'reflect'), 1e-5, `gaussian ${sigma}`);
    }
    for (const size of [3, 4, 5]) {
      assertClose(uniformFilter(im, size), directCorrelate(im, Array(size).fill(1 / size), size >> 1, 'reflect'), 1e-5, `uniform ${size}`);
    }
    const b1 = directCorrelate(im, gaussWeights(3), 12, 'reflect');
    const b2 = directCorrelate({ width: 15, height: 12, data: Float32Array.from(b1) }, gaussWeights(1), 4, 'reflect');
    assertClose(sharpen(im, 3, 1, 30), b1.map((v, i) => v + 30 * (v - b2[i]!)), 1e-4, 'sharpen');
    for (const [method, size, offset] of [['gaussian', 7, 5], ['mean', 5, -3]] as const) {
      const local = method === 'gaussian'
        ? directCorrelate(im, gaussWeights((size - 1) / 6), Math.floor((4 * (size - 1)) / 6 + 0.5), 'reflect')
        : directCorrelate(im, Array(size).fill(1 / size), size >> 1, 'reflect');
      const got = adaptiveThreshold(im, size, offset, method);
      for (let i = 0; i < got.length; i++) {
        const t = local[i]! - offset;
        // Pixels within rounding of the threshold may go either way.
        if (Math.abs(im.data[i]! - t) > 1e-3) assert.equal(got[i], im.data[i]! > t ? im.data[i] : 0, `adaptive ${method} at ${i}`);
      }
    }
  });

  it('point tools: thresholds, rescaling, tanh, gamma', () => {
    const im = randomImage(10, 10, 11, 4000, false);
    const d = im.data;
    assertExact(globalThreshold(d, 500, 3000), Array.from(d, (v) => Math.min(3000, Math.max(500, v))), 'global_threshold');
    const [lo, hi] = minMax(d);
    assertClose(rescaleIntensity(d, 10, 20), Array.from(d, (v) => 10 + ((v - lo) / (hi - lo)) * 10), 1e-6, 'rescale');
    assert.deepEqual(minMax(rescaleIntensity(d, 10, 20)), [10, 20]);
    const t = 2 * Math.sqrt(Array.from(d).reduce((s, v) => s + v * v, 0) / d.length);
    const th = Array.from(d, (v) => Math.tanh(v / t));
    const thMax = Math.max(...th);
    assertExact(rescaleIntensityTanh(d, null), th.map((v) => Math.floor((hi / thMax) * Math.fround(v))), 'tanh');
    assertExact(rescaleIntensityTanh(d, 1000), Array.from(d, (v) => Math.floor((hi / Math.tanh(hi / 1000)) * Math.fround(Math.tanh(v / 1000)))), 'tanh 1000');
    assertClose(gammaCorrection(d, 0.5, 2, 65535), Array.from(d, (v) => 2 * 65535 * (v / 65535) ** 0.5), 1e-6, 'gamma');
    assertClose(gammaCorrection(Float32Array.from([-3, 0, 255]), 2, 1, 255), [0, 0, 255], 0, 'gamma clip');
  });

  it('global equalisation: numpy-style histogram, np.interp between bin centres, input range', () => {
    const im = randomImage(20, 15, 12, 300, false);
    const d = im.data;
    const [lo, hi] = minMax(d);
    const nbins = 16;
    const hist = new Array<number>(nbins).fill(0);
    for (const v of d) hist[Math.min(nbins - 1, Math.floor(((v - lo) / (hi - lo)) * nbins))]!++;
    const cdf = hist.map((_, b) => hist.slice(0, b + 1).reduce((a, c) => a + c, 0) / d.length);
    const centres = hist.map((_, b) => lo + ((b + 0.5) * (hi - lo)) / nbins);
    const interp = (v: number): number => {
      if (v <= centres[0]!) return cdf[0]!;
      if (v >= centres[nbins - 1]!) return cdf[nbins - 1]!;
      const j = centres.findIndex((c, k) => v >= c && v < centres[k + 1]!);
      return cdf[j]! + ((v - centres[j]!) / (centres[j + 1]! - centres[j]!)) * (cdf[j + 1]! - cdf[j]!);
    };
    const e = Array.from(d, interp);
    const [elo, ehi] = minMax(e);
    assertClose(equalizeHistGlobal(d, nbins), e.map((v) => lo + ((v - elo) / (ehi - elo)) * (hi - lo)), 1e-5, 'equalize global');
  });

  it('local equalisation: rank of each pixel among its disk neighbours inside the image', () => {
    const im = randomImage(14, 11, 13, 1000, false);
    const [lo, hi] = minMax(im.data);
    const nbins = 32;
    const level = (v: number) => Math.min(nbins - 1, Math.floor(((v - lo) / (hi - lo)) * nbins));
    for (const radius of [1, 3, 6]) {
      const e: number[] = [];
      for (let y = 0; y < 11; y++) {
        for (let x = 0; x < 14; x++) {
          let below = 0;
          let pop = 0;
          for (let dy = -radius; dy <= radius; dy++) {
            for (let dx = -radius; dx <= radius; dx++) {
              const yy = y + dy;
              const xx = x + dx;
              if (dx * dx + dy * dy > radius * radius || yy < 0 || yy >= 11 || xx < 0 || xx >= 14) continue;
              pop++;
              if (level(im.data[yy * 14 + xx]!) <= level(im.data[y * 14 + x]!)) below++;
            }
          }
          e.push(below / pop);
        }
      }
      const [elo, ehi] = minMax(e);
      assertClose(equalizeHistLocal(im, radius, nbins), e.map((v) => lo + ((v - elo) / (ehi - elo)) * (hi - lo)), 1e-5, `local r=${radius}`);
    }
  });

  it('CLAHE: one tile without clipping is the stepwise global equalisation', () => {
    const im = randomImage(16, 12, 21, 200);
    const [lo, hi] = minMax(im.data);
    const nbins = 10;
    const bin = (v: number) => Math.min(nbins - 1, Math.floor(((v - lo) / (hi - lo)) * nbins));
    const cdf = (b: number) => Array.from(im.data).filter((v) => bin(v) <= b).length / im.data.length;
    const e = Array.from(im.data, (v) => cdf(bin(v)));
    const [elo, ehi] = minMax(e);
    assertClose(clahe(im, [12, 16], nbins, 1), e.map((v) => lo + ((v - elo) / (ehi - elo)) * (hi - lo)), 1e-5, 'clahe 1 tile');
  });

  it('CLAHE: clipping keeps the histogram total and caps the bins', () => {
    const h = Float64Array.from([50, 0, 3, 30, 1, 0, 0, 16]);
    clipHistogram(h, 15);
    assert.ok(Math.abs(h.reduce((a, b) => a + b, 0) - 100) < 1e-9);
    assert.ok(Math.max(...h) <= 15 + 1e-6, `max ${Math.max(...h)}`);
  });

  it('CLAHE on a known low-contrast image: flatter histogram, same range, tiles blended smoothly', () => {
    // A 128 x 128 image: smooth waves of +-250 grey levels around 1000 (left) and 3000
    // (right), two isolated pixels at 0 and 4095 fixing the range: most of the 64 bins
    // of [0, 4096) are empty.
    const nx = 128;
    const ny = 128;
    const data = new Float32Array(nx * ny);
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) data[y * nx + x] = (x < 64 ? 1000 : 3000) + Math.round(150 * Math.sin(x / 9) + 100 * Math.cos(y / 7));
    }
    data[0] = 0;
    data[nx * ny - 1] = 4095;
    const im: Img = { width: nx, height: ny, data };
    const out = clahe(im, [32, 32], 256, 0.02);
    assert.deepEqual(minMax(out), [0, 4095], 'output range = input range');
    const entropy = (a: Float32Array): number => {
      const h = new Array<number>(64).fill(0);
      for (const v of a) h[Math.min(63, Math.floor((v / 4096) * 64))]!++;
      return -h.filter((c) => c > 0).reduce((s, c) => s + (c / a.length) * Math.log2(c / a.length), 0);
    };
    assert.ok(entropy(out) > entropy(data) + 1, `entropy ${entropy(data).toFixed(2)} -> ${entropy(out).toFixed(2)}`);
    // A lower clip limit limits the contrast gain.
    assert.ok(entropy(clahe(im, [32, 32], 256, 0.005)) < entropy(out));
    // Bilinear blending of the tile mappings: no seams, neighbouring pixels stay close.
    let maxJump = 0;
    for (let y = 10; y < 118; y++) for (let x = 2; x < 60; x++) maxJump = Math.max(maxJump, Math.abs(out[y * nx + x + 1]! - out[y * nx + x]!));
    assert.ok(maxJump < 400, `max jump ${maxJump}`);
    // Monotone within a tile region for a single tile (no clipping): order preserved.
    const single = clahe(im, [128, 128], 256, 1);
    for (let i = 1; i < 500; i++) {
      if (data[i]! > data[i - 1]!) assert.ok(single[i]! >= single[i - 1]!);
    }
  });
});

describe('preprocessing work: sequence and outputs', () => {
  const nx = 11;
  const ny = 9;
  const ctx = { width: nx, height: ny, bitDepth: 16 as const };
  const im = randomImage(nx, ny, 31, 1000);

  it('applies the enabled tools in the order of `sequence` (null: Fluidimage order)', () => {
    const median = spatialTool('sliding_median', toolsWith({ sliding_median: { window_size: 3 } }), ctx);
    const clip = (d: Float32Array) => globalThreshold(d, 100, 400);
    const run = (tools: ParamTree) => new WorkPreproc(tools).calcul({ ...ctx, images: [im.data.slice()], outputs: [0] })[0]!;
    const both = { sliding_median: { window_size: 3 }, global_threshold: { minima: 100, maxima: 400 } };
    assertExact(run(toolsWith(both)), clip(median(im.data)), 'default order');
    assertExact(run(toolsWith(both, ['global_threshold', 'sliding_median'])), median(clip(im.data)), 'explicit order');
    // In the sequence but not enabled: skipped. Enabled but not in the sequence: skipped.
    const t = toolsWith(both, ['global_threshold']);
    assertExact(run(t), clip(im.data), 'only listed tools');
    (t.global_threshold as ParamTree).enable = false;
    assertExact(run(t), im.data, 'nothing enabled');
    assert.deepEqual(PREPROC_TOOLS.slice(0, 3), ['sliding_median', 'sliding_minima', 'sliding_percentile']);
  });

  it('temporal tools see the whole stack; later tools only the written images', () => {
    const stack = [1, 2, 3, 4, 5].map((s) => randomImage(nx, ny, 60 + s, 1000).data);
    const tools = toolsWith({ sliding_minima: { window_size: 3 }, temporal_median: {}, gamma_correction: { gamma: 2 } });
    const work = new WorkPreproc(tools);
    assert.ok(work.needsStack);
    const out = work.calcul({ ...ctx, images: stack.map((s) => s.slice()), outputs: [2, 3] });
    const mins = stack.map(spatialTool('sliding_minima', tools, ctx));
    const med = temporalStatistic(mins, nx, ny, 'median', 50, null);
    assert.equal(out.length, 2);
    [2, 3].forEach((t, j) => {
      const expected = gammaCorrection(Float32Array.from(mins[t]!, (v, i) => v - med[i]!), 2, 1, 65535);
      assertClose(out[j]!, expected, 1e-6, `output ${t}`);
    });
  });

  it('the thread pool gives the results of the inline work', async () => {
    const tools = toolsWith({ sliding_median: { window_size: 5 }, sharpen: {} });
    const pool = preprocPool(2, tools);
    try {
      const inputs = [0, 1, 2].map((s) => randomImage(nx, ny, 80 + s, 1000).data);
      const results = await Promise.all(inputs.map((d) => pool.run({ ...ctx, images: [d.slice()], outputs: [0] })));
      inputs.forEach((d, i) => assertExact(results[i]![0]!, new WorkPreproc(tools).calcul({ ...ctx, images: [d], outputs: [0] })[0]!, `item ${i}`));
      const bad = toolsWith({ temporal_median: {} });
      const pool2 = preprocPool(1, bad);
      await assert.rejects(pool2.run({ ...ctx, images: [inputs[0]!.slice()], outputs: [0] }), /more than one image/);
      await pool2.close();
    } finally {
      await pool.close();
    }
  });

  it('which images an item writes (Fluidimage get_ind_middle) and their names', () => {
    const five = ['im1.png', 'im2.png', 'im3.png', 'im4.png', 'im5.png'];
    assert.deepEqual(middleRange(five), [2, 3]);
    assert.deepEqual(middleRange(five.slice(0, 4)), [1, 2]);
    assert.deepEqual(middleRange(['c1a.png', 'c1b.png', 'c2a.png', 'c2b.png', 'c3a.png', 'c3b.png']), [2, 4]);
    assert.deepEqual(outputIndices(five, false, false), [2]);
    assert.deepEqual(outputIndices(five, true, false), [0, 1, 2]);
    assert.deepEqual(outputIndices(five, false, true), [2, 3, 4]);
    assert.deepEqual(outputIndices(five, true, true), [0, 1, 2, 3, 4]);
    assert.deepEqual(outputIndices(['a.png'], false, false), [0]);
    assert.equal(outputName('im01.tif', 'img'), 'im01.tif');
    assert.equal(outputName('im01.jpg', 'img'), 'im01.png');
    assert.equal(outputName('im01.tif', 'hdf5'), 'im01.h5');
    assert.deepEqual(Array.from(toIntegers(Float32Array.from([-3, 0.5, 1.49, 254.6, 300, NaN]), 8)), [0, 1, 1, 255, 255, 0]);
    assert.deepEqual(Array.from(toIntegers(Float32Array.from([70000, 65534.4]), 16)), [65535, 65534]);
  });
});

// ---------------------------------------------------------------------------------------
// Command line

describe('fluidimage preproc (command line)', function () {
  this.timeout(120_000);
  let dir: string;

  beforeEach(async () => {
    dir = await makeTempDir('preproc');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  async function cli(args: string[], expected: number): Promise<CliResult> {
    const r = await runCli(args, { timeoutMs: 90_000 });
    assert.equal(r.code, expected, describeRun(args, r));
    return r;
  }

  /** Random images im01.png ... of the given depth; returns them as float32. */
  async function series(sub: string, n: number, bitDepth: 8 | 16, nx = 24, ny = 18): Promise<Map<string, Float32Array>> {
    const images = new Map<string, Float32Array>();
    const top = bitDepth === 8 ? 256 : 65536;
    for (let k = 1; k <= n; k++) {
      const name = `im${String(k).padStart(2, '0')}.png`;
      const f = randomImage(nx, ny, 1000 * bitDepth + k, top).data;
      const data = bitDepth === 8 ? Uint8Array.from(f) : Uint16Array.from(f);
      await mkdir(join(dir, sub), { recursive: true });
      await writeImage(join(dir, sub, name), nx, ny, data);
      images.set(name, f);
    }
    return images;
  }

  it('keeps names and bit depth (8 and 16-bit), values = the tools applied then rounded and clipped', async () => {
    for (const depth of [8, 16] as const) {
      const images = await series(`in${depth}`, 3, depth);
      const args = ['preproc', join(dir, `in${depth}`), '--set', 'preproc.tools.sliding_median.enable=true',
        '--set', 'preproc.tools.sliding_median.window_size=3', '--set', 'preproc.tools.sliding_median.weight=0.5',
        '--set', 'preproc.tools.gamma_correction.enable=true', '--set', 'preproc.tools.gamma_correction.gamma=1.3', '--workers', '2'];
      const r = await cli(args, 0);
      const out = join(dir, `in${depth}.pre`);
      assert.equal(r.stdout.trim(), out);
      assert.deepEqual(await listDir(out), [...images.keys()]);
      assert.equal((await listJobDirs(out)).length, 1);
      const work = new WorkPreproc(toolsWith({ sliding_median: { window_size: 3, weight: 0.5 }, gamma_correction: { gamma: 1.3 } }));
      for (const [name, data] of images) {
        const im = await readImage(join(out, name));
        assert.equal(im.bitDepth, depth, `${name}: bit depth`);
        const expected = toIntegers(work.calcul({ width: 24, height: 18, bitDepth: depth, images: [data], outputs: [0] })[0]!, depth);
        assert.deepEqual(Array.from(im.data), Array.from(expected), `${name}: values`);
      }
    }
  });

  it('--how complete recomputes only the deleted outputs; recompute redoes all', async () => {
    const images = await series('in', 4, 16);
    const args = ['preproc', join(dir, 'in'), '--set', 'preproc.tools.sliding_minima.enable=true', '--set', 'preproc.tools.sliding_minima.window_size=5'];
    await cli(args, 0);
    const out = join(dir, 'in.pre');
    const names = [...images.keys()];
    await rm(join(out, names[1]!));
    const before = await mtimes(out, [names[0]!, names[2]!, names[3]!]);
    await new Promise((r) => setTimeout(r, 30));
    const r = await cli(args, 0);
    assert.match(r.stderr, /4 item\(s\) in the series, 3 already done, 1 to compute/);
    assert.deepEqual(await listDir(out), names);
    assert.deepEqual(await mtimes(out, [names[0]!, names[2]!, names[3]!]), before);
    const r2 = await cli([...args, '--how', 'recompute'], 0);
    assert.match(r2.stderr, /0 already done, 4 to compute/);
  });

  it('a corrupt image fails with its name while the others land (exit status 1)', async () => {
    const images = await series('in', 4, 8);
    const names = [...images.keys()];
    const broken = join(dir, 'in', names[2]!);
    await truncate(broken, Math.floor((await stat(broken)).size / 2));
    const r = await cli(['preproc', join(dir, 'in'), '--set', 'preproc.tools.sharpen.enable=true', '--workers', '2'], 1);
    assert.match(r.stderr, new RegExp(`FAILED ${names[2]}`));
    assert.ok(r.stderr.includes(broken), r.stderr);
    const out = join(dir, 'in.pre');
    assert.deepEqual(await listDir(out), names.filter((n) => n !== names[2]));
    const job = (await listJobDirs(out))[0]!;
    assert.deepEqual(await readdir(join(out, job, 'failed')), [`${names[2]}.txt`]);
  });

  it('temporal tools over "i-1:i+2": every image written once, the middle one from its own stack', async () => {
    const images = await series('in', 5, 16);
    const names = [...images.keys()];
    await cli(['preproc', join(dir, 'in'), '--set', 'series.str_subset=i-1:i+2', '--set', 'preproc.tools.temporal_minima.enable=true',
      '--set', 'saving.format=hdf5', '--workers', '3'], 0);
    const out = join(dir, 'in.pre');
    assert.deepEqual(await listDir(out), names.map((n) => n.replace('.png', '.h5')));
    // im03 is the middle of (im02, im03, im04).
    const stack = [names[1]!, names[2]!, names[3]!].map((n) => images.get(n)!);
    const min = temporalStatistic(stack, 24, 18, 'minima', 0, null);
    const got = await withH5File(join(out, 'im03.h5'), 'r', (f) => readFloat32(f, `images/${names[2]}`));
    assertExact(got!, Float32Array.from(stack[1]!, (v, i) => v - min[i]!), 'im03');
    // im01 (first item's edge) comes from the stack (im01, im02, im03).
    const first = [names[0]!, names[1]!, names[2]!].map((n) => images.get(n)!);
    const min0 = temporalStatistic(first, 24, 18, 'minima', 0, null);
    const got0 = await withH5File(join(out, 'im01.h5'), 'r', (f) => readFloat32(f, `images/${names[0]}`));
    assertExact(got0!, Float32Array.from(first[0]!, (v, i) => v - min0[i]!), 'im01');
  });

  it('temporal tools with one image per item: exit 2 naming series.str_subset', async () => {
    await series('in', 2, 8);
    const r = await cli(['preproc', join(dir, 'in'), '--set', 'preproc.tools.temporal_median.enable=true'], 2);
    assert.match(r.stderr, /series\.str_subset/);
  });

  it('unknown parameters and bad values: exit 2 naming the key, nothing written', async () => {
    await series('in', 2, 8);
    const r = await cli(['preproc', join(dir, 'in'), '--set', 'preproc.tools.sliding_median.windowsize=3'], 2);
    assert.match(r.stderr, /preproc\.tools\.sliding_median\.windowsize/);
    const r2 = await cli(['preproc', join(dir, 'in'), '--set', 'preproc.tools.sequence=[sharpen, blur]'], 2);
    assert.match(r2.stderr, /preproc\.tools\.sequence.*blur/);
    const params = join(dir, 'p.yaml');
    await writeFile(params, 'preproc:\n  tools:\n    sharpen:\n      sigma3: 2\n');
    const r3 = await cli(['preproc', join(dir, 'in'), '-c', params], 2);
    assert.match(r3.stderr, /preproc\.tools\.sharpen\.sigma3/);
    assert.deepEqual(await listDir(join(dir, 'in.pre')), []);
  });

  it('`fluidimage params preproc` prints the documented defaults, which load back', async () => {
    const r = await cli(['params', 'preproc'], 0);
    assert.deepEqual(parseYaml(r.stdout), defaults(preprocSchema));
    assert.match(r.stdout, /# Subtract weight x the median of a sliding window/);
    const file = join(dir, 'p.yaml');
    await writeFile(file, r.stdout);
    await series('in', 2, 8);
    await cli(['preproc', join(dir, 'in'), '-c', file, '-o', join(dir, 'out'), '--quiet'], 0);
    assert.deepEqual(await listDir(join(dir, 'out')), ['im01.png', 'im02.png']);
    // No tool enabled: the images are copied value for value.
    const a = await readImage(join(dir, 'in', 'im01.png'));
    const b = await readImage(join(dir, 'out', 'im01.png'));
    assert.deepEqual(Array.from(b.data), Array.from(a.data));
    assertExact(toFloat32(b), toFloat32(a), 'identity');
  });
});
