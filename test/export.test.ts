import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportFile } from '../export/formats.js';
import { exportField } from '../export/table.js';
import { formatFloat32 } from '../export/text.js';
import { lookup3, withUserBlock } from '../export/userblock.js';
import { uniformGrid } from '../export/vtk.js';
import { readFloat32, withH5File, writeFloat32 } from '../io/h5.js';
import { readPivFile, writePivFile } from '../io/pivfile.js';
import type { PassResult, PivResult } from '../results/piv_result.js';
import { describeRun, hasPythonH5py, makeTempDir, PYTHON, removeDir, REPO_ROOT, runCli } from './helpers/cli.js';

const META = { program: 'test', version: '0' };
const NX = 8;
const NY = 6;
const N = NX * NY;
const REJECTED = 10;

function pass(nx: number, ny: number, step: number, withFinal: boolean): PassResult {
  const n = nx * ny;
  const xs = Float32Array.from({ length: n }, (_, i) => (i % nx) * step + (step - 1) / 2);
  const ys = Float32Array.from({ length: n }, (_, i) => Math.floor(i / nx) * step + (step - 1) / 2);
  // Values that need several digits, to test the round trip of the text formats.
  const dx = Float32Array.from({ length: n }, (_, i) => 2 + i / 3);
  const dy = Float32Array.from({ length: n }, (_, i) => -1 - i / 7);
  const correl = Float32Array.from({ length: n }, (_, i) => 0.5 + i / 1000);
  const out: PassResult = {
    xs, ys, deltaxs: dx, deltays: dy, correls_max: correl,
    errors: { keys: new Int32Array(0), values: [], codes: new Int32Array(0) }, shape_grid: [ny, nx],
  };
  if (withFinal) {
    out.final = { ixvecs_final: xs.map(Math.round), iyvecs_final: ys.map(Math.round), deltaxs_final: dx.slice(), deltays_final: dy.slice() };
    dx[REJECTED] = Number.NaN;
    dy[REJECTED] = Number.NaN;
    correl[REJECTED] = Number.NaN;
    out.errors = { keys: Int32Array.from([REJECTED]), values: ['correl < correl_min'], codes: Int32Array.from([2]) };
  }
  return out;
}

/** Two passes (4 x 3 grid, then 8 x 6 with a final grid), image 96 x 128, vector 10 rejected. */
function twoPassResult(): PivResult {
  return {
    names: ['a.png', 'b.png'], paths: ['/x/a.png', '/x/b.png'], shape_images: [96, 128], params: {},
    passes: [pass(4, 3, 32, false), pass(NX, NY, 16, true)],
  };
}

/** Comment lines, header and rows of a delimited file. */
function parseDelimited(text: string, separator: string): { comments: string[]; header: string[]; rows: number[][] } {
  const lines = text.trimEnd().split('\n');
  const comments = lines.filter((l) => l.startsWith('#'));
  const data = lines.filter((l) => !l.startsWith('#'));
  return { comments, header: data[0].split(separator), rows: data.slice(1).map((l) => l.split(separator).map(Number)) };
}

function python(script: string): unknown {
  const r = spawnSync(PYTHON, ['-c', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

describe('export: PIV results in other formats', function () {
  this.timeout(120_000);
  let dir: string;
  let file: string;
  const result = twoPassResult();
  const last = result.passes[1];

  before(async () => {
    dir = await makeTempDir('export');
    file = join(dir, 'piv_01-02.h5');
    await writePivFile(file, result, META);
  });
  after(async () => {
    await removeDir(dir);
  });

  it('formats float32 values with the shortest text that reads back exactly', () => {
    for (const v of [0, 1, -2.5, 1 / 3, 0.1, 123456.789, 1e-7, -3.4028234663852886e38, 2 + 7 / 3]) {
      const f = Math.fround(v);
      const text = formatFloat32(f);
      assert.equal(Math.fround(Number(text)), f, `${v} -> ${text}`);
      assert.ok(text.length <= 15, text);
    }
    assert.equal(formatFloat32(Math.fround(0.1)), '0.1');
    assert.equal(formatFloat32(Number.NaN), 'NaN');
  });

  it('CSV: comment header, columns x, y, dx, dy, valid, correl of the last pass, read back exactly', async () => {
    const out = join(dir, 'last.csv');
    await exportFile(file, out, 'csv');
    const { comments, header, rows } = parseDelimited(await readFile(out, 'utf8'), ',');
    assert.deepEqual(header, ['x', 'y', 'dx', 'dy', 'valid', 'correl']);
    assert.match(comments.join('\n'), /pass 1 \(\/piv1; passes numbered 0 to 1\)/);
    assert.match(comments.join('\n'), /in px/);
    assert.equal(rows.length, N);
    for (let i = 0; i < N; i++) {
      const [x, y, dx, dy, valid, correl] = rows[i];
      assert.equal(x, last.xs[i]);
      assert.equal(y, last.ys[i]);
      if (i === REJECTED) {
        assert.ok(Number.isNaN(dx) && Number.isNaN(dy) && Number.isNaN(correl));
        assert.equal(valid, 0);
      } else {
        assert.equal(Math.fround(dx), last.deltaxs[i]);
        assert.equal(Math.fround(dy), last.deltays[i]);
        assert.equal(Math.fround(correl), last.correls_max[i]);
        assert.equal(valid, 1);
      }
    }
  });

  it('TSV of another pass, and the final grid with --final', async () => {
    await exportFile(file, join(dir, 'pass0.tsv'), 'tsv', { pass: 0 });
    const tsv = parseDelimited(await readFile(join(dir, 'pass0.tsv'), 'utf8'), '\t');
    assert.equal(tsv.rows.length, 12);
    assert.equal(tsv.rows[1][0], 47.5);
    await exportFile(file, join(dir, 'final.csv'), 'csv', { final: true });
    const final = parseDelimited(await readFile(join(dir, 'final.csv'), 'utf8'), ',');
    assert.deepEqual(final.header, ['x', 'y', 'dx', 'dy']);
    assert.equal(Math.fround(final.rows[REJECTED][2]), Math.fround(2 + REJECTED / 3), 'the final grid has no NaN');
    assert.equal(final.rows[1][0], 24);
    await assert.rejects(exportFile(file, join(dir, 'bad.csv'), 'csv', { pass: 5 }), /--pass 5 is out of range/);
  });

  it('calibration: positions in m, velocities in m/s, said in the header', async () => {
    const out = join(dir, 'calibrated.csv');
    await exportFile(file, out, 'csv', { calibration: { pxPerM: 1000, dt: 0.01 } });
    const { comments, header, rows } = parseDelimited(await readFile(out, 'utf8'), ',');
    assert.deepEqual(header, ['x', 'y', 'u', 'v', 'valid', 'correl']);
    assert.match(comments.join('\n'), /in m \(= pixels \/ 1000 px\/m\)/);
    assert.match(comments.join('\n'), /in m\/s \(calibration: 1000 px\/m, dt = 0.01 s\)/);
    // Vector 0: x = 7.5 px = 0.0075 m; dx = 2 px in 0.01 s at 1000 px/m = 0.2 m/s.
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
    assert.ok(close(rows[0][0], 0.0075), `x ${rows[0][0]}`);
    assert.ok(close(rows[0][2], 0.2), `u ${rows[0][2]}`);
    assert.ok(close(rows[3][3], (-1 - 3 / 7) / 1000 / 0.01), `v ${rows[3][3]}`);
    const dtOnly = exportField(result, file, { calibration: { dt: 0.5 } });
    assert.equal(dtOnly.vectorUnit, 'px/s');
    assert.equal(dtOnly.u[0], 4);
    const lengthOnly = exportField(result, file, { calibration: { pxPerM: 100 } });
    assert.equal(lengthOnly.vectorUnit, 'm');
    assert.throws(() => exportField(result, file, { calibration: { dt: -1 } }), /--dt/);
  });

  it('VTK: STRUCTURED_POINTS for a uniform grid, STRUCTURED_GRID otherwise; one value per point', async () => {
    await exportFile(file, join(dir, 'last.vtk'), 'vtk');
    const lines = (await readFile(join(dir, 'last.vtk'), 'utf8')).trimEnd().split('\n');
    assert.equal(lines[0], '# vtk DataFile Version 3.0');
    assert.equal(lines[2], 'ASCII');
    assert.equal(lines[3], 'DATASET STRUCTURED_POINTS');
    assert.equal(lines[4], `DIMENSIONS ${NX} ${NY} 1`);
    assert.equal(lines[5], 'ORIGIN 7.5 7.5 0');
    assert.equal(lines[6], 'SPACING 16 16 1');
    assert.equal(lines[7], `POINT_DATA ${N}`);
    assert.equal(lines[8], 'VECTORS displacement float');
    const vectors = lines.slice(9, 9 + N).map((l) => l.split(' ').map(Number));
    assert.deepEqual(vectors[0], [2, -1, 0]);
    assert.deepEqual(vectors[REJECTED], [0, 0, 0], 'NaN is not valid in VTK ASCII: 0 with valid = 0');
    assert.equal(lines[9 + N], 'SCALARS valid int 1');
    assert.equal(lines[11 + N + REJECTED], '0');
    assert.ok(lines.includes('SCALARS correl float 1'));

    const irregular = twoPassResult();
    irregular.passes[1].xs[NX - 1] = 118;
    assert.equal(uniformGrid(irregular.passes[1].xs, irregular.passes[1].ys, NX, NY), undefined);
    await writePivFile(join(dir, 'irregular.h5'), irregular, META);
    await exportFile(join(dir, 'irregular.h5'), join(dir, 'irregular.vtk'), 'vtk', { calibration: { pxPerM: 2, dt: 1 } });
    const grid = (await readFile(join(dir, 'irregular.vtk'), 'utf8')).split('\n');
    assert.equal(grid[3], 'DATASET STRUCTURED_GRID');
    assert.equal(grid[5], `POINTS ${N} float`);
    assert.equal(grid[6], '3.75 3.75 0', 'positions in m');
    assert.equal(grid[6 + N], `POINT_DATA ${N}`);
    assert.equal(grid[7 + N], 'VECTORS velocity float');
  });

  it('lookup3 checksum (HDF5 superblock v2) matches the reference values', () => {
    assert.equal(lookup3(new Uint8Array(0), 0), 0xdeadbeef);
    const text = new TextEncoder().encode('Four score and seven years ago');
    assert.equal(lookup3(text, 0), 0x17770551);
    assert.equal(lookup3(text, 1), 0xcd628161);
  });

  it('a user block moves an HDF5 file without breaking it', async () => {
    const plain = join(dir, 'plain.h5');
    await withH5File(plain, 'w', (f) => {
      writeFloat32(f, 'a', [1, 2, 3]);
    });
    const bytes = await readFile(plain);
    const moved = withUserBlock(bytes, new TextEncoder().encode('hello'), 1024);
    assert.equal(moved.length, bytes.length + 1024);
    const out = join(dir, 'moved.h5');
    await writeFile(out, moved);
    const back = await withH5File(out, 'r', (f) => readFloat32(f, 'a'));
    assert.deepEqual(Array.from(back!), [1, 2, 3]);
    assert.throws(() => withUserBlock(bytes, new Uint8Array(0), 300), /power of 2/);
  });

  it('MATLAB v7.3: 512-byte user block, MATLAB classes, transposed matrices; h5py reads it', async () => {
    const out = join(dir, 'last.mat');
    await exportFile(file, out, 'mat', { calibration: { pxPerM: 1000, dt: 0.01 } });
    const bytes = await readFile(out);
    assert.ok(bytes.subarray(0, 19).toString('latin1') === 'MATLAB 7.3 MAT-file', bytes.subarray(0, 40).toString('latin1'));
    assert.deepEqual([...bytes.subarray(124, 128)], [0x00, 0x02, 0x49, 0x4d], 'version 0x0200 and IM');
    assert.deepEqual([...bytes.subarray(512, 516)], [0x89, 0x48, 0x44, 0x46], 'HDF5 superblock at 512');
    // The HDF5 library (here through h5wasm) finds the superblock after the user block.
    const x = await withH5File(out, 'r', (f) => readFloat32(f, 'x'));
    assert.equal(x!.length, N);
    // Column-major [NY, NX]: element (row j, column i) at i * NY + j.
    assert.equal(x![1 * NY + 0], Math.fround(last.xs[1] / 1000));
    if (!hasPythonH5py()) {
      console.log('      (skipped the h5py check: /usr/bin/python3 cannot import h5py)');
      return;
    }
    const info = python(`
import h5py, json, numpy as np
f = h5py.File(${JSON.stringify(out)}, 'r')
u = f['u'][...].T
print(json.dumps({
  'userblock': f.userblock_size,
  'keys': sorted(f.keys()),
  'shape': list(u.shape),
  'class_u': f['u'].attrs['MATLAB_class'].decode(),
  'class_valid': f['valid'].attrs['MATLAB_class'].decode(),
  'u01': float(u[0, 1]),
  'valid': int(f['valid'][...].T.ravel()[${REJECTED}]),
  'units': ''.join(chr(c) for c in f['units_vector'][:, 0]),
  'dt': float(f['dt'][0, 0]),
}))`) as Record<string, unknown>;
    assert.equal(info.userblock, 512);
    assert.deepEqual(info.keys, ['correl', 'description', 'dt', 'program', 'px_per_m', 'u', 'units_position', 'units_vector', 'v', 'valid', 'x', 'y']);
    assert.deepEqual(info.shape, [NY, NX]);
    assert.equal(info.class_u, 'single');
    assert.equal(info.class_valid, 'logical');
    assert.ok(Math.abs((info.u01 as number) - (2 + 1 / 3) / 10) < 1e-6);
    assert.equal(info.valid, 0);
    assert.equal(info.units, 'm/s');
    assert.equal(info.dt, 0.01);
  });

  it('netCDF-4 in UVmat civdata layout: dimension scale nb_vec_1, Civ1_* variables', async () => {
    const out = join(dir, 'last.nc');
    await exportFile(file, out, 'netcdf', { calibration: { dt: 0.002, pxPerM: 5 } });
    const back = await withH5File(out, 'r', (f) => ({
      X: readFloat32(f, 'Civ1_X')!, Y: readFloat32(f, 'Civ1_Y')!, U: readFloat32(f, 'Civ1_U')!, V: readFloat32(f, 'Civ1_V')!,
      FF: readFloat32(f, 'Civ1_FF')!, F: readFloat32(f, 'Civ1_F')!, dt: f.attrs.Civ1_Dt?.value, conventions: f.attrs.Conventions?.value,
    }));
    assert.equal(back.conventions, 'uvmat/civdata');
    assert.equal(back.dt, 0.002);
    assert.equal(back.X[1], last.xs[1] + 1, 'UVmat: 1-based columns');
    assert.equal(back.Y[NX], 96 - last.ys[NX], 'UVmat: y upwards');
    assert.equal(back.U[0], 2, 'pixels whatever the calibration (UVmat calibrates itself)');
    assert.equal(back.V[0], 1, 'V upwards');
    assert.equal(back.FF[REJECTED], 1);
    assert.equal(back.U[REJECTED], 0);
    assert.equal(back.F[REJECTED], 2, 'the error code');
    await assert.rejects(exportFile(file, join(dir, 'x.nc'), 'netcdf', { final: true }), /--final is not available for netcdf/);
    if (hasPythonH5py()) {
      const dims = python(`
import h5py, json
f = h5py.File(${JSON.stringify(out)}, 'r')
d = f['nb_vec_1']
print(json.dumps({'class': d.attrs['CLASS'].decode(), 'name': d.attrs['NAME'].decode(), 'scale': f['Civ1_U'].dims[0][0].name}))`) as Record<string, string>;
      assert.equal(dims.class, 'DIMENSION_SCALE');
      assert.equal(dims.name, `This is a netCDF dimension but not a netCDF variable.${String(N).padStart(10)}`);
      assert.equal(dims.scale, '/nb_vec_1');
    } else {
      console.log('      (skipped the h5py check: /usr/bin/python3 cannot import h5py)');
    }
    const ncdump = spawnSync('ncdump', ['-h', out], { encoding: 'utf8' });
    if (ncdump.error !== undefined) {
      console.log('      (skipped the ncdump check: ncdump (netcdf-bin) is not installed)');
      return;
    }
    assert.equal(ncdump.status, 0, ncdump.stderr);
    assert.match(ncdump.stdout, new RegExp(`nb_vec_1 = ${N} ;`));
    assert.match(ncdump.stdout, /float Civ1_X\(nb_vec_1\) ;/);
    assert.match(ncdump.stdout, /int Civ1_FF\(nb_vec_1\) ;/);
    assert.match(ncdump.stdout, /:Conventions = "uvmat\/civdata" ;/);
  });

  it('command line: a directory gives one file per result; usage errors exit with 2', async () => {
    const results = join(dir, 'series.piv');
    await mkdir(results, { recursive: true });
    for (const k of [1, 2]) await writePivFile(join(results, `piv_0${k}-0${k + 1}.h5`), twoPassResult(), META);
    const out = join(dir, 'csvs');
    const args = ['export', results, '--format', 'csv', '-o', out, '-q'];
    const run = await runCli(args);
    assert.equal(run.code, 0, describeRun(args, run));
    assert.deepEqual((await readdir(out)).sort(), ['piv_01-02.csv', 'piv_02-03.csv']);
    const single = await runCli(['export', join(results, 'piv_01-02.h5'), '-f', 'vtk', '-o', join(dir, 'one.vtk'), '--final']);
    assert.equal(single.code, 0, single.stderr);
    assert.equal(single.stdout.trim(), join(dir, 'one.vtk'));
    const badFormat = await runCli(['export', results, '--format', 'xls', '-o', out]);
    assert.equal(badFormat.code, 2);
    const badDt = await runCli(['export', results, '--format', 'csv', '--dt', '-1', '-o', out]);
    assert.equal(badDt.code, 2);
    assert.match(badDt.stderr, /--dt/);
  });

  it('on a real Karman result: CSV and VTK match the result file', async () => {
    const images = join(dir, 'Karman');
    await cp(join(REPO_ROOT, 'samples', 'Karman'), images, { recursive: true });
    const pivArgs = ['piv', images, '-o', join(dir, 'Karman.piv'), '-q'];
    const piv = await runCli(pivArgs, { timeoutMs: 110_000 });
    assert.equal(piv.code, 0, describeRun(pivArgs, piv));
    const resultFile = join(dir, 'Karman.piv', 'piv_01-02.h5');
    const real = await readPivFile(resultFile);
    const p = real.passes[real.passes.length - 1];
    const out = join(dir, 'karman.csv');
    const run = await runCli(['export', resultFile, '--format', 'csv', '-o', out]);
    assert.equal(run.code, 0, run.stderr);
    const { rows } = parseDelimited(await readFile(out, 'utf8'), ',');
    assert.equal(rows.length, p.xs.length);
    rows.forEach((row, i) => {
      assert.equal(row[0], p.xs[i]);
      assert.equal(row[1], p.ys[i]);
      if (Number.isNaN(p.deltaxs[i])) assert.ok(Number.isNaN(row[2]));
      else assert.equal(Math.fround(row[2]), p.deltaxs[i]);
    });
    await exportFile(resultFile, join(dir, 'karman.vtk'), 'vtk');
    const vtk = await readFile(join(dir, 'karman.vtk'), 'utf8');
    assert.match(vtk, new RegExp(`POINT_DATA ${p.xs.length}\n`));
    assert.match(vtk, new RegExp(`DIMENSIONS ${p.shape_grid[1]} ${p.shape_grid[0]} 1\n`));
  });
});
