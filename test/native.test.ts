import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { native, SUBPIX_CODES, VEC_CODES, type PassArgs } from '../native.js';
import { rng } from '../works/synth/particles.js';

/** Random image with values 0..255. */
function randomImage(ny: number, nx: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: ny * nx }, () => Math.floor(r() * 256));
}

/**
 * Direct (non-FFT) circular correlation of two windows, mean removed, normalised:
 * returns the best lag and its value, searching |lag| <= n/2 - 1 on each axis.
 */
function directCorrelation(im0: Float32Array, im1: Float32Array, nx: number, r0: number, c0: number,
  r1: number, c1: number, n: number): { dy: number; dx: number; value: number } {
  const win = (im: Float32Array, r: number, c: number) => {
    const w = new Float64Array(n * n);
    for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) w[j * n + i] = im[(r + j) * nx + c + i];
    const mean = w.reduce((s, v) => s + v, 0) / w.length;
    return w.map((v) => v - mean);
  };
  const a = win(im0, r0, c0);
  const b = win(im1, r1, c1);
  const ea = a.reduce((s, v) => s + v * v, 0);
  const eb = b.reduce((s, v) => s + v * v, 0);
  let best = { dy: 0, dx: 0, value: -Infinity };
  const L = n / 2 - 1;
  for (let ly = -L; ly <= L; ly++) for (let lx = -L; lx <= L; lx++) {
    let s = 0;
    for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) {
      s += a[j * n + i] * b[((j + ly + n) % n) * n + ((i + lx + n) % n)];
    }
    const v = s / Math.sqrt(ea * eb);
    if (v > best.value) best = { dy: ly, dx: lx, value: v };
  }
  return best;
}

function passArgs(im0: Float32Array, im1: Float32Array, ny: number, nx: number, n: number,
  starts0: number[], starts1: number[], extra: Partial<PassArgs> = {}): PassArgs {
  return {
    im0, im1, height: ny, width: nx, h0: n, w0: n, h1: n, w1: n,
    starts0: Int32Array.from(starts0), starts1: Int32Array.from(starts1), ...extra,
  };
}

describe('native correlation core', () => {
  it('matches a direct circular correlation (peak position and normalised value)', async () => {
    const ny = 64;
    const nx = 80;
    const n = 16;
    const im0 = randomImage(ny, nx, 1);
    // im1: im0 moved by (+2 rows, -3 columns) plus independent noise, so peaks are not trivial.
    const noise = randomImage(ny, nx, 2);
    const im1 = new Float32Array(ny * nx);
    for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
      const ys = Math.min(ny - 1, Math.max(0, y - 2));
      const xs = Math.min(nx - 1, Math.max(0, x + 3));
      im1[y * nx + x] = im0[ys * nx + xs] + 0.5 * noise[y * nx + x];
    }
    const starts = [8, 8, 20, 40, 40, 56, 30, 12];
    const out = await native().correlatePass(passArgs(im0, im1, ny, nx, n, starts, starts, { subpix: SUBPIX_CODES.no_subpix }));
    for (let k = 0; k < 4; k++) {
      const d = directCorrelation(im0, im1, nx, starts[2 * k], starts[2 * k + 1], starts[2 * k], starts[2 * k + 1], n);
      assert.equal(out.dx[k], d.dx, `dx of window ${k}`);
      assert.equal(out.dy[k], d.dy, `dy of window ${k}`);
      assert.ok(Math.abs(out.correl[k] - d.value) < 1e-5, `correl ${out.correl[k]} vs direct ${d.value}`);
      assert.equal(out.dx[k], -3);
      assert.equal(out.dy[k], 2);
      assert.equal(out.code[k], VEC_CODES.ok);
    }
  });

  it('gives 1.0 and no displacement for identical windows', async () => {
    const im = randomImage(32, 32, 3);
    const out = await native().correlatePass(passArgs(im, im, 32, 32, 16, [0, 0, 16, 16], [0, 0, 16, 16]));
    for (let k = 0; k < 2; k++) {
      assert.ok(Math.abs(out.correl[k] - 1) < 1e-5, `correl ${out.correl[k]}`);
      assert.ok(Math.abs(out.dx[k]) < 1e-4 && Math.abs(out.dy[k]) < 1e-4, `${out.dx[k]}, ${out.dy[k]}`);
    }
    // Also with Gaussian window weights: normalised by the weighted energies.
    const w = await native().correlatePass(passArgs(im, im, 32, 32, 16, [0, 0, 16, 16], [0, 0, 16, 16], { windowSigma: 0.4 }));
    for (let k = 0; k < 2; k++) assert.ok(Math.abs(w.correl[k] - 1) < 1e-5 && Math.abs(w.dx[k]) < 1e-4, `weighted: ${w.correl[k]}, ${w.dx[k]}`);
    assert.throws(() => native().correlatePass(passArgs(im, im, 32, 32, 16, [0, 0], [0, 0], { windowSigma: -1 })), /windowSigma/);
  });

  it('weights the lags of wide sub-pixel neighbourhoods beyond small windows as empty (weighted, secondary peaks)', async () => {
    // 8 px windows, a centroid over 17x17 lags and secondary peaks: the lags reach past the
    // box, where the weight of the fit is 0 (they once indexed outside the weight table).
    const im = randomImage(64, 64, 9);
    const starts: number[] = [];
    for (let y = 0; y + 8 <= 64; y += 8) for (let x = 0; x + 8 <= 64; x += 8) starts.push(y, x);
    const out = await native().correlatePass(passArgs(im, im, 64, 64, 8, starts, starts,
      { windowSigma: 0.4, subpix: SUBPIX_CODES.centroid, nsubpix: 8, nbPeaks: 4, particleRadius: 1 }));
    for (let k = 0; k < out.dx.length; k++) {
      assert.ok(Math.abs(out.correl[k] - 1) < 1e-5, `correl ${out.correl[k]}`);
      assert.ok(Math.abs(out.dx[k]) < 0.5 && Math.abs(out.dy[k]) < 0.5, `${out.dx[k]}, ${out.dy[k]}`);
    }
  });

  it('adds the offset between the two windows to the measured displacement', async () => {
    const ny = 64;
    const nx = 64;
    const im0 = randomImage(ny, nx, 4);
    // Same content, window 1 placed 5 columns right and 2 rows down: displacement (5, 2).
    const im1 = new Float32Array(ny * nx);
    for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
      im1[y * nx + x] = im0[(((y - 2) % ny + ny) % ny) * nx + (((x - 5) % nx + nx) % nx)];
    }
    const out = await native().correlatePass(passArgs(im0, im1, ny, nx, 16, [20, 20], [22, 25]));
    assert.ok(Math.abs(out.dx[0] - 5) < 1e-3, `dx ${out.dx[0]}`);
    assert.ok(Math.abs(out.dy[0] - 2) < 1e-3, `dy ${out.dy[0]}`);
    assert.ok(out.correl[0] > 0.999);
  });

  it('flags uniform windows, windows outside the image and peaks beyond displacement_max', async () => {
    const ny = 64;
    const nx = 64;
    const im0 = randomImage(ny, nx, 5);
    const flat = new Float32Array(ny * nx).fill(7);
    const out = await native().correlatePass(passArgs(im0, flat, ny, nx, 16, [0, 0, 200, 200], [0, 0, 200, 200]));
    assert.equal(out.code[0], VEC_CODES.noTexture);
    assert.ok(Number.isNaN(out.dx[0]));
    assert.equal(out.code[1], VEC_CODES.outside);
    // A 6-pixel shift searched within 3 pixels: the maximum sits on the border of the region.
    const im1 = new Float32Array(ny * nx);
    for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) im1[y * nx + x] = im0[y * nx + ((x - 6 + nx) % nx)];
    const lim = await native().correlatePass(passArgs(im0, im1, ny, nx, 32, [16, 16], [16, 16], { displacementMax: 3 }));
    assert.equal(lim.code[0], VEC_CODES.peakOnBorder);
    const free = await native().correlatePass(passArgs(im0, im1, ny, nx, 32, [16, 16], [16, 16]));
    assert.ok(Math.abs(free.dx[0] - 6) < 0.2, `dx ${free.dx[0]}`);
  });

  it('validates its arguments with messages naming them', async () => {
    const im = new Float32Array(64);
    const good = passArgs(im, im, 8, 8, 4, [0, 0], [0, 0]);
    assert.throws(() => native().correlatePass({ ...good, im0: new Float64Array(64) as unknown as Float32Array }),
      (e: Error & { code?: string }) => e.code === 'ERR_INVALID_ARG_TYPE' && /im0/.test(e.message));
    assert.throws(() => native().correlatePass({ ...good, height: 9 }), /im0/);
    assert.throws(() => native().correlatePass({ ...good, starts1: new Int32Array(4) }), /starts1/);
    assert.throws(() => native().correlatePass({ ...good, subpix: 9 }), /subpix/);
    assert.throws(() => native().correlatePass({ ...good, h0: 2 }), /window shape/);
  });

  it('splits a pass over threads with identical results', async () => {
    const ny = 128;
    const nx = 128;
    const im0 = randomImage(ny, nx, 6);
    const im1 = randomImage(ny, nx, 7);
    for (let i = 0; i < im1.length; i++) im1[i] = 0.7 * im1[i] + im0[i];
    const starts: number[] = [];
    for (let y = 0; y + 16 <= ny; y += 8) for (let x = 0; x + 16 <= nx; x += 8) starts.push(y, x);
    const one = await native().correlatePass(passArgs(im0, im1, ny, nx, 16, starts, starts), 1);
    const four = await native().correlatePass(passArgs(im0, im1, ny, nx, 16, starts, starts), 4);
    assert.deepEqual(four.dx, one.dx);
    assert.deepEqual(four.correl, one.correl);
    // Timing the phases changes nothing and reports each phase (thread seconds).
    const t0 = performance.now();
    const timed = await native().correlatePass({ ...passArgs(im0, im1, ny, nx, 16, starts, starts), profile: true }, 4);
    const wall = (performance.now() - t0) / 1000;
    assert.deepEqual(timed.dx, one.dx);
    assert.equal(one.phases, undefined);
    const ph = timed.phases!;
    for (const k of ['load', 'fft', 'spectra', 'peaks'] as const) assert.ok(ph[k] > 0, `${k}: ${ph[k]}`);
    assert.ok(ph.load + ph.fft + ph.spectra + ph.peaks <= 4 * wall + 1e-3, 'no more than the threads could spend');
  });

  it('reuses FFT plans per window shape and exports wisdom', async () => {
    const core = native();
    const before = core.planCount();
    core.timeFftOnly(24, 24, 2);
    const after = core.planCount();
    core.timeFftOnly(24, 24, 2);
    assert.equal(core.planCount(), after);
    assert.ok(after >= before);
    const { mkdtempSync, existsSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'fi-wisdom-'));
    try {
      assert.equal(core.exportWisdom(join(dir, 'w.txt')), true);
      assert.ok(existsSync(join(dir, 'w.txt')));
      assert.equal(core.importWisdom(join(dir, 'w.txt')), true);
      assert.equal(core.importWisdom(join(dir, 'missing.txt')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('plans with FFTW_ESTIMATE unless told otherwise, so that results repeat bit for bit between runs', () => {
    // In a fresh process, before anything sets the effort (library use of WorkPIV, tests):
    // measured plans differ from run to run and so do the last bits of the results.
    const script = `const { native } = await import(${JSON.stringify(new URL('../native.js', import.meta.url).href)});
      process.stdout.write(native().getPlannerEffort());`;
    assert.equal(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }), 'estimate');
  });

  it('survives random inputs to every native call (the fuzzer of npm run fuzz:native, ordinary build)', function () {
    this.timeout(60_000);
    // Only argument errors may come back; a crash or another error fails. Memory errors need
    // the sanitizer build (npm run fuzz:native).
    const fuzzer = new URL('../scripts/fuzz-native.js', import.meta.url);
    const out = execFileSync(process.execPath, [fuzzer.pathname, '--seed', '7', '--iterations', '120'], { encoding: 'utf8' });
    assert.match(out, /^ok: 120 iterations/m);
  });
});
