/**
 * Per-vector uncertainty (piv0.uncertainty): datasets, calibration against the true error of
 * synthetic pairs, the uncertainty of the mean, and what view, export and info make of it.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportFile } from '../export/formats.js';
import { readFloat32, withH5File } from '../io/h5.js';
import { readPivFile, writePivFile } from '../io/pivfile.js';
import { native } from '../native.js';
import { applySets } from '../params/load.js';
import { pivSchema } from '../params/piv.js';
import { defaults } from '../params/schema.js';
import { renderFigure } from '../view/figure.js';
import { resultJson, withoutVectors } from '../viewer/results.js';
import { FieldSums } from '../works/mean_fields.js';
import type { PivResult } from '../results/piv_result.js';
import { WorkPIV } from '../works/piv/work.js';
import { SYNTH_CASES } from '../works/synth/cases.js';
import { makeField, type DisplacementField } from '../works/synth/fields.js';
import { renderPair, rng } from '../works/synth/particles.js';
import { makeTempDir, removeDir, runCli } from './helpers/cli.js';

const SIZE = 320;
const META = { program: 'test', version: '0' };

function paramsWith(...sets: string[]) {
  return applySets(pivSchema, defaults(pivSchema), ['piv0.shape_crop_im0=64', 'multipass.number=3', ...sets]);
}

async function pivOf(caseName: string, sets: string[] = ['piv0.uncertainty=true'], seed = 3): Promise<{ result: PivResult; field: DisplacementField }> {
  const c = SYNTH_CASES[caseName];
  const shape: [number, number] = [SIZE, SIZE];
  const field = makeField(c.field, shape);
  const r = renderPair(field, { shape, density: 0.035, diameter: 2.5, bitDepth: c.bitDepth, noise: c.noise, seed });
  const result = await new WorkPIV(paramsWith(...sets)).calcul({
    im0: Float32Array.from(r.im0), im1: Float32Array.from(r.im1), height: SIZE, width: SIZE, names: ['a.png', 'b.png'], paths: ['a.png', 'b.png'],
  });
  return { result, field };
}

/** Share of components with |error| <= sigma and RMS(sigma)/RMS(error), over the valid vectors. */
function calibration(result: PivResult, field: DisplacementField): { n: number; coverage: number; ratio: number } {
  const last = result.passes[result.passes.length - 1];
  const sig = [last.extra!.uncertainty_x, last.extra!.uncertainty_y];
  const val = [last.deltaxs, last.deltays];
  let n = 0;
  let within = 0;
  let s2 = 0;
  let e2 = 0;
  for (let k = 0; k < last.xs.length; k++) {
    const truth = field(last.xs[k], last.ys[k]);
    for (let c = 0; c < 2; c++) {
      const e = val[c][k] - truth[c];
      const s = sig[c][k];
      if (!Number.isFinite(e) || !Number.isFinite(s)) continue;
      n++;
      if (Math.abs(e) <= s) within++;
      s2 += s * s;
      e2 += e * e;
    }
  }
  return { n, coverage: within / n, ratio: Math.sqrt(s2 / e2) };
}

describe('per-vector uncertainty (correlation statistics)', function () {
  this.timeout(60_000);
  let uniform: { result: PivResult; field: DisplacementField };
  let dir: string;

  before(async () => {
    uniform = await pivOf('uniform');
    dir = await makeTempDir('uncertainty');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('adds uncertainty_x/_y (pass) and uncertainty_x_final/_y_final (final grid) to the last pass, NaN where the vector is NaN', () => {
    const { passes } = uniform.result;
    const last = passes[passes.length - 1];
    const n = last.xs.length;
    for (const key of ['uncertainty_x', 'uncertainty_y', 'uncertainty_x_final', 'uncertainty_y_final']) {
      assert.equal(last.extra?.[key]?.length, n, key);
    }
    for (const p of passes.slice(0, -1)) assert.equal(p.extra?.uncertainty_x, undefined);
    let finite = 0;
    for (let k = 0; k < n; k++) {
      if (Number.isNaN(last.deltaxs[k])) assert.ok(Number.isNaN(last.extra!.uncertainty_x[k]) && Number.isNaN(last.extra!.uncertainty_x_final[k]));
      if (Number.isFinite(last.extra!.uncertainty_x[k])) {
        finite++;
        assert.ok(last.extra!.uncertainty_x[k] > 0 && last.extra!.uncertainty_x[k] < 1, `sigma ${last.extra!.uncertainty_x[k]}`);
      }
    }
    assert.ok(finite > 0.95 * n, `${finite} of ${n} vectors have an uncertainty`);
  });

  it('is off by default (no datasets, results otherwise identical)', async () => {
    const off = await pivOf('uniform', []);
    const a = off.result.passes[2];
    const b = uniform.result.passes[2];
    assert.equal(a.extra?.uncertainty_x, undefined);
    assert.equal(a.extra?.uncertainty_x_final, undefined);
    assert.deepEqual(a.deltaxs, b.deltaxs);
    assert.deepEqual(a.final!.deltaxs_final, b.final!.deltaxs_final);
  });

  it('is calibrated on synthetic pairs: about 68% of the true errors within 1 sigma, RMS(sigma) ~ RMS(error)', async () => {
    for (const [name, run] of [['uniform', uniform], ['vortex', await pivOf('vortex')], ['shear128', await pivOf('shear128')], ['noisy16', await pivOf('noisy16')]] as const) {
      const c = calibration(run.result, run.field);
      assert.ok(c.n > 1000, `${name}: ${c.n} components`);
      assert.ok(c.coverage > 0.5 && c.coverage < 0.85, `${name}: coverage ${c.coverage}`);
      assert.ok(c.ratio > 0.6 && c.ratio < 1.6, `${name}: RMS(sigma)/RMS(error) ${c.ratio}`);
    }
  });

  it('grows with the image noise', async () => {
    const c = SYNTH_CASES.uniform;
    const shape: [number, number] = [SIZE, SIZE];
    const field = makeField(c.field, shape);
    const medianSigma = async (noise: number) => {
      const r = renderPair(field, { shape, density: 0.035, diameter: 2.5, bitDepth: 8, noise, seed: 5 });
      const res = await new WorkPIV(paramsWith('piv0.uncertainty=true')).calcul({
        im0: Float32Array.from(r.im0), im1: Float32Array.from(r.im1), height: SIZE, width: SIZE, names: ['a', 'b'], paths: ['a', 'b'],
      });
      const s = Array.from(res.passes[2].extra!.uncertainty_x).filter(Number.isFinite).sort((x, y) => x - y);
      return s[s.length >> 1];
    };
    const quiet = await medianSigma(0.005);
    const loud = await medianSigma(0.08);
    assert.ok(loud > 2 * quiet, `median sigma ${quiet} (noise 0.5%) vs ${loud} (noise 8%)`);
  });

  it('native call: one per pass, arguments checked with precise messages', async () => {
    const im = new Float32Array(64 * 64).fill(1);
    const starts = new Int32Array([0, 0, 16, 16]);
    const base = { im0: im, im1: im, height: 64, width: 64, h: 16, w: 16, starts0: starts, starts1: starts, rx: new Float32Array(2), ry: new Float32Array(2) };
    await assert.rejects(async () => native().correlationUncertainty({ ...base, rx: new Float32Array(3) }), /Expected one value per window = 2 elements for rx/);
    await assert.rejects(async () => native().correlationUncertainty({ ...base, h: 2 }), /Expected sizes between 4 and 4096 pixels for h, w/);
    await assert.rejects(async () => native().correlationUncertainty({ ...base, starts1: new Int32Array(2) }), /Expected the same length as starts0 for starts1/);
    // A uniform image has no texture: no peak, no uncertainty.
    const flat = await native().correlationUncertainty(base);
    assert.ok(Number.isNaN(flat.sigmaX[0]) && Number.isNaN(flat.sigmaY[1]));
  });

  it('native call: the statistics\' own peak sits at the displacement left between the windows (sign and axes)', async () => {
    const shape: [number, number] = [128, 128];
    const r = renderPair(makeField({ kind: 'uniform', dx: 0.3, dy: -1.2 }, shape), { shape, density: 0.05, diameter: 2.5, bitDepth: 16, noise: 0, seed: 2 });
    const starts = new Int32Array([32, 32, 48, 64, 64, 40]);
    const args = {
      im0: Float32Array.from(r.im0), im1: Float32Array.from(r.im1), height: 128, width: 128, h: 32, w: 32, starts0: starts, starts1: starts,
      rx: new Float32Array(3), ry: new Float32Array(3).fill(-1.2),
    };
    const out = await native().correlationUncertainty(args);
    for (let k = 0; k < 3; k++) {
      // Given (0, -1.2), taken around lag (0, -1): the peak at (0.3, -1.2), offsets (0.3, 0).
      assert.ok(Math.abs(out.offsetX[k] - 0.3) < 0.06, `offset x ${out.offsetX[k]}`);
      assert.ok(Math.abs(out.offsetY[k]) < 0.06, `offset y ${out.offsetY[k]}`);
      assert.ok(out.sigmaX[k] > 0 && out.sigmaX[k] < 0.2 && out.sigmaY[k] > 0 && out.sigmaY[k] < 0.2, `${out.sigmaX[k]} ${out.sigmaY[k]}`);
    }
    // Told the truth, the windows agree: the offsets vanish.
    const told = await native().correlationUncertainty({ ...args, rx: new Float32Array(3).fill(0.3) });
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(told.offsetX[k]) < 0.06, `offset x ${told.offsetX[k]}`);
  });

  it('mean: uncertainty_mean_x/_y from the scatter and the per-vector sigmas, shrinking as 1/sqrt(N)', () => {
    const n = 50;
    const rand = rng(9);
    const gauss = () => Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
    const sigma = new Float32Array(n).fill(0.1);
    const meanUnc = (count: number) => {
      const sums = new FieldSums(n);
      for (let f = 0; f < count; f++) {
        sums.add(Float32Array.from({ length: n }, () => 2 + 0.1 * gauss()), Float32Array.from({ length: n }, () => -1 + 0.1 * gauss()), sigma, sigma);
      }
      const r = sums.result();
      return r.uncertainty_mean_x.reduce((a, b) => a + b, 0) / n;
    };
    const u4 = meanUnc(4);
    const u64 = meanUnc(64);
    assert.ok(Math.abs(u4 - 0.1 / 2) < 0.015, `N=4: ${u4}`);
    assert.ok(Math.abs(u64 - 0.1 / 8) < 0.003, `N=64: ${u64}`);
    // One field: only its sigma; fields without sigma: the scatter alone.
    const one = new FieldSums(1);
    one.add([1], [1], [0.2], [0.3]);
    assert.ok(Math.abs(one.result().uncertainty_mean_y[0] - 0.3) < 1e-6);
    const bare = new FieldSums(1);
    bare.add([1], [0]);
    bare.add([3], [0]);
    assert.ok(Math.abs(bare.result().uncertainty_mean_x[0] - Math.sqrt(2 / 2)) < 1e-6);
  });

  it('mean DIR.piv writes uncertainty_mean_x/_y from the results\' uncertainty_*_final', async () => {
    const sub = join(dir, 'series.piv');
    await mkdir(sub);
    const last = uniform.result.passes[2];
    const n = last.xs.length;
    // Three copies of the field, shifted by 0, 0.01, 0.02 px: scatter 0.01 px, below the sigmas.
    for (const k of [0, 1, 2]) {
      const r = structuredClone(uniform.result);
      const f = r.passes[2].final!;
      f.deltaxs_final = f.deltaxs_final.map((v) => v + 0.01 * k);
      await writePivFile(join(sub, `piv_0${k}-0${k + 1}.h5`), r, META);
    }
    const run = await runCli(['mean', sub, '-o', join(dir, 'mean.h5')]);
    assert.equal(run.code, 0, run.stderr);
    const m = await withH5File(join(dir, 'mean.h5'), 'r', (f) => ({ ux: readFloat32(f, 'uncertainty_mean_x')!, uy: readFloat32(f, 'uncertainty_mean_y')! }));
    assert.equal(m.ux.length, n);
    const k = last.extra!.uncertainty_x_final.findIndex((v) => v > 0.015);
    assert.ok(k >= 0);
    // Scatter below the sigmas: the mean sigma over sqrt(3).
    assert.ok(Math.abs(m.ux[k] - last.extra!.uncertainty_x_final[k] / Math.sqrt(3)) < 1e-6, `${m.ux[k]}`);
    assert.ok(Math.abs(m.uy[k] - last.extra!.uncertainty_y_final[k] / Math.sqrt(3)) < 1e-6, `${m.uy[k]}`);
  });

  it('is written and read back; info prints the medians; export has the columns; view draws it', async () => {
    const file = join(dir, 'piv_01-02.h5');
    await writePivFile(file, uniform.result, META);
    const back = await readPivFile(file);
    assert.deepEqual(back.passes[2].extra!.uncertainty_x_final, uniform.result.passes[2].extra!.uncertainty_x_final);
    const info = await runCli(['info', file]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /uncertainty \(px, 1 sigma\): median x 0\.\d+, y 0\.\d+; final grid: median x 0\.\d+/);
    await exportFile(file, join(dir, 'out.csv'), 'csv');
    const csv = (await readFile(join(dir, 'out.csv'), 'utf8')).split('\n');
    assert.ok(csv.includes('x,y,dx,dy,valid,correl,uncertainty_x,uncertainty_y'), csv.slice(0, 8).join('\n'));
    assert.ok(csv.some((l) => /^# uncertainty_x, uncertainty_y: uncertainty of dx, dy/.test(l)));
    await exportFile(file, join(dir, 'final.vtk'), 'vtk', { final: true });
    assert.match(await readFile(join(dir, 'final.vtk'), 'utf8'), /SCALARS uncertainty_y float 1/);
    const figure = await renderFigure(back, undefined, { background: 'uncertainty' });
    assert.ok(figure.clim !== undefined && figure.clim[0] === 0 && figure.clim[1] > 0.005 && figure.clim[1] < 0.5, String(figure.clim));
    const view = await runCli(['view', file, '-o', join(dir, 'u.png'), '--background', 'uncertainty', '--quiet']);
    assert.equal(view.code, 0, view.stderr);
    // The viewer: the clicked vector's sigmas, the background without the vectors.
    const json = resultJson('piv_01-02.h5', back);
    assert.equal(json.sigma_x?.length, back.passes[2].xs.length);
    assert.deepEqual((await renderFigure(withoutVectors(back), undefined, { background: 'uncertainty' })).clim, figure.clim);
    // A result without the datasets: a clear refusal.
    const plain = await pivOf('uniform', []);
    await assert.rejects(renderFigure(plain.result, undefined, { background: 'uncertainty' }), /no per-vector uncertainty in this result/);
  });
});
