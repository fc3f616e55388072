/**
 * Results users can trust, failures they can read (issue 14): parameters recorded with
 * the results and checked by --how complete; unusable output locations refused before
 * anything is made; plans that cannot work refused at planning; monitor's states;
 * leftovers of killed runs removed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { paramDifferences, RECORD_NAME, relevantParams } from '../topologies/provenance.js';
import type { PivResult } from '../results/piv_result.js';
import { REPO_ROOT, RUN_JS, copyImages, describeRun, listDir, listJobDirs, makeTempDir, removeDir, runCli, type CliResult } from './helpers/cli.js';

const KARMAN = join(REPO_ROOT, 'samples', 'Karman');
const SMALL = ['--set', 'piv0.shape_crop_im0=48', '--set', 'multipass.number=1', '-q'];

async function cli(args: string[], expected: number): Promise<CliResult> {
  const r = await runCli(args);
  assert.equal(r.code, expected, describeRun(args, r));
  return r;
}

const isRoot = process.getuid?.() === 0;

/** Mounts a tmpfs at `dir` (root only); unmounted by `unmount`. */
function mountTmpfs(dir: string, options: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]).status === 0;
}
function unmount(dir: string): void {
  spawnSync('umount', [dir]);
}

describe('trust: parameters travel with results', function () {
  let tmp: string;
  let images: string;
  before(async () => {
    tmp = await makeTempDir('trust-params');
    images = join(tmp, 'Karman');
    await copyImages(KARMAN, images, (n) => n.endsWith('.bmp'));
  });
  after(async () => removeDir(tmp));

  it('the fingerprint: settings that do not change results left out; keys of one version only are no difference', () => {
    const tree = { series: { path: '/a', str_subset: 'pairs', ind_start: 'first', ind_stop: null, ind_step: 1 }, piv0: { shape_crop_im0: 48, grid: { overlap: 0.5 } },
      saving: { path: '/o', how: 'complete', postfix: 'piv' }, compute: { fftw_planner: 'estimate', fftw_wisdom: null } };
    assert.deepEqual(relevantParams(tree), { 'series.str_subset': 'pairs', 'piv0.shape_crop_im0': 48, 'piv0.grid.overlap': 0.5 });
    assert.deepEqual(paramDifferences({ a: 1, b: [1, 2], old: 3 }, { a: 2, b: [1, 2], added: 4 }), ['a (1 -> 2)']);
  });

  it('--how complete refuses results made with other parameters, names the keys and the choices; settings that do not change results do not count', async () => {
    const out = join(tmp, 'out');
    await cli(['piv', images, '-o', out, ...SMALL], 0);
    const record = JSON.parse(await readFile(join(out, RECORD_NAME), 'utf8')) as { params: Record<string, unknown>; version: string; inputs: string };
    assert.equal(record.params['multipass.number'], 1);
    assert.equal(record.inputs, images);
    assert.ok(!('series.path' in record.params) && !('compute.fftw_planner' in record.params));
    const before = await listDir(out);

    const r = await cli(['piv', images, '-o', out, ...SMALL, '--set', 'multipass.number=2'], 2);
    assert.match(r.stderr, /^fluidimage: error: results in .*out were made with other parameters: multipass\.number \(1 -> 2\); use --how recompute to redo them or --how new_dir for a fresh directory\n$/);
    assert.deepEqual(await listDir(out), before, 'a refused run left something');

    // A params file (-c) the same way.
    const file = join(tmp, 'params3.yaml');
    await writeFile(file, 'piv0:\n  shape_crop_im0: 32\n');
    const r2 = await cli(['piv', images, '-o', out, '-c', file, '--set', 'multipass.number=1', '-q'], 2);
    assert.match(r2.stderr, /piv0\.shape_crop_im0 \(48 -> 32\)/);

    // Workers, the FFT planner and the index range change nothing.
    const r3 = await cli(['piv', images, '-o', out, ...SMALL, '--workers', '2', '--set', 'compute.fftw_planner=measure', '--set', 'series.ind_stop=2'], 0);
    assert.equal(r3.stderr, '');
    // The same images moved elsewhere are still the same inputs.
    const moved = join(tmp, 'moved');
    await copyImages(images, moved);
    await cli(['piv', moved, '-o', out, ...SMALL], 0);

    // recompute redoes them with the new parameters, and then complete accepts them.
    await cli(['piv', images, '-o', out, ...SMALL, '--set', 'multipass.number=2', '--how', 'recompute'], 0);
    await cli(['piv', images, '-o', out, ...SMALL, '--set', 'multipass.number=2'], 0);
    await cli(['piv', images, '-o', out, ...SMALL], 2);
  });

  it('a recompute that did not finish leaves the directory marked as mixed', async () => {
    const out = join(tmp, 'mixed');
    await cli(['piv', images, '-o', out, ...SMALL], 0);
    // A failing pair: the recompute does not finish every item.
    const broken = join(tmp, 'broken');
    await copyImages(images, broken);
    await writeFile(join(broken, 'Karman_03.bmp'), 'not an image');
    await cli(['piv', broken, '-o', out, ...SMALL, '--set', 'multipass.number=2', '--how', 'recompute'], 1);
    const r = await cli(['piv', images, '-o', out, ...SMALL, '--set', 'multipass.number=2'], 2);
    assert.match(r.stderr, /a mix: a --how recompute .* did not finish/);
  });

  it('directories written before records existed are checked against their latest job', async () => {
    const out = join(tmp, 'legacy');
    await cli(['piv', images, '-o', out, ...SMALL], 0);
    await rm(join(out, RECORD_NAME));
    const r = await cli(['piv', images, '-o', out, ...SMALL, '--set', 'piv0.grid.overlap=0.25'], 2);
    assert.match(r.stderr, /piv0\.grid\.overlap \(0\.5 -> 0\.25\)/);
  });

  it('bos, preproc and mean-image refuse results of other parameters too', async () => {
    const pre = join(tmp, 'pre');
    await cli(['preproc', images, '-o', pre, '-q', '--set', 'preproc.tools.sequence=["sliding_median"]', '--set', 'preproc.tools.sliding_median.enable=true'], 0);
    const r = await cli(['preproc', images, '-o', pre, '-q', '--set', 'preproc.tools.sequence=["sliding_median"]', '--set', 'preproc.tools.sliding_median.enable=true',
      '--set', 'preproc.tools.sliding_median.window_size=5'], 2);
    assert.match(r.stderr, /preproc\.tools\.sliding_median\.window_size/);
    const mean = join(tmp, 'mean');
    await cli(['mean-image', images, '-o', mean, '-q'], 0);
    const r2 = await cli(['mean-image', images, '-o', mean, '-q', '--set', 'statistics.std=false'], 2);
    assert.match(r2.stderr, /statistics\.std \(true -> false\)/);
    const bos = join(tmp, 'bos');
    await cli(['bos', images, '-o', bos, ...SMALL], 0);
    const r3 = await cli(['bos', images, '-o', bos, ...SMALL, '--set', 'fix.correl_min=0.3'], 2);
    assert.match(r3.stderr, /fix\.correl_min \(0\.2 -> 0\.3\)/);
  });
});

describe('trust: output locations that cannot be used', function () {
  let tmp: string;
  const mounts: string[] = [];
  before(async () => {
    tmp = await makeTempDir('trust-output');
    await chmod(tmp, 0o755);
  });
  after(async () => {
    for (const m of mounts) unmount(m);
    await removeDir(tmp);
  });

  async function refused(out: string, reason: RegExp, opts: { uid?: number } = {}): Promise<void> {
    const args = [RUN_JS, 'piv', KARMAN, '-o', out, '-q'];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}) });
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^fluidimage: error: cannot write results to /);
    assert.match(lines[0], reason);
    assert.ok(!lines[0].includes('unexpected'), lines[0]);
  }

  it('a file in the way', async () => {
    const file = join(tmp, 'file');
    await writeFile(file, 'x');
    await refused(join(file, 'out'), /file is in the way \(a file, not a directory\)/);
    await refused(file, /file is in the way/);
  });

  it('a read-only file system, a full disk, and no permission (as another user)', async function () {
    if (!isRoot) this.skip();
    const ro = join(tmp, 'ro');
    await mkdir(ro);
    if (!mountTmpfs(ro, 'ro,size=1m')) this.skip();
    mounts.push(ro);
    await refused(join(ro, 'out'), /read-only file system/);
    const full = join(tmp, 'full');
    await mkdir(full);
    assert.ok(mountTmpfs(full, 'size=256k'));
    mounts.push(full);
    await refused(join(full, 'out'), /no space left on the device \(\d+ KiB free/);
    assert.deepEqual(await listDir(full), []);
    const locked = join(tmp, 'locked');
    await mkdir(locked, { mode: 0o555 });
    await chmod(locked, 0o555);
    await refused(join(locked, 'out'), /permission denied \(.*locked is not writable by this user\)/, { uid: 65534 });
  });

  it('a run refused by the lock leaves no job directory', async () => {
    const out = join(tmp, 'lock');
    await cli(['piv', KARMAN, '-o', out, ...SMALL], 0);
    const jobs = await listJobDirs(out);
    // A lock held by a live process (this one).
    await writeFile(join(out, '.fluidimage.lock'), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), start: new Date().toISOString(), command: 'test' }));
    const r = await cli(['piv', KARMAN, '-o', out, ...SMALL, '--how', 'recompute'], 2);
    assert.match(r.stderr, /in use by another fluidimage job/);
    assert.deepEqual(await listJobDirs(out), jobs);
    await rm(join(out, '.fluidimage.lock'));
  });
});

describe('trust: plans that cannot work are refused at planning', function () {
  let tmp: string;
  before(async () => {
    tmp = await makeTempDir('trust-plan');
  });
  after(async () => removeDir(tmp));

  it('windows larger than the image or the crop, a mask of another size: exit 2 naming the parameter, nothing made', async () => {
    const out = join(tmp, 'out');
    let r = await cli(['piv', KARMAN, '-o', out, '-q', '--set', 'piv0.shape_crop_im0=600'], 2);
    assert.match(r.stderr, /^fluidimage: error: .*piv0\.shape_crop_im0 600.* larger than the 400x524 images/);
    r = await cli(['piv', KARMAN, '-o', out, '-q', '--set', 'piv0.shape_crop_im0=48', '--set', 'mask.strcrop="10:40, 10:40"'], 2);
    assert.match(r.stderr, /larger than the 30x30 region of mask\.strcrop/);
    r = await cli(['piv', KARMAN, '-o', out, '-q', '--set', 'piv0.shape_crop_im0=32', '--set', 'piv0.shape_crop_im1=500'], 2);
    assert.match(r.stderr, /piv0\.shape_crop_im1/);
    r = await cli(['bos', KARMAN, '-o', out, '-q', '--set', 'piv0.shape_crop_im0=600'], 2);
    assert.match(r.stderr, /piv0\.shape_crop_im0/);
    const mask = join(tmp, 'mask.png');
    const sharp = (await import('sharp')).default;
    await sharp({ create: { width: 100, height: 80, channels: 3 as const, background: { r: 255, g: 255, b: 255 } } }).png().toFile(mask);
    r = await cli(['piv', KARMAN, '-o', out, '-q', '--set', `mask.image=${mask}`], 2);
    assert.match(r.stderr, /The mask .*mask\.png is 100x80 but the images/);
    assert.ok(!existsSync(out), 'a refused plan made the output directory');
  });
});

describe('trust: monitor tells the truth', function () {
  let tmp: string;
  before(async () => {
    tmp = await makeTempDir('trust-monitor');
  });
  after(async () => removeDir(tmp));

  it('a killed job is dead, not running; a job directory without info.json is shown without a crash', async () => {
    const out = join(tmp, 'out');
    await cli(['piv', KARMAN, '-o', out, ...SMALL], 0);
    const [job] = await listJobDirs(out);
    // As a kill -9 leaves it: no summary, a lock whose holder is gone (a pid that does not run).
    await rm(join(out, job, 'summary.json'));
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    await writeFile(join(out, '.fluidimage.lock'), JSON.stringify({ pid: Number(gone), host: (await import('node:os')).hostname(), start: new Date().toISOString(), jobDir: join(out, job), command: 'piv' }));
    let r = await cli(['monitor', out], 0);
    assert.match(r.stdout, /job dead/);
    assert.match(r.stdout, /its process \(pid \d+ on .*\) is gone/);
    assert.match(r.stdout, /last sign of life: \d{4}-/);
    assert.doesNotMatch(r.stdout, /ETA/);
    const json = JSON.parse((await cli(['monitor', out, '--json'], 0)).stdout) as { state: string; etaSeconds: number | null };
    assert.equal(json.state, 'dead');
    assert.equal(json.etaSeconds, null);

    // A job directory without info.json (a job killed at its very start).
    await mkdir(join(out, 'job_2999-01-01_00-00-00_1'));
    r = await cli(['monitor', out], 0);
    assert.match(r.stdout, /job dead/);
    assert.match(r.stdout, /lacks info\.json/);
  });
});

describe('trust: leftovers of killed runs', function () {
  let tmp: string;
  before(async () => {
    tmp = await makeTempDir('trust-leftovers');
  });
  after(async () => removeDir(tmp));

  it('temporary files of a dead writer are removed by the next run, however young', async () => {
    const out = join(tmp, 'out');
    await cli(['piv', KARMAN, '-o', out, ...SMALL], 0);
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const tmpName = `.piv_01-02.h5.${gone}.0123abcd.tmp`;
    await writeFile(join(out, tmpName), '');
    await cli(['piv', KARMAN, '-o', out, ...SMALL], 0);
    assert.ok(!existsSync(join(out, tmpName)), 'the 0-byte temporary file of a killed run is still there');
  });
});

function denseResult(nx: number, ny: number, step: number, shape: [number, number]): PivResult {
  const n = nx * ny;
  const xs = Float32Array.from({ length: n }, (_, i) => (i % nx) * step + 7.5);
  const ys = Float32Array.from({ length: n }, (_, i) => Math.floor(i / nx) * step + 7.5);
  const dx = Float32Array.from({ length: n }, (_, i) => 1 + 0.5 * Math.sin(i));
  const dy = new Float32Array(n).fill(0.5);
  return {
    names: ['Im_A.png', 'Im_B.png'], paths: ['/nonexistent/Im_A.png', '/nonexistent/Im_B.png'], shape_images: shape, params: {},
    passes: [{ xs, ys, deltaxs: dx, deltays: dy, correls_max: new Float32Array(n).fill(0.9), shape_grid: [ny, nx], errors: { keys: new Int32Array(0), values: [], codes: new Int32Array(0) } }],
  };
}

describe('trust: every result file can be looked at', function () {
  let tmp: string;
  let piv: string;
  before(async () => {
    tmp = await makeTempDir('trust-look');
    const images = join(tmp, 'Karman');
    await copyImages(KARMAN, images, (n) => n.endsWith('.bmp'));
    piv = join(tmp, 'Karman.piv');
    await cli(['piv', images, '-o', piv, ...SMALL], 0);
    await cli(['mean', piv, '-q'], 0);
    await cli(['mean-image', images, '-o', join(tmp, 'mean_image'), '-q'], 0);
  });
  after(async () => removeDir(tmp));

  it('info describes mean fields and mean images; view and export refuse them with a sentence naming info', async () => {
    const mean = join(piv, 'mean_piv.h5');
    let r = await cli(['info', mean], 0);
    assert.match(r.stdout, /time average of PIV fields \(fluidimage mean\)/);
    assert.match(r.stdout, /mean_dx: 1 x \d+ float32|mean_dx: \d+ float32/);
    r = await cli(['info', join(tmp, 'mean_image', 'mean.h5'), '--json'], 0);
    assert.equal((JSON.parse(r.stdout) as { kind: string }).kind, 'mean image of a series (fluidimage mean-image)');
    for (const args of [['view', mean], ['export', mean, '-f', 'csv']]) {
      r = await cli(args, 2);
      assert.match(r.stderr, /^fluidimage: error: .*mean_piv\.h5 is a time average of PIV fields \(fluidimage mean\), not a PIV result: .*`fluidimage info .*mean_piv\.h5` describes any result file\n$/);
    }
  });

  it('export: --scale refused for netcdf, --final checked before anything is written (exit 2)', async () => {
    const file = join(piv, 'piv_01-02.h5');
    let r = await cli(['export', file, '-f', 'netcdf', '--scale', '1000', '--dt', '0.1'], 2);
    assert.match(r.stderr, /--scale does not apply to netcdf/);
    assert.ok(!existsSync(join(piv, 'piv_01-02.nc')));
    const out = join(tmp, 'exported');
    r = await cli(['export', join(piv, 'piv_0*.h5'), '-f', 'netcdf', '--final', '-o', out], 2);
    assert.match(r.stderr, /--final is not available for netcdf/);
    assert.ok(!existsSync(out), 'a usage error left a directory');
    r = await cli(['export', join(piv, 'piv_0*.h5'), '-f', 'csv', '--pass', '3', '-o', out], 2);
    assert.match(r.stderr, /--pass 3 is out of range/);
    assert.ok(!existsSync(out), 'a usage error left a directory');
  });

  it('view: a dense field draws one arrow in N (said in the title); names keep their case; other layouts get a sensible scale', async () => {
    const { renderFigure } = await import('../view/figure.js');
    // A 1600x1200 image with 16 px windows (step 8): 200 x 150 vectors.
    const dense = await renderFigure(denseResult(200, 150, 8, [1200, 1600]), undefined, { title: 'Im_A.png' });
    assert.ok(dense.stride >= 2, `stride ${dense.stride}`);
    assert.ok(dense.arrows <= (200 * 150) / 4, `${dense.arrows} arrows`);
    const sparse = await renderFigure(denseResult(16, 12, 16, [200, 260]), undefined, {});
    assert.equal(sparse.stride, 1);
    assert.equal(sparse.arrows, 16 * 12);
    // Positions with float noise (another program's layout): not a tiny spacing.
    const noisy = denseResult(16, 12, 16, [200, 260]);
    noisy.passes[0].xs[1] += 0.001;
    noisy.passes[0].shape_grid = [1, 16 * 12];
    const f = await renderFigure(noisy, undefined, {});
    assert.ok(f.scale > 0.25 * sparse.scale, `scale ${f.scale} vs ${sparse.scale}`);
  });
});
