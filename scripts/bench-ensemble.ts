/**
 * Ensemble correlation against the time mean of per-pair fields, on a synthetic steady
 * field with sparse seeding (about one particle per 16 px window): writes a series, runs
 * `ensemble`, `piv` then `mean` on it as the CLI does, and prints the RMS error of each
 * mean field against the truth, with the time of both routes. Prints figures; not a test.
 *   node dist/scripts/bench-ensemble.js [--size 512] [--pairs 40] [--density 0.0039] [--case vortex]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runSynth } from '../cli/synth.js';
import { runTopology } from '../engine/run_series.js';
import { readPivFile } from '../io/pivfile.js';
import { readFloat32, withH5File } from '../io/h5.js';
import { SYNTH_CASES } from '../works/synth/cases.js';
import { makeField, type DisplacementField } from '../works/synth/fields.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '512' },
    pairs: { type: 'string', default: '40' },
    density: { type: 'string', default: String(1 / 256) },
    case: { type: 'string', default: 'vortex' },
    workers: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const size = Number(values.size);
const pairs = Number(values.pairs);
const density = Number(values.density);
const caseName = values.case!;
const workers = values.workers ? Number(values.workers) : undefined;
const sets = ['piv0.shape_crop_im0=64', 'multipass.number=3'];

/** RMS per component of a field on points (x, y) against the truth, NaN values left out; and how many were NaN. */
function rmsAgainst(field: DisplacementField, xs: Float32Array, ys: Float32Array, dx: Float32Array, dy: Float32Array): { rms: number; nan: number } {
  let se = 0;
  let n = 0;
  let nan = 0;
  for (let k = 0; k < xs.length; k++) {
    if (Number.isNaN(dx[k]) || Number.isNaN(dy[k])) {
      nan++;
      continue;
    }
    const [tx, ty] = field(xs[k]!, ys[k]!);
    se += (dx[k]! - tx) ** 2 + (dy[k]! - ty) ** 2;
    n++;
  }
  return { rms: Math.sqrt(se / (2 * n)), nan };
}

const dir = mkdtempSync(join(tmpdir(), 'fluidimage-bench-ensemble-'));
try {
  const images = join(dir, 'im');
  await runSynth({ caseName, output: images, size: [size], pairs, density, diameter: 2.5, seed: 3, format: 'png' });
  const field = makeField(SYNTH_CASES[caseName]!.field, [size, size]);
  const options = { path: images, set: sets, executor: 'local' as const, quiet: true, workers };
  let t0 = performance.now();
  await runTopology('ensemble', { ...options, output: join(dir, 'ens') });
  const tEnsemble = (performance.now() - t0) / 1000;
  t0 = performance.now();
  await runTopology('piv', { ...options, output: join(dir, 'piv') });
  const tPiv = (performance.now() - t0) / 1000;
  await runTopology('mean', { path: join(dir, 'piv'), output: join(dir, 'mean.h5'), quiet: true, workers, executor: 'local' });

  const ens = await readPivFile(join(dir, 'ens', 'ensemble.h5'));
  const f = ens.passes[ens.passes.length - 1]!.final!;
  const e = rmsAgainst(field, f.ixvecs_final, f.iyvecs_final, f.deltaxs_final, f.deltays_final);
  const m = await withH5File(join(dir, 'mean.h5'), 'r', (h) => ({
    x: readFloat32(h, 'ixvecs')!, y: readFloat32(h, 'iyvecs')!, dx: readFloat32(h, 'mean_dx')!, dy: readFloat32(h, 'mean_dy')!,
  }));
  const t = rmsAgainst(field, m.x, m.y, m.dx, m.dy);
  console.log(`Ensemble correlation vs time mean of per-pair PIV: ${caseName}, ${pairs} pairs of ${size}x${size}, ` +
    `${density.toFixed(4)} particles/px (${(density * 256).toFixed(2)} per 16x16 window), windows 64-32-16, ${workers ?? 'all'} worker(s)`);
  console.log(`  ensemble:           RMS error ${e.rms.toFixed(4)} px (per component, final field, ${e.nan} NaN of ${f.deltaxs_final.length}); ${tEnsemble.toFixed(2)} s`);
  console.log(`  mean of pair fields: RMS error ${t.rms.toFixed(4)} px (${t.nan} NaN); piv ${tPiv.toFixed(2)} s`);
  console.log(`  ratio ensemble/mean: ${(e.rms / t.rms).toFixed(2)} (target <= 0.5; ensemble target <= 0.03 px); time ensemble/piv: ${(tEnsemble / tPiv).toFixed(2)} (target <= 1.2)`);
} finally {
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}
