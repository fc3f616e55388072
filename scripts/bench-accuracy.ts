/**
 * Accuracy benchmark (`npm run bench:accuracy`): synthetic 1024x1024 pairs with known
 * displacement fields, PIV with 3 passes 64-32-16 px and 50% overlap, errors of the
 * last pass against the truth at the vector positions. Prints figures; not a test.
 *
 * Options: --size N (default 1024), --cases a,b,... , --set key=value (PIV parameters).
 */
import { parseArgs } from 'node:util';
import { applySets } from '../params/load.js';
import { pivSchema } from '../params/piv.js';
import { defaults } from '../params/schema.js';
import type { PivResult } from '../results/piv_result.js';
import { WorkPIV } from '../works/piv/work.js';
import { SYNTH_CASES, type SynthCase } from '../works/synth/cases.js';
import { makeField, type DisplacementField } from '../works/synth/fields.js';
import { renderPair } from '../works/synth/particles.js';

/** The synthetic cases plus one of low seeding (a few particles per final window). */
const CASES: Record<string, SynthCase & { density?: number }> = {
  ...SYNTH_CASES,
  lowseed: { field: { kind: 'uniform', dx: 3.3, dy: -1.7 }, bitDepth: 8, noise: 0.01, density: 0.012, doc: 'uniform shift, 0.012 particles per pixel' },
};

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1024' },
    cases: { type: 'string', default: Object.keys(CASES).join(',') },
    set: { type: 'string', multiple: true, default: [] },
  },
});
const size = Number(values.size);
const params = applySets(pivSchema, defaults(pivSchema), [
  'piv0.shape_crop_im0=64', 'multipass.number=3', 'piv0.grid.overlap=0.5', 'piv0.uncertainty=true', ...(values.set ?? []),
]);

interface Errors { n: number; total: number; rms: number; biasX: number; biasY: number; over05: number; frac: number[]; rmsFinal: number; unc?: Calibration; uncFinal?: Calibration }

/** How the uncertainty matches the error: share of components within 1 sigma, RMS(sigma)/RMS(error). */
interface Calibration { n: number; coverage: number; ratio: number; medianSigma: number }

/**
 * Calibration of the per-vector uncertainty of the last pass (uncertainty_x/_y against the
 * true error of each component of the valid vectors), and on the final grid.
 */
function calibrationOf(sigmas: [ArrayLike<number>, ArrayLike<number>], values: [ArrayLike<number>, ArrayLike<number>],
  xs: ArrayLike<number>, ys: ArrayLike<number>, field: DisplacementField): Calibration | undefined {
  let n = 0;
  let within = 0;
  let s2 = 0;
  let e2 = 0;
  const all: number[] = [];
  for (let k = 0; k < xs.length; k++) {
    const truth = field(xs[k], ys[k]);
    for (let c = 0; c < 2; c++) {
      const s = sigmas[c][k];
      const e = values[c][k] - truth[c];
      if (!Number.isFinite(s) || !Number.isFinite(e)) continue;
      n++;
      if (Math.abs(e) <= s) within++;
      s2 += s * s;
      e2 += e * e;
      all.push(s);
    }
  }
  if (n === 0) return undefined;
  all.sort((a, b) => a - b);
  return { n, coverage: within / n, ratio: Math.sqrt(s2 / e2), medianSigma: all[Math.floor(all.length / 2)] };
}

/** RMS error of the final field (what users take away: no NaN, on the final grid). */
function finalRms(result: PivResult, field: DisplacementField): number {
  const f = result.passes[result.passes.length - 1].final!;
  let se = 0;
  for (let k = 0; k < f.deltaxs_final.length; k++) {
    const [tx, ty] = field(f.ixvecs_final[k], f.iyvecs_final[k]);
    se += (f.deltaxs_final[k] - tx) ** 2 + (f.deltays_final[k] - ty) ** 2;
  }
  return Math.sqrt(se / (2 * f.deltaxs_final.length));
}

/** Errors of the valid vectors of the last pass; `frac` collects fractional parts of dx. */
function errorsOf(result: PivResult, field: DisplacementField): Errors {
  const last = result.passes[result.passes.length - 1];
  let se = 0;
  let bx = 0;
  let by = 0;
  let n = 0;
  let over = 0;
  const frac: number[] = [];
  for (let k = 0; k < last.xs.length; k++) {
    const dx = last.deltaxs[k];
    const dy = last.deltays[k];
    if (Number.isNaN(dx) || Number.isNaN(dy)) continue;
    const [tx, ty] = field(last.xs[k], last.ys[k]);
    const ex = dx - tx;
    const ey = dy - ty;
    se += ex * ex + ey * ey;
    bx += ex;
    by += ey;
    if (Math.hypot(ex, ey) > 0.5) over++;
    frac.push(dx - Math.floor(dx));
    n++;
  }
  const ux = last.extra?.uncertainty_x;
  const uy = last.extra?.uncertainty_y;
  const unc = ux && uy ? calibrationOf([ux, uy], [last.deltaxs, last.deltays], last.xs, last.ys, field) : undefined;
  const f = last.final;
  const fx = last.extra?.uncertainty_x_final;
  const fy = last.extra?.uncertainty_y_final;
  const uncFinal = f && fx && fy ? calibrationOf([fx, fy], [f.deltaxs_final, f.deltays_final], f.ixvecs_final, f.iyvecs_final, field) : undefined;
  return { n, total: last.xs.length, rms: Math.sqrt(se / (2 * n)), biasX: bx / n, biasY: by / n, over05: over / n, frac,
    rmsFinal: finalRms(result, field), unc, uncFinal };
}

const pad = (s: string | number, w: number) => String(s).padStart(w);
console.log(`Accuracy on ${size}x${size} synthetic pairs (Gaussian particles d=2.5 px, 0.035 ppp), ` +
  `PIV ${(params.piv0 as { shape_crop_im0: number }).shape_crop_im0} px x ${(params.multipass as { number: number }).number} passes, ` +
  `deform=${String((params.multipass as { deform: boolean }).deform)}`);
console.log(['case', 'passes', 'vectors', 'valid', 'RMS (px)', 'bias x', 'bias y', '>0.5px', 'final RMS', 's/pair', 'sigma med', 'in 1sigma', 'RMSs/RMSe', 'final in']
  .map((h, i) => pad(h, i === 0 ? 14 : 9)).join(' '));
const all: Record<string, unknown> = {};
for (const name of values.cases!.split(',')) {
  const c = CASES[name];
  if (!c) throw new Error(`unknown case ${name}; known: ${Object.keys(CASES).join(', ')}`);
  const shape: [number, number] = [size, size];
  const field = makeField(c.field, shape);
  const r = renderPair(field, { shape, density: c.density ?? 0.035, diameter: 2.5, bitDepth: c.bitDepth, noise: c.noise, seed: 7 });
  const pair = {
    im0: Float32Array.from(r.im0), im1: Float32Array.from(r.im1), height: size, width: size,
    names: ['a', 'b'] as [string, string], paths: ['a', 'b'] as [string, string],
  };
  const work = new WorkPIV(params);
  await work.calcul(pair); // warm-up: FFTW plans
  const t0 = performance.now();
  const result = await work.calcul(pair);
  const seconds = (performance.now() - t0) / 1000;
  const e = errorsOf(result, field);
  all[name] = { ...e, frac: undefined, seconds };
  console.log([pad(name, 14), pad(result.passes.length, 9), pad(e.total, 9), pad(`${((100 * e.n) / e.total).toFixed(1)}%`, 9),
    pad(e.rms.toFixed(4), 9), pad(e.biasX.toFixed(4), 9), pad(e.biasY.toFixed(4), 9),
    pad(`${(100 * e.over05).toFixed(2)}%`, 9), pad(e.rmsFinal.toFixed(4), 9), pad(seconds.toFixed(3), 9),
    pad(e.unc ? e.unc.medianSigma.toFixed(4) : '-', 9), pad(e.unc ? `${(100 * e.unc.coverage).toFixed(1)}%` : '-', 9),
    pad(e.unc ? e.unc.ratio.toFixed(2) : '-', 9), pad(e.uncFinal ? `${(100 * e.uncFinal.coverage).toFixed(1)}%` : '-', 9)].join(' '));
}

console.log('RMS: per component, over the valid vectors of the last pass; final RMS: per component over the final field\n' +
  '(TPS-smoothed and interpolated to integer positions, rejected vectors filled); bias: mean error of the valid vectors.\n' +
  'Uncertainty (piv0.uncertainty, uncertainty_x/_y of the last pass): sigma med: median sigma (px); in 1sigma: share of the\n' +
  'components of the valid vectors whose true error is within 1 sigma (0.68 for a calibrated Gaussian); RMSs/RMSe: RMS(sigma)/RMS(error);\n' +
  'final in: the same share on the final grid (uncertainty_*_final against the TPS-smoothed final field).');

// Peak locking: on a smooth range of displacements (the vortex), the fractional parts of
// dx should be uniform; a histogram piling up near 0 and 1 means locking on integers.
{
  const shape: [number, number] = [size, size];
  const field = makeField({ kind: 'vortex', peak: 6 }, shape);
  const r = renderPair(field, { shape, density: 0.035, diameter: 2.5, bitDepth: 8, noise: 0.01, seed: 11 });
  const result = await new WorkPIV(params).calcul({
    im0: Float32Array.from(r.im0), im1: Float32Array.from(r.im1), height: size, width: size,
    names: ['a', 'b'], paths: ['a', 'b'],
  });
  const { frac } = errorsOf(result, field);
  const bins = new Array(10).fill(0);
  for (const f of frac) bins[Math.min(9, Math.floor(f * 10))]++;
  const expected = frac.length / 10;
  const dev = Math.max(...bins.map((b) => Math.abs(b - expected) / expected));
  console.log(`\npeak locking (vortex, fractional part of dx in 10 bins, ${frac.length} vectors; uniform = ${expected.toFixed(0)} each):`);
  console.log('  ' + bins.map((b) => pad(b, 6)).join(''));
  console.log(`  largest deviation from uniform: ${(100 * dev).toFixed(1)}%`);
  all.peakLocking = { bins, maxDeviation: dev };
}
console.log(JSON.stringify({ size, results: all }));
