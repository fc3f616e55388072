/**
 * The library API (src/index.ts) in this process, and the package as users get it: `npm
 * pack`, `npm install` of the tarball into a fresh project (the native core built at
 * install), `import { computePiv } from 'fluidimage'`, the `fluidimage` bin, the types.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computePiv, defaultParams, mpi, readResult, runSeries, writePivResult, type PivOutput } from '../index.js';
import { writeImage } from '../io/images.js';
import { defaults } from '../params/schema.js';
import { TOPOLOGIES, type TopologyName } from '../topologies/registry.js';
import { makeField } from '../works/synth/fields.js';
import { renderPair, type SynthPair } from '../works/synth/particles.js';
import { REPO_ROOT } from './helpers/cli.js';

const N = 128;
const DX = 2.5;
const DY = -1;

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x, 0) / a.length;

/** A pair of synthetic particle images moved by (DX, DY), written as PNG into `dir`. */
async function writeSynthPair(dir: string): Promise<SynthPair> {
  const pair = renderPair(makeField({ kind: 'uniform', dx: DX, dy: DY }, [N, N]), { shape: [N, N], density: 0.05, diameter: 2.5, bitDepth: 8, noise: 0, seed: 7 });
  mkdirSync(dir, { recursive: true });
  await writeImage(join(dir, 'im0001a.png'), N, N, pair.im0);
  await writeImage(join(dir, 'im0001b.png'), N, N, pair.im1);
  return pair;
}

function assertUniform(r: PivOutput): void {
  assert.equal(r.final.u.length, r.final.nx * r.final.ny);
  assert.ok(r.final.nx > 2 && r.final.ny > 2, `${r.final.nx} x ${r.final.ny}`);
  assert.ok(Math.abs(mean(r.final.u) - DX) < 0.05, `mean u ${mean(r.final.u)}`);
  assert.ok(Math.abs(mean(r.final.v) - DY) < 0.05, `mean v ${mean(r.final.v)}`);
}

describe('library API (import from the package root)', function () {
  this.timeout(120_000);
  let dir: string;
  let series: string;
  let pair: SynthPair;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fi-api-'));
    series = join(dir, 'series');
    pair = await writeSynthPair(series);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('computePiv gives the uniform displacement of a synthetic pair, from paths and from arrays', async () => {
    const fromPaths = await computePiv(join(series, 'im0001a.png'), join(series, 'im0001b.png'), { piv0: { shape_crop_im0: 32 } });
    assertUniform(fromPaths);
    assert.equal(fromPaths.passes.length, 1);
    assert.deepEqual(fromPaths.names, ['im0001a.png', 'im0001b.png']);
    const fromArrays = await computePiv({ data: pair.im0, width: N, height: N }, { data: pair.im1, width: N, height: N },
      { piv0: { shape_crop_im0: 32 }, multipass: { number: 2 } }, { threads: 1 });
    assertUniform(fromArrays);
    assert.equal(fromArrays.passes.length, 2);
  });

  it('defaultParams returns the schema defaults of every topology, as a typed tree', async () => {
    for (const name of Object.keys(TOPOLOGIES) as TopologyName[]) {
      assert.deepEqual(defaultParams(name), defaults(await TOPOLOGIES[name].schema()), name);
    }
    const p = defaultParams('piv');
    const window: number | number[] = p.piv0.shape_crop_im0;
    assert.equal(window, 48);
    const how: 'complete' | 'recompute' | 'new_dir' = p.saving.how;
    assert.equal(how, 'complete');
    // @ts-expect-error a typo in a key is a compile error
    assert.equal(p.piv0.shape_crop_imO, undefined);
    // @ts-expect-error so is an unknown parameter given to computePiv (the call is refused at run time too)
    await assert.rejects(computePiv(join(series, 'im0001a.png'), join(series, 'im0001b.png'), { fixx: { correl_min: 0.3 } }), /Unknown parameter fixx/);
    // @ts-expect-error an unknown topology
    assert.throws(() => defaultParams('pvi'), /Unknown topology "pvi"/);
    assert.notEqual(defaultParams('piv'), defaultParams('piv'), 'a fresh copy each call');
  });

  it('writePivResult writes a file that readResult reads back (kind piv, same final field)', async () => {
    const r = await computePiv(join(series, 'im0001a.png'), join(series, 'im0001b.png'), { piv0: { shape_crop_im0: 32 } });
    const file = join(dir, 'one.h5');
    await writePivResult(file, r);
    const back = await readResult(file);
    assert.equal(back.kind, 'piv');
    if (back.kind !== 'piv') return;
    assert.deepEqual(back.final?.u, r.final.u);
    assert.deepEqual(back.final?.v, r.final.v);
    assert.equal((back.params.piv0 as { shape_crop_im0: number }).shape_crop_im0, 32);
  });

  it('runSeries returns the summary (piv, mean-image, bos, preproc) and readResult reads each kind of result', async () => {
    const piv = await runSeries('piv', series, { output: join(dir, 'piv'), workers: 1, params: { piv0: { shape_crop_im0: 32 } } });
    assert.equal(piv.status, 0);
    assert.equal(piv.outputDir, join(dir, 'piv'));
    assert.equal(piv.summary?.done, 1);
    assert.deepEqual(piv.summary?.failed, []);
    const files = readdirSync(piv.outputDir!).filter((f) => f.endsWith('.h5'));
    assert.equal(files.length, 1);
    const field = await readResult(join(piv.outputDir!, files[0]));
    assert.equal(field.kind, 'piv');
    if (field.kind === 'piv') assert.ok(Math.abs(mean(field.final!.u) - DX) < 0.05);

    const again = await runSeries('piv', series, { output: join(dir, 'piv'), workers: 1, params: { piv0: { shape_crop_im0: 32 } } });
    assert.deepEqual([again.status, again.summary?.done, again.summary?.skipped], [0, 0, 1], 'how=complete: nothing to redo');

    const meanImage = await runSeries('mean-image', series, { output: join(dir, 'mean'), workers: 1 });
    assert.equal(meanImage.status, 0);
    assert.equal(meanImage.summary?.done, 2);
    const m = await readResult(join(dir, 'mean', 'mean.h5'));
    assert.equal(m.kind, 'mean-image');
    if (m.kind === 'mean-image') {
      assert.deepEqual([m.width, m.height, m.count], [N, N, 2]);
      assert.equal(m.images.mean.length, N * N);
    }

    const bos = await runSeries('bos', series, { output: join(dir, 'bos'), workers: 1, params: { piv0: { shape_crop_im0: 32 } } });
    assert.deepEqual([bos.status, bos.summary?.done], [0, 1]);
    const b = await readResult(join(dir, 'bos', 'bos_0001b.h5'));
    assert.equal(b.kind, 'piv', 'BOS results have the PIV layout');
    if (b.kind === 'piv') assert.ok(Math.abs(mean(b.final!.u) - DX) < 0.05);

    const pre = await runSeries('preproc', series, { output: join(dir, 'pre'), workers: 1, params: { saving: { format: 'hdf5' } } });
    assert.deepEqual([pre.status, pre.summary?.done], [0, 2]);
    const im = await readResult(join(dir, 'pre', 'im0001a.h5'));
    assert.equal(im.kind, 'preproc');
    if (im.kind === 'preproc') assert.deepEqual([im.width, im.height, Object.keys(im.images)], [N, N, ['im0001a.png']]);
  });

  it('runSeries rejects a bad parameter, naming its key', async () => {
    await assert.rejects(runSeries('piv', series, { output: join(dir, 'bad'), params: { fix: { correl_min: 2 } } }), /fix\.correl_min/);
  });

  it('exports the MPI communicator (mpi4py-like, *Object names for JSON values)', () => {
    assert.equal(typeof mpi.world, 'function');
    for (const m of ['send', 'recv', 'bcast', 'gather', 'reduce', 'allreduce', 'sendObject', 'recvObject', 'bcastObject', 'gatherObject']) {
      assert.equal(typeof (mpi.Comm.prototype as unknown as Record<string, unknown>)[m], 'function', m);
    }
  });
});

/** The environment of a user's npm: none of the variables npm gives the scripts it runs (npm test). */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'FLUIDIMAGE_NATIVE' && k !== 'INIT_CWD') env[k] = v;
  }
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = userEnv()) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 240_000 });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout, err: r.stderr, all: `${r.stdout}\n${r.stderr}` };
}

describe('installable tarball (npm pack, npm install into a fresh project)', function () {
  this.timeout(300_000);
  let dir: string;

  before(function () {
    if (spawnSync('npm', ['--version'], { encoding: 'utf8' }).status !== 0) {
      console.log('    skipped: npm is not installed (the tarball test needs npm pack and npm install)');
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'fi-tarball-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('packs dist without tests, installs with the native build, imports computePiv, runs the bins, types resolve', async () => {
    // The package as it is built (pretest built it; --ignore-scripts: no rebuild under the running tests).
    const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], REPO_ROOT);
    assert.equal(pack.code, 0, pack.all);
    const [info] = JSON.parse(pack.out) as [{ filename: string; files: { path: string }[] }];
    const paths = info.files.map((f) => f.path);
    for (const p of ['dist/index.js', 'dist/index.d.ts', 'dist/run.js', 'native/addon.cc', 'CMakeLists.txt', 'scripts/build-native.mjs', 'package.json']) {
      assert.ok(paths.includes(p), `${p} is in the package`);
    }
    const extra = paths.filter((p) => /^dist\/(test|scripts)\/|\.map$|^build\/|^test\/|^src\/|bench|\.piv\//.test(p));
    assert.deepEqual(extra, [], 'no tests, sources, builds or benchmark outputs');

    const project = join(dir, 'user');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'fi-user', version: '1.0.0', private: true, type: 'module' }));
    const tarball = join(dir, info.filename);
    const t0 = performance.now();
    const install = run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], project);
    assert.equal(install.code, 0, install.all);
    const installed = join(project, 'node_modules', 'fluidimage');
    assert.ok(readdirSync(join(installed, 'build', 'Release')).includes('fluidimage_native.node'), 'the native core was built at install');
    const installSeconds = (performance.now() - t0) / 1000;

    await writeSynthPair(join(project, 'images'));
    writeFileSync(join(project, 'use.mjs'), [
      "import { computePiv } from 'fluidimage';",
      "const r = await computePiv('images/im0001a.png', 'images/im0001b.png', { piv0: { shape_crop_im0: 32 } });",
      'const mean = (a) => a.reduce((s, x) => s + x, 0) / a.length;',
      'console.log(JSON.stringify({ u: mean(r.final.u), v: mean(r.final.v), n: r.final.u.length }));',
    ].join('\n'));
    const use = run(process.execPath, ['use.mjs'], project);
    assert.equal(use.code, 0, use.all);
    const field = JSON.parse(use.out) as { u: number; v: number; n: number };
    assert.ok(Math.abs(field.u - DX) < 0.05 && Math.abs(field.v - DY) < 0.05, use.out);

    const version = run('npx', ['--no-install', 'fluidimage', '--version'], project);
    assert.equal(version.code, 0, version.all);
    assert.match(version.out, /^\d+\.\d+\.\d+/);

    // The types through the package's exports: a typo in a parameter key does not compile.
    writeFileSync(join(project, 'check.ts'), [
      "import { computePiv, defaultParams, type PivOutput } from 'fluidimage';",
      "const p = defaultParams('piv');",
      'const w: number | number[] = p.piv0.shape_crop_im0;',
      '// @ts-expect-error typo',
      'void p.piv0.shape_crop_imO;',
      "const r: Promise<PivOutput> = computePiv('a.png', 'b.png', { fix: { correl_min: 0.3 } });",
      '// @ts-expect-error typo',
      "void computePiv('a.png', 'b.png', { fixx: { correl_min: 0.3 } });",
      'void w; void r;',
    ].join('\n'));
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] },
      files: ['check.ts'],
    }));
    const tsc = run(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], project);
    assert.equal(tsc.code, 0, tsc.all);

    // Install scripts skipped (--ignore-scripts, a denying allowScripts): the import says how to build, and that works.
    rmSync(join(installed, 'build'), { recursive: true });
    const unbuilt = run(process.execPath, ['use.mjs'], project);
    assert.notEqual(unbuilt.code, 0);
    assert.match(unbuilt.err, /The native core is not built .*npx fluidimage-build/);
    const build = run('npx', ['--no-install', 'fluidimage-build'], project);
    assert.equal(build.code, 0, build.all);
    assert.equal(run(process.execPath, ['use.mjs'], project).code, 0);

    // No FFTW (pkg-config finds no fftw3f), no compiler: one message naming the Debian packages.
    const noFftw = run(process.execPath, [join(installed, 'scripts', 'build-native.mjs')], project, userEnv({ PKG_CONFIG_LIBDIR: join(dir, 'none') }));
    assert.equal(noFftw.code, 1);
    assert.match(noFftw.err, /^fluidimage: cannot build the native core: missing FFTW \(single precision\)\. On Debian\/Ubuntu: sudo apt-get install libfftw3-dev /);
    const bare = join(dir, 'bin');
    mkdirSync(bare);
    symlinkSync(process.execPath, join(bare, 'node'));
    const noTools = run(process.execPath, [join(installed, 'scripts', 'build-native.mjs')], project, userEnv({ PATH: bare }));
    assert.equal(noTools.code, 1);
    assert.match(noTools.err, /missing cmake, a C\+\+ compiler, pkg-config\. On Debian\/Ubuntu: sudo apt-get install cmake g\+\+ pkg-config /);
    assert.equal(noTools.err.trim().split('\n').length, 1, 'one message');
    assert.ok(installSeconds < 240, `install took ${installSeconds} s`);
  });
});
