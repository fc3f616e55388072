/**
 * `fluidimage ensemble`: ensemble correlation on a sparse synthetic series of one steady
 * field (known displacement) against the time mean of per-pair PIV, under mpirun against
 * the local result, and its bad inputs and interrupted runs.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readFloat32, readNumberAttr, readStrings, withH5File } from '../io/h5.js';
import { readPivFile } from '../io/pivfile.js';
import { writeImage } from '../io/images.js';
import { native } from '../native.js';
import { SYNTH_CASES } from '../works/synth/cases.js';
import { makeField, type DisplacementField } from '../works/synth/fields.js';
import type { PivResult } from '../results/piv_result.js';
import { describeRun, HAS_MPIRUN, launch, launchMpirun, listDir, makeTempDir, removeDir, RUN_JS, runCli } from './helpers/cli.js';

const SIZE = 384;
const PAIRS = 32;
/** About one particle per 16x16 window: too few for single-pair PIV with 16 px windows. */
const DENSITY = 1 / 256;
const PASSES = ['--set', 'piv0.shape_crop_im0=64', '--set', 'multipass.number=3'];

/** RMS per component of the final field against the truth. */
function finalRms(r: PivResult, field: DisplacementField): number {
  const f = r.passes[r.passes.length - 1]!.final!;
  let se = 0;
  for (let k = 0; k < f.deltaxs_final.length; k++) {
    const [tx, ty] = field(f.ixvecs_final[k]!, f.iyvecs_final[k]!);
    se += (f.deltaxs_final[k]! - tx) ** 2 + (f.deltays_final[k]! - ty) ** 2;
  }
  return Math.sqrt(se / (2 * f.deltaxs_final.length));
}

/** Largest difference between the vectors of two results (every pass and the final field). */
function maxDifference(a: PivResult, b: PivResult): number {
  let m = 0;
  a.passes.forEach((p, k) => {
    const q = b.passes[k]!;
    for (const key of ['deltaxs', 'deltays'] as const) {
      p[key].forEach((v, i) => {
        const w = q[key][i]!;
        // A vector rejected in one result must be rejected in the other.
        m = Math.max(m, Number.isNaN(v) && Number.isNaN(w) ? 0 : Number.isNaN(v) !== Number.isNaN(w) ? Infinity : Math.abs(v - w));
      });
    }
  });
  const fa = a.passes[a.passes.length - 1]!.final!;
  const fb = b.passes[b.passes.length - 1]!.final!;
  fa.deltaxs_final.forEach((v, i) => (m = Math.max(m, Math.abs(v - fb.deltaxs_final[i]!), Math.abs(fa.deltays_final[i]! - fb.deltays_final[i]!))));
  return m;
}

describe('fluidimage ensemble (ensemble correlation)', function () {
  this.timeout(180_000);
  let tmp: string;
  let images: string;
  const field = makeField(SYNTH_CASES.vortex!.field, [SIZE, SIZE]);

  before(async () => {
    tmp = await makeTempDir('ensemble');
    images = join(tmp, 'im');
    const s = await runCli(['synth', 'vortex', '-o', images, '--pairs', String(PAIRS), '--size', String(SIZE), '--density', String(DENSITY), '--seed', '5']);
    assert.equal(s.code, 0, s.stderr);
  });
  after(() => removeDir(tmp));

  it('on sparse seeding: RMS error <= 0.03 px and at most half that of the time mean of per-pair fields; the pairs recorded', async () => {
    const out = join(tmp, 'im.ensemble');
    const args = ['ensemble', images, ...PASSES];
    const r = await runCli(args);
    assert.equal(r.code, 0, describeRun(args, r));
    assert.equal(r.stdout.trim(), out);
    const ens = await readPivFile(join(out, 'ensemble.h5'));
    assert.equal(ens.passes.length, 3);
    const eEnsemble = finalRms(ens, field);
    const recorded = await withH5File(join(out, 'ensemble.h5'), 'r', (f) => ({
      pairs: readNumberAttr(f.get('ensemble') as never, 'nb_pairs'), a: readStrings(f, 'ensemble/names_a'), b: readStrings(f, 'ensemble/names_b'),
    }));
    assert.equal(recorded.pairs, PAIRS);
    assert.deepEqual(recorded.a?.slice(0, 2), ['im0001a.png', 'im0002a.png']);
    assert.equal(recorded.b?.length, PAIRS);
    // Progress counts pair-sweeps: the monitor of a finished job says all of them are done.
    const monitor = await runCli(['monitor', out]);
    assert.match(monitor.stdout, new RegExp(`items: ${3 * PAIRS}/${3 * PAIRS} done`), monitor.stdout);
    const info = await runCli(['info', join(out, 'ensemble.h5')]);
    assert.match(info.stdout, new RegExp(`ensemble correlation of ${PAIRS} pairs \\(im0001a\\.png \\+ im0001b\\.png \\.\\.\\. im00${PAIRS}a\\.png`));

    const piv = await runCli(['piv', images, ...PASSES, '-o', join(tmp, 'piv'), '-q']);
    assert.equal(piv.code, 0, piv.stderr);
    const mean = await runCli(['mean', join(tmp, 'piv'), '-o', join(tmp, 'mean.h5'), '-q']);
    assert.equal(mean.code, 0, mean.stderr);
    const m = await withH5File(join(tmp, 'mean.h5'), 'r', (f) => ({
      x: readFloat32(f, 'ixvecs')!, y: readFloat32(f, 'iyvecs')!, dx: readFloat32(f, 'mean_dx')!, dy: readFloat32(f, 'mean_dy')!,
    }));
    let se = 0;
    for (let k = 0; k < m.x.length; k++) {
      const [tx, ty] = field(m.x[k]!, m.y[k]!);
      se += (m.dx[k]! - tx) ** 2 + (m.dy[k]! - ty) ** 2;
    }
    const eMean = Math.sqrt(se / (2 * m.x.length));
    assert.ok(eEnsemble <= 0.03, `ensemble RMS error ${eEnsemble.toFixed(4)} px > 0.03 px`);
    assert.ok(eEnsemble <= 0.5 * eMean, `ensemble RMS error ${eEnsemble.toFixed(4)} px is not at most half the time mean's ${eMean.toFixed(4)} px`);

    // complete: the result is there, nothing to do.
    const again = await runCli(args);
    assert.equal(again.code, 0, describeRun(args, again));
    assert.match(again.stderr, /nothing to do/);
  });

  it('under mpirun with 3 ranks: the field computed locally (to float32 rounding of the order of the sums)', async function () {
    if (!HAS_MPIRUN || !native().mpiAvailable()) {
      console.log('    (skipped: mpirun or the MPI build is missing; Debian: apt-get install openmpi-bin libopenmpi-dev)');
      this.skip();
    }
    const local = join(tmp, 'local');
    const l = await runCli(['ensemble', images, ...PASSES, '-o', local, '-q', '--workers', '2']);
    assert.equal(l.code, 0, l.stderr);
    const args = ['ensemble', images, ...PASSES, '-o', join(tmp, 'mpi')];
    const r = await launchMpirun(3, args, { timeoutMs: 120_000 }).done;
    assert.equal(r.code, 0, describeRun(args, r));
    assert.match(r.stderr, /executor mpi with 3 rank/);
    const a = await readPivFile(join(local, 'ensemble.h5'));
    const b = await readPivFile(join(tmp, 'mpi', 'ensemble.h5'));
    // Sums of float32 planes in another order: differences of the order of 1e-5 px.
    const d = maxDifference(a, b);
    assert.ok(d < 1e-4, `MPI and local ensembles differ by ${d} px`);
    assert.ok(finalRms(b, field) <= 0.03);
  });

  it('refuses a single pair and unknown parameters (exit 2, nothing written); a pair of another size is reported, the others summed (exit 1)', async () => {
    const one = join(tmp, 'one');
    await mkdir(one);
    for (const n of ['im0001a.png', 'im0001b.png']) await copyFile(join(images, n), join(one, n));
    const single = await runCli(['ensemble', one, '-o', join(tmp, 'one.out')]);
    assert.equal(single.code, 2, single.stderr);
    assert.match(single.stderr, /1 pair\(s\).*fluidimage piv/);
    assert.equal(existsSync(join(tmp, 'one.out')), false);
    const unknown = await runCli(['ensemble', images, '--set', 'piv0.no_such_key=3', '-o', join(tmp, 'unknown.out')]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /piv0\.no_such_key/);

    const odd = join(tmp, 'odd');
    await mkdir(odd);
    for (const n of (await listDir(images)).filter((f) => /^im000[1-6][ab]\.png$/.test(f))) await copyFile(join(images, n), join(odd, n));
    await writeImage(join(odd, 'im0007a.png'), 128, 128, new Uint8Array(128 * 128).fill(9));
    await writeImage(join(odd, 'im0007b.png'), 128, 128, new Uint8Array(128 * 128).fill(9));
    const args = ['ensemble', odd, ...PASSES, '-o', join(tmp, 'odd.out')];
    const r = await runCli(args);
    assert.equal(r.code, 1, describeRun(args, r));
    assert.match(r.stderr, /im0007a\.png.*(128x128|one size)/);
    const pairs = await withH5File(join(tmp, 'odd.out', 'ensemble.h5'), 'r', (f) => readStrings(f, 'ensemble/failed'));
    assert.equal(pairs?.length, 1);
  });

  it('stopped part-way (SIGUSR1): nothing written, exit 3; the rerun computes the whole ensemble', async () => {
    const out = join(tmp, 'stopped');
    // One worker and more passes: sweeps long enough to be stopped in the middle.
    const args = [RUN_JS, 'ensemble', images, '--set', 'piv0.shape_crop_im0=64', '--set', 'multipass.number=4', '--set', 'multipass.iterations_last=3', '-o', out, '--workers', '1'];
    const run = launch(process.execPath, args, { timeoutMs: 120_000 });
    let sent = false;
    run.child.stderr!.on('data', (b: Buffer) => {
      if (!sent && /sweep 1\/\d+: \d+ computed/.test(b.toString())) {
        sent = true;
        run.child.kill('SIGUSR1');
      }
    });
    const r = await run.done;
    assert.ok(sent, `the first sweep never ended:\n${r.stderr}`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /nothing written/);
    assert.deepEqual((await listDir(out)).filter((f) => !f.startsWith('.')), [], 'no result, no temporary file');
    const again = await runCli(args.slice(1));
    assert.equal(again.code, 0, again.stderr);
    assert.ok(existsSync(join(out, 'ensemble.h5')));
  });

  it('killed part-way (SIGKILL): no result, no temporary file; the rerun computes the whole ensemble', async () => {
    const out = join(tmp, 'killed');
    const args = [RUN_JS, 'ensemble', images, ...PASSES, '--set', 'multipass.iterations_last=2', '-o', out, '--workers', '1'];
    const run = launch(process.execPath, args, { timeoutMs: 120_000 });
    let killed = false;
    run.child.stderr!.on('data', (b: Buffer) => {
      if (!killed && /sweep 1\/\d+: \d+ computed/.test(b.toString())) {
        killed = true;
        run.child.kill('SIGKILL');
      }
    });
    const r = await run.done;
    assert.ok(killed, `the first sweep never ended:\n${r.stderr}`);
    assert.equal(r.signal, 'SIGKILL');
    assert.deepEqual((await listDir(out)).filter((f) => !f.startsWith('.') && !f.startsWith('job_')), [], 'no result, no temporary file');
    const again = await runCli(args.slice(1));
    assert.equal(again.code, 0, again.stderr);
    assert.ok(existsSync(join(out, 'ensemble.h5')));
  });

  it('`fluidimage params ensemble` prints the PIV parameters with the ensemble output', async () => {
    const r = await runCli(['params', 'ensemble']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /shape_crop_im0/);
    assert.match(r.stdout, /postfix: ensemble/);
  });
});
