/**
 * The validation the peers have (signal-to-noise, global range and standard deviation
 * filters) and masks that move (a folder of masks, a mask module) or polygons, on
 * synthetic images with known fields.
 */
import assert from 'node:assert/strict';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pivSchema } from '../params/piv.js';
import { defaults, setAt } from '../params/schema.js';
import { native } from '../native.js';
import { writeImage } from '../io/images.js';
import { readPivFile } from '../io/pivfile.js';
import { pairMasker } from '../topologies/piv.js';
import { ERROR_CODES } from '../works/piv/errors.js';
import { polygonMask } from '../works/piv/masks.js';
import type { PassResult, PivResult } from '../results/piv_result.js';
import type { ParamTree } from '../params/tree.js';
import { WorkPIV, type PairImages } from '../works/piv/work.js';
import { makeField } from '../works/synth/fields.js';
import { renderPair, rng } from '../works/synth/particles.js';
import { describeRun, makeTempDir, removeDir, runCli } from './helpers/cli.js';

const N = 256;
const U = 3.3;
const V = -1.7;

function params(sets: Record<string, unknown>): ParamTree {
  let p = defaults(pivSchema);
  for (const [k, v] of Object.entries(sets)) p = setAt(pivSchema, p, k, v);
  return p;
}

/** A pair of N x N images of particles moved by (U, V), and its 8-bit images. */
function uniformPair(seed = 3, size = N) {
  const field = makeField({ kind: 'uniform', dx: U, dy: V }, [size, size]);
  const r = renderPair(field, { shape: [size, size], density: 0.035, diameter: 2.5, bitDepth: 8, noise: 0.01, seed });
  const pair: PairImages = {
    im0: Float32Array.from(r.im0), im1: Float32Array.from(r.im1), height: size, width: size,
    names: ['a.png', 'b.png'], paths: ['/a.png', '/b.png'],
  };
  return { pair, r };
}

/** The code of every vector of a pass (0: kept). */
function codesOf(pass: PassResult): Int32Array {
  const codes = new Int32Array(pass.xs.length);
  pass.errors.keys.forEach((k, q) => { codes[k] = pass.errors.codes[q]; });
  return codes;
}

/** One pass of 32 px windows, only the tests of `sets` (the neighbour tests off). */
const onePass = (sets: Record<string, unknown>) => params({
  'piv0.shape_crop_im0': 32, 'multipass.number': 1, 'multipass.use_tps': false,
  'fix.threshold_median': null, 'fix.threshold_diff_neighbour': null, ...sets,
});

/** The right half of the second image replaced by noise: no signal there (x >= N/2). */
function halfNoise(pair: PairImages): PairImages {
  const im1 = Float32Array.from(pair.im1);
  const rand = rng(17);
  for (let y = 0; y < N; y++) for (let x = N / 2; x < N; x++) im1[y * N + x] = Math.floor(256 * rand());
  return { ...pair, im1 };
}

/**
 * Share of the vectors in the noise (windows all in it, peaks not already on the border of
 * the searched region: code 1) rejected with `code`, and of the vectors in the particles
 * kept with the right displacement.
 */
function split(pass: PassResult, code: number) {
  const codes = codesOf(pass);
  let noise = 0;
  let noiseHit = 0;
  let signal = 0;
  let signalKept = 0;
  for (let k = 0; k < codes.length; k++) {
    if (pass.xs[k] > N / 2 + 16) {
      if (codes[k] === ERROR_CODES.peakOnBorder) continue;
      noise++;
      if (codes[k] === code) noiseHit++;
    } else if (pass.xs[k] < N / 2 - 16) {
      signal++;
      if (codes[k] === 0 && Math.abs(pass.deltaxs[k] - U) < 0.2 && Math.abs(pass.deltays[k] - V) < 0.2) signalKept++;
    }
  }
  return { noise: noiseHit / noise, signal: signalKept / signal };
}

describe('validation: signal-to-noise, global range and global std filters', function () {
  this.timeout(60000);

  it('are off by default and documented with their codes', () => {
    const fix = defaults(pivSchema).fix as ParamTree;
    assert.equal(fix.s2n_peak_ratio_min, null);
    assert.equal(fix.s2n_peak_to_mean_min, null);
    assert.deepEqual(fix.global_range, { u: null, v: null });
    assert.equal(fix.global_std_factor, null);
    assert.deepEqual([ERROR_CODES.peakRatio, ERROR_CODES.peakToMean, ERROR_CODES.globalRange, ERROR_CODES.globalStd], [7, 8, 9, 10]);
    assert.throws(() => params({ 'fix.global_range.u': [3, 1] }), /Expected a range \[min, max\].* for fix\.global_range\.u but received \[3,1\]/);
    assert.throws(() => params({ 'fix.s2n_peak_ratio_min': -1 }), /fix\.s2n_peak_ratio_min/);
  });

  it('peak ratio: vectors where image 1 is noise are rejected (code 7), the particles kept', async () => {
    const pair = halfNoise(uniformPair().pair);
    const off = (await new WorkPIV(onePass({ 'fix.correl_min': 0 })).calcul(pair)).passes[0];
    assert.equal(split(off, ERROR_CODES.peakRatio).noise, 0, 'no s2n rejection by default');
    const on = (await new WorkPIV(onePass({ 'fix.correl_min': 0, 'fix.s2n_peak_ratio_min': 2 })).calcul(pair)).passes[0];
    const s = split(on, ERROR_CODES.peakRatio);
    assert.ok(s.noise > 0.95, `noise vectors rejected by the peak ratio: ${s.noise}`);
    assert.equal(s.signal, 1, `particle vectors kept: ${s.signal}`);
    const k = codesOf(on).indexOf(ERROR_CODES.peakRatio);
    assert.match(on.errors.values[Array.from(on.errors.keys).indexOf(k)], /^s2n peak ratio < s2n_peak_ratio_min \(ratio = 1\.\d\d\)/);
    // With secondary peaks searched (nb_peaks_to_search), the ratio uses the same second peak.
    const more = (await new WorkPIV(onePass({ 'fix.correl_min': 0, 'fix.s2n_peak_ratio_min': 2, 'piv0.nb_peaks_to_search': 3 })).calcul(pair)).passes[0];
    assert.ok(split(more, ERROR_CODES.peakRatio).signal === 1);
  });

  it('peak to mean: vectors where image 1 is noise are rejected (code 8), the particles kept', async function () {
    const probe = await native().correlatePass({
      im0: new Float32Array(256).map((_, i) => i % 7), im1: new Float32Array(256).map((_, i) => i % 5), height: 16, width: 16,
      h0: 16, w0: 16, h1: 16, w1: 16, starts0: new Int32Array(2), starts1: new Int32Array(2), peakToMean: true,
    });
    if (!probe.peakToMean) this.skip(); // addon without the peak-to-mean output (see README)
    const pair = halfNoise(uniformPair().pair);
    const on = (await new WorkPIV(onePass({ 'fix.correl_min': 0, 'fix.s2n_peak_to_mean_min': 8 })).calcul(pair)).passes[0];
    const s = split(on, ERROR_CODES.peakToMean);
    assert.ok(s.noise > 0.95, `noise vectors rejected by the peak-to-mean ratio: ${s.noise}`);
    assert.equal(s.signal, 1, `particle vectors kept: ${s.signal}`);
  });

  /** The pair with a planted outlier: a 64 px block of image 1 moved by (-6, 0) instead of (U, V). */
  function withOutlier() {
    const { pair } = uniformPair();
    const im1 = Float32Array.from(pair.im1);
    for (let y = 96; y < 160; y++) for (let x = 96; x < 160; x++) im1[y * N + x] = pair.im0[y * N + x + 6];
    // Windows of 32 px centred at start + 15.5: all in the block, or none of them in it.
    const inBlock = (pass: PassResult, k: number) => [pass.xs[k], pass.ys[k]].every((c) => c - 15.5 >= 96 && c + 16.5 <= 160);
    const outside = (pass: PassResult, k: number) => [pass.xs[k], pass.ys[k]].some((c) => c + 16.5 <= 96 || c - 15.5 >= 160);
    return { pair: { ...pair, im1 }, inBlock, outside };
  }

  for (const [what, sets, code] of [
    ['global range', { 'fix.global_range.u': [0, 6], 'fix.global_range.v': [-4, 1] }, ERROR_CODES.globalRange],
    ['global std', { 'fix.global_std_factor': 3 }, ERROR_CODES.globalStd],
  ] as const) {
    it(`${what}: a planted outlier is rejected (code ${code}), the field around kept`, async () => {
      const { pair, inBlock, outside } = withOutlier();
      const off = (await new WorkPIV(onePass({})).calcul(pair)).passes[0];
      const pass = (await new WorkPIV(onePass(sets)).calcul(pair)).passes[0];
      const codes = codesOf(pass);
      let planted = 0;
      for (let k = 0; k < codes.length; k++) {
        if (inBlock(pass, k)) {
          planted++;
          assert.ok(Math.abs(off.deltaxs[k] + 6) < 0.3, `the outlier is measured without the filter: ${off.deltaxs[k]}`);
          assert.equal(codes[k], code, `outlier at (${pass.xs[k]}, ${pass.ys[k]})`);
          assert.ok(Number.isNaN(pass.deltaxs[k]));
        } else if (outside(pass, k)) {
          assert.equal(codes[k], 0, `vector at (${pass.xs[k]}, ${pass.ys[k]}) kept`);
        }
      }
      assert.equal(planted, 9);
    });
  }

  it('default parameters give the same result as before (the new tests off)', async () => {
    const { pair } = uniformPair();
    const a = await new WorkPIV(params({})).calcul(pair);
    const b = await new WorkPIV(params({ 'fix.s2n_peak_ratio_min': null, 'fix.global_std_factor': null, 'mask.polygons': null })).calcul(pair);
    assert.deepEqual(a.passes.map((p) => [p.deltaxs, p.errors]), b.passes.map((p) => [p.deltaxs, p.errors]));
  });
});

/** Grid points of the final field inside / outside a masked column band [x0, x1]. */
function checkFinalBand(result: PivResult, x0: number, x1: number, label: string): void {
  const f = result.passes[result.passes.length - 1].final!;
  let inside = 0;
  for (let k = 0; k < f.ixvecs_final.length; k++) {
    const x = f.ixvecs_final[k];
    if (x >= x0 && x <= x1) {
      inside++;
      assert.ok(Number.isNaN(f.deltaxs_final[k]), `${label}: final vector at x=${x} masked`);
    } else if (x < x0 - 16 || x > x1 + 16) {
      assert.ok(Math.abs(f.deltaxs_final[k] - U) < 0.2, `${label}: final vector at x=${x}: ${f.deltaxs_final[k]}`);
    }
  }
  assert.ok(inside > 0, `${label}: grid points in the band`);
}

describe('masks: polygons, a folder of masks that move, a mask module', function () {
  this.timeout(120000);
  let dir: string | undefined;
  before(async () => {
    dir = await makeTempDir('masks');
  });
  after(() => removeDir(dir));

  it('rasterises polygons (pixel centres inside, vertices in pixels)', () => {
    const m = polygonMask([[[2, 1], [6, 1], [6, 4], [2, 4]], [[0, 7], [3, 7], [0, 9]]], 10, 10);
    const at = (x: number, y: number) => m.data[y * 10 + x];
    assert.equal(at(2, 1), 0);
    assert.equal(at(6, 3), 0);
    assert.equal(at(7, 3), 1);
    assert.equal(at(4, 5), 1);
    assert.equal(at(0, 8), 0);
    assert.equal(at(3, 9), 1);
    assert.throws(() => params({ 'mask.polygons': [[[0, 0], [1, 1]]] }), /Expected a list of polygons.* for mask\.polygons but received/);
  });

  it('polygons: final vectors NaN inside, valid outside; windows inside coded 6', async () => {
    const { pair } = uniformPair();
    const band = [[100, -10], [150, -10], [150, N + 10], [100, N + 10]];
    const result = await new WorkPIV(params({ 'piv0.shape_crop_im0': 32, 'multipass.number': 2, 'mask.polygons': [band] })).calcul(pair);
    checkFinalBand(result, 100, 150, 'polygon');
    const last = result.passes[1];
    const codes = codesOf(last);
    for (let k = 0; k < codes.length; k++) if (last.xs[k] > 110 && last.xs[k] < 140) assert.equal(codes[k], ERROR_CODES.outside);
  });

  it('mask.folder: each pair its own mask (the masked band follows), a mask of another size refused at planning', async () => {
    const images = join(dir!, 'moving');
    const masks = join(dir!, 'moving-masks');
    const synth = await runCli(['synth', 'uniform', '-o', images, '--pairs', '2', '--size', String(N)]);
    assert.equal(synth.code, 0, synth.stderr);
    await mkdir(masks);
    const bands: Record<string, [number, number]> = { 'im0001a.png': [40, 90], 'im0002a.png': [150, 200] };
    for (const [name, [x0, x1]] of Object.entries(bands)) {
      const m = new Uint8Array(N * N).map((_, i) => (i % N >= x0 && i % N <= x1 ? 0 : 255));
      await writeImage(join(masks, name), N, N, m);
    }
    const out = join(dir!, 'moving.piv');
    const args = ['piv', images, '-o', out, '-q', '--set', `mask.folder=${masks}`, '--set', 'multipass.number=2', '--set', 'piv0.shape_crop_im0=32'];
    const r = await runCli(args);
    assert.equal(r.code, 0, describeRun(args, r));
    for (const [name, [x0, x1]] of Object.entries(bands)) {
      checkFinalBand(await readPivFile(join(out, `piv_${name.slice(2, 6)}ab.h5`)), x0, x1, name);
    }
    // A mask of another size: refused before any pair, naming the file and the parameter.
    await writeImage(join(masks, 'im0001a.png'), 100, 80, new Uint8Array(8000).fill(1));
    const bad = await runCli([...args.slice(0, 3), join(dir!, 'bad.piv'), ...args.slice(4)]);
    assert.equal(bad.code, 2, describeRun(args, bad));
    assert.match(bad.stderr, /The mask .*moving-masks\/im0001a\.png is 100x80 but the images \(e\.g\. im0001a\.png\) are 256x256 \(mask\.folder\)/);
  });

  it('mask.folder: a missing mask fails its pair, naming the file', async () => {
    const { pair } = uniformPair(3, 64);
    await mkdir(join(dir!, 'empty'));
    const masker = (await pairMasker(params({ 'mask.folder': join(dir!, 'empty') })))!;
    await assert.rejects(masker(pair), /No mask .*empty\/a\.png \(mask\.folder\) for the image a\.png/);
    await assert.rejects(pairMasker(params({ 'mask.folder': join(dir!, 'nowhere') })), /Expected a folder of mask images for mask\.folder but .*nowhere is not one/);
  });

  it('mask.module: a mask per pair from a user module; one that throws or returns the wrong shape names the module and the image', async () => {
    const module = join(dir!, 'band.mjs');
    await writeFile(module, [
      '// Masks a band of columns whose place depends on the image name.',
      'export default function band(image, name) {',
      "  if (name === 'boom.png') throw new Error('boom');",
      "  if (name === 'short.png') return new Uint8Array(10);",
      "  const x0 = name === 'a.png' ? 100 : 30;",
      '  const m = new Uint8Array(image.width * image.height).fill(1);',
      '  for (let i = 0; i < m.length; i++) if (i % image.width >= x0 && i % image.width <= x0 + 50) m[i] = 0;',
      '  return { data: m, width: image.width, height: image.height };',
      '}',
    ].join('\n'));
    const p = params({ 'piv0.shape_crop_im0': 32, 'multipass.number': 2, 'mask.module': module });
    const masker = (await pairMasker(p))!;
    const { pair } = uniformPair();
    const work = new WorkPIV(p);
    checkFinalBand(await work.calcul(await masker(pair)), 100, 150, 'module a.png');
    checkFinalBand(await work.calcul(await masker({ ...pair, names: ['c.png', 'd.png'] })), 30, 80, 'module c.png');
    await assert.rejects(masker({ ...pair, names: ['boom.png', 'x.png'] }), /mask\.module .*band\.mjs failed on boom\.png: boom/);
    await assert.rejects(masker({ ...pair, names: ['short.png', 'x.png'] }),
      /mask\.module .*band\.mjs on short\.png: expected a mask \{data, width, height\} or an array of 256x256 = 65536 values \(the image's size\) but received 10 values/);
  });
});
