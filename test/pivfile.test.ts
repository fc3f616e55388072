/**
 * PIV result files: round trip, atomicity, reading by an independent HDF5 reader (h5py or
 * h5dump), and reading a real Fluidimage file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanStaleTemps, writeAtomic } from '../io/atomic.js';
import {
  CONVENTIONS,
  UNKNOWN_ERROR_CODE,
  parsePyStrings,
  pyTupleRepr,
  readPivFile,
  readPivSummary,
  writePivFile,
} from '../io/pivfile.js';
import type { PivResult } from '../results/piv_result.js';
import type { ParamTree } from '../params/tree.js';
import { SHARED_IMAGE_SAMPLES } from './helpers/shared.js';

const META = { program: 'fluidimage-ts', version: '0.1.0' };
const MILESTONE = `${SHARED_IMAGE_SAMPLES}/Milestone/piv_0000a-b.h5`;
const PYTHON = '/usr/bin/python3';

/** Parameters with every kind of value: numbers, strings, booleans, null, arrays, nesting. */
function sampleParams(): ParamTree {
  return {
    series: { path: '/data/exp 1', str_subset: 'i:i+2', ind_start: 0, ind_stop: null },
    piv0: {
      shape_crop_im0: 48,
      method_correl: 'fftw',
      nsubpix: null,
      grid: { overlap: 0.5, from: 'overlap' },
    },
    fix: { correl_min: 0.2, displacement_max: null, threshold_diff_neighbour: 10 },
    multipass: { number: 2, use_tps: false, subdom_size: 200, coeff_zoom: [2, 1.5] },
    mask: {},
    flags: { on: true, off: false },
    arrays: { ints: [1, 2, -3], floats: [0.5, -1.25, Number.NaN], strs: ['a', 'bé', ''], empty: [] },
    big: 2 ** 40,
    tiny: 1e-300,
    neg: -7,
    unicode: 'Ωmega é',
    none_like: 'none',
  };
}

/** A 2-pass result with NaNs, errors, a final grid and an extra dataset. */
function sampleResult(): PivResult {
  const nan = Number.NaN;
  return {
    names: ['im_é01.png', "it's_02.png"],
    paths: ['/data/exp 1/im_é01.png', "/data/exp 1/it's_02.png"],
    shape_images: [64, 96],
    params: sampleParams(),
    passes: [
      {
        xs: Float32Array.from([15.5, 47.5, 79.5, 15.5, 47.5, 79.5]),
        ys: Float32Array.from([15.5, 15.5, 15.5, 47.5, 47.5, 47.5]),
        deltaxs: Float32Array.from([1.25, nan, 0.5, -0.75, 2, nan]),
        deltays: Float32Array.from([0.1, nan, -0.2, 0.3, 0, nan]),
        correls_max: Float32Array.from([0.9, 0.1, 0.8, 0.7, 0.95, nan]),
        errors: {
          keys: Int32Array.from([1, 5]),
          values: ['correl < correl_min', 'no peak'],
          codes: Int32Array.from([1, 2]),
        },
        shape_grid: [2, 3],
      },
      {
        xs: Float32Array.from([8, 24, 40, 56, 8, 24, 40, 56]),
        ys: Float32Array.from([8, 8, 8, 8, 24, 24, 24, 24]),
        deltaxs: Float32Array.from([1, 1.5, nan, 2, 0.25, 0.5, 0.75, 1]),
        deltays: Float32Array.from([0, 0.5, nan, -1, 0, 0, 0.125, 0]),
        correls_max: Float32Array.from([0.5, 0.6, 0.2, 0.7, 0.8, 0.9, 0.95, 0.99]),
        errors: { keys: Int32Array.from([2]), values: ['diff neighbour too large'], codes: Int32Array.from([3]) },
        shape_grid: [2, 4],
        final: {
          ixvecs_final: Float32Array.from([0, 32, 64, 0, 32, 64]),
          iyvecs_final: Float32Array.from([0, 0, 0, 32, 32, 32]),
          deltaxs_final: Float32Array.from([1, 1.5, 1.75, 0.25, 0.5, 0.75]),
          deltays_final: Float32Array.from([0, 0.5, -0.5, 0, 0, 0.125]),
        },
        extra: { deltaxs_smooth: Float32Array.from([1, 1.25, 1.5, 1.75, 0.3, 0.4, 0.5, 0.6]) },
      },
    ],
  };
}

/** `python3 -c 'import h5py'` works. */
function hasH5py(): boolean {
  return existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import h5py'], { encoding: 'utf8' }).status === 0;
}

function hasH5dump(): boolean {
  return spawnSync('h5dump', ['--version'], { encoding: 'utf8' }).status === 0;
}

describe('PIV result files (HDF5)', function () {
  let dir: string;

  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'pivfile-test-'));
  });

  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips a 2-pass result (NaNs, errors, final grid, extra, nested params)', async function () {
    const path = join(dir, 'piv_01-02.h5');
    const result = sampleResult();
    await writePivFile(path, result, META);
    const back = await readPivFile(path);
    // deepStrictEqual compares with Object.is: NaN equals NaN, typed array types must match.
    assert.deepStrictEqual(back, result);
    assert.ok(Number.isNaN(back.passes[0].deltaxs[1]));
    assert.deepStrictEqual(await readdir(dir), ['piv_01-02.h5']);
  });

  it('gives a summary for the info command', async function () {
    const path = join(dir, 'piv.h5');
    await writePivFile(path, sampleResult(), META);
    const summary = await readPivSummary(path);
    assert.equal(summary.nb_passes, 2);
    assert.deepStrictEqual(summary.shape_images, [64, 96]);
    assert.equal(summary.program, META.program);
    assert.equal(summary.program_version, META.version);
    assert.equal(summary.conventions, CONVENTIONS);
    const [p0, p1] = summary.passes;
    assert.deepStrictEqual(
      [p0.nb_vectors, p0.nb_rejected, p0.nb_errors, p0.shape_grid, p0.has_final],
      [6, 2, 2, [2, 3], false],
    );
    assert.deepStrictEqual([p1.nb_vectors, p1.nb_rejected, p1.has_final], [8, 1, true]);
    assert.deepStrictEqual(p0.deltaxs, { count: 4, mean: 0.75, min: -0.75, max: 2 });
    assert.equal(p1.deltays.min, -1);
  });

  it('rejects inconsistent results before creating any file', async function () {
    const result = sampleResult();
    result.passes[0].shape_grid = [3, 3];
    await assert.rejects(writePivFile(join(dir, 'bad.h5'), result, META), /shape_grid/);
    const reserved = sampleResult();
    reserved.passes[1].extra = { xs: new Float32Array(8) };
    await assert.rejects(writePivFile(join(dir, 'bad.h5'), reserved, META), /reserved/);
    assert.deepStrictEqual(await readdir(dir), []);
  });

  describe('atomicity', function () {
    it('leaves neither file nor temporary after a write that throws midway', async function () {
      const path = join(dir, 'out.h5');
      await assert.rejects(
        writeAtomic(path, async (tmp) => {
          await writeFile(tmp, 'partial');
          throw new Error('killed midway');
        }),
        /killed midway/,
      );
      assert.deepStrictEqual(await readdir(dir), []);
    });

    it('keeps the previous file when an HDF5 write fails midway', async function () {
      const path = join(dir, 'piv.h5');
      const good = sampleResult();
      await writePivFile(path, good, META);
      const bad = sampleResult();
      // Not a valid ParamValue: the writer fails after root attributes are written.
      bad.params.weird = { nested: [{ a: 1 }] } as unknown as ParamTree;
      await assert.rejects(writePivFile(path, bad, META), /arrays must hold only numbers or only strings/);
      assert.deepStrictEqual(await readdir(dir), ['piv.h5']);
      assert.deepStrictEqual(await readPivFile(path), good);
    });

    it('cleans stale temporary files only', async function () {
      const stale = join(dir, '.piv_01-02.h5.1234.0123abcd.tmp');
      const fresh = join(dir, '.piv_03-04.h5.1234.89abcdef.tmp');
      const other = join(dir, 'notes.tmp');
      for (const p of [stale, fresh, other]) await writeFile(p, 'x');
      const old = new Date(Date.now() - 3600_000);
      await utimes(stale, old, old);
      await utimes(other, old, old);
      assert.deepStrictEqual(await cleanStaleTemps(dir), [stale]);
      assert.deepStrictEqual((await readdir(dir)).sort(), ['.piv_03-04.h5.1234.89abcdef.tmp', 'notes.tmp']);
      assert.deepStrictEqual(await cleanStaleTemps(join(dir, 'missing')), []);
    });
  });

  it('writes couple names as Python tuple reprs that parse back', function () {
    const names = ["it's", 'a"b', 'back\\slash', 'é'];
    for (const name of names) {
      assert.deepStrictEqual(parsePyStrings(pyTupleRepr([name, 'x'])), [name, 'x']);
    }
    assert.equal(pyTupleRepr(['a.png', 'b.png']), "('a.png', 'b.png')");
    assert.deepStrictEqual(parsePyStrings("(u'im0000a.png', u'im0000b.png')"), ['im0000a.png', 'im0000b.png']);
  });

  it('is read by an independent HDF5 reader (h5py, else h5dump)', async function () {
    const path = join(dir, 'piv.h5');
    await writePivFile(path, sampleResult(), META);
    if (hasH5py()) {
      const script = `
import sys, json, math, h5py
with h5py.File(sys.argv[1], 'r') as f:
    a = f.attrs
    fix = f['params/fix'].attrs
    out = {
        'class_name': a['class_name'], 'module_name': a['module_name'],
        'Conventions': a['Conventions'], 'nb_passes': int(a['nb_passes']),
        'program': a['program'],
        # As Fluidimage loads them: eval(attr.decode())
        'names': list(eval(f['couple'].attrs['names'].decode())),
        'paths': list(eval(f['couple'].attrs['paths'].decode())),
        'shape_images': f['couple/shape_images'][:].tolist(),
        'deltaxs0': [None if math.isnan(v) else float(v) for v in f['piv0/deltaxs'][:]],
        'dtype': str(f['piv0/deltaxs'].dtype),
        'error_values': [v.decode() for v in f['piv0/errors/values'][:]],
        'displacement_max': fix['displacement_max'].decode(),
        'correl_min': float(fix['correl_min']),
        'use_tps': int(f['params/multipass'].attrs['use_tps']),
        'strs': [v.decode() for v in f['params/arrays'].attrs['strs']],
        'final_len': len(f['piv1/ixvecs_final']),
    }
print(json.dumps(out))
`;
      const run = spawnSync(PYTHON, ['-c', script, path], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const out = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.deepStrictEqual(out, {
        class_name: 'MultipassPIVResults',
        module_name: 'fluidimage.data_objects.piv',
        Conventions: CONVENTIONS,
        nb_passes: 2,
        program: META.program,
        names: ['im_é01.png', "it's_02.png"],
        paths: ['/data/exp 1/im_é01.png', "/data/exp 1/it's_02.png"],
        shape_images: [64, 96],
        deltaxs0: [1.25, null, 0.5, -0.75, 2, null],
        dtype: 'float32',
        error_values: ['correl < correl_min', 'no peak'],
        displacement_max: 'None',
        correl_min: 0.2,
        use_tps: 0,
        strs: ['a', 'bé', ''],
        final_len: 6,
      });
    } else if (hasH5dump()) {
      const attr = spawnSync('h5dump', ['-a', '/class_name', path], { encoding: 'utf8' });
      assert.equal(attr.status, 0, attr.stderr);
      assert.match(attr.stdout, /"MultipassPIVResults"/);
      const data = spawnSync('h5dump', ['-d', '/piv0/deltaxs', path], { encoding: 'utf8' });
      assert.equal(data.status, 0, data.stderr);
      assert.match(data.stdout, /H5T_IEEE_F32LE/);
      assert.match(data.stdout, /1\.25,\s*nan,\s*0\.5,\s*-0\.75,\s*2,\s*nan/i);
    } else {
      console.log('      (neither h5py for /usr/bin/python3 nor h5dump is installed)');
      this.skip();
    }
  });

  it('reads a real Fluidimage file (Milestone)', async function () {
    if (!existsSync(MILESTONE)) {
      console.log(`      (${MILESTONE} is absent)`);
      this.skip();
    }
    const result = await readPivFile(MILESTONE);
    assert.deepStrictEqual(result.names, ['im0000a.png', 'im0000b.png']);
    assert.match(result.paths[1], /level00\.pre\/im0000b\.png$/);
    assert.deepStrictEqual(result.shape_images, [2160, 2560]);
    assert.equal(result.passes.length, 2);
    const fix = result.params.fix as ParamTree;
    assert.deepStrictEqual(fix, { correl_min: 0.2, displacement_max: null, threshold_diff_neighbour: 5 });
    assert.deepStrictEqual(result.params.mask, {});
    assert.equal((result.params.multipass as ParamTree).use_tps, 'last');

    const [p0, p1] = result.passes;
    // Regular grid stored y fastest: reordered x fastest, error keys following their vectors.
    assert.deepStrictEqual(p0.shape_grid, [66, 78]);
    assert.deepStrictEqual(Array.from(p0.xs.subarray(0, 3)), [32, 64, 96]);
    assert.deepStrictEqual(Array.from(p0.ys.subarray(0, 3)), [32, 32, 32]);
    assert.equal(p0.errors.keys.length, 693);
    assert.equal(p0.errors.codes[0], UNKNOWN_ERROR_CODE);
    for (let i = 0; i < p0.errors.keys.length; i++) {
      assert.ok(p0.errors.keys[i] >= 0 && p0.errors.keys[i] < p0.xs.length);
    }
    assert.equal(p0.errors.values[0], 'correl < correl_min');
    assert.ok(p0.extra?.deltaxs_approx !== undefined);

    // Pass 1 positions are not a complete grid: kept as stored.
    assert.equal(p1.xs.length, 21014);
    assert.deepStrictEqual(p1.shape_grid, [1, 21014]);
    assert.ok(p1.final !== undefined);
    assert.equal(p1.final.ixvecs_final.length, 21014);
    assert.equal(p1.final.iyvecs_final.length, 21014);
    assert.equal(p1.final.deltaxs_final.length, 21014);

    const summary = await readPivSummary(MILESTONE);
    assert.equal(summary.nb_passes, 2);
    assert.equal(summary.passes[1].nb_vectors, 21014);
    assert.ok(summary.passes[1].nb_rejected > 0);
  });

  it('fails clearly on a file that is not HDF5', async function () {
    const path = join(dir, 'not.h5');
    await writeFile(path, './piv_0000a-b.h5');
    await assert.rejects(readPivFile(path), /cannot open HDF5 file .*not\.h5/);
    await assert.rejects(readPivFile(join(dir, 'missing.h5')), /cannot open HDF5 file .*No such file/);
  });
});
