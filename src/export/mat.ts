/**
 * MATLAB v7.3 MAT-files: HDF5 files with a 512-byte user block whose text starts with
 * 'MATLAB 7.3 MAT-file', and MATLAB's conventions for variables: a `MATLAB_class`
 * attribute ('single', 'double', 'logical', 'char'), dimensions stored in reverse order
 * (an ny x nx MATLAB matrix is an HDF5 dataset of shape [nx, ny] in column-major order),
 * char arrays as uint16 with MATLAB_int_decode = 2. `load('piv.mat')` gives x, y, dx, dy
 * (or u, v), valid, correl (and uncertainty_x, uncertainty_y when the result holds them) as ny x nx matrices (rows = image rows), plus the units and
 * a description.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { writeAtomic } from '../io/atomic.js';
import { withH5File, type H5Group, type H5Object } from '../io/h5.js';
import { PROGRAM, VERSION } from '../version.js';
import type { ExportField } from './table.js';
import { withUserBlock } from './userblock.js';

/** The 128-byte MAT-file header (text, subsystem offset, version 0x0200, 'IM'), in 512 bytes. */
export function matHeader(date = new Date()): Uint8Array {
  const header = new Uint8Array(512);
  const stamp = date.toUTCString().replace(/^(\w+), (\d+) (\w+) (\d+) ([\d:]+) GMT$/, '$1 $3 $2 $5 $4');
  const text = `MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: ${stamp} HDF5 schema 1.00 .`.padEnd(116, ' ').slice(0, 116);
  for (let i = 0; i < 116; i++) header[i] = text.charCodeAt(i) & 0x7f;
  header.fill(0x20, 116, 124);
  // Version 0x0200 then the endian indicator, written little-endian as MATLAB does.
  header[124] = 0x00;
  header[125] = 0x02;
  header[126] = 'I'.charCodeAt(0);
  header[127] = 'M'.charCodeAt(0);
  return header;
}

function classAttr(target: H5Object, matlabClass: string): void {
  target.create_attribute('MATLAB_class', matlabClass, null, `A${matlabClass.length}`);
}

/** An ny x nx MATLAB matrix from x-fastest data (transposed to column-major). */
function writeMatrix(file: H5Group, name: string, data: ArrayLike<number>, ny: number, nx: number, kind: 'single' | 'logical'): void {
  const n = nx * ny;
  const out = kind === 'single' ? new Float32Array(n) : new Uint8Array(n);
  for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) out[i * ny + j] = data[j * nx + i];
  const dataset = file.create_dataset({ name, data: out, shape: [nx, ny], dtype: kind === 'single' ? '<f' : '<B' });
  classAttr(dataset, kind);
  if (kind === 'logical') dataset.create_attribute('MATLAB_int_decode', 1, null, '<i');
}

function writeScalar(file: H5Group, name: string, value: number): void {
  const dataset = file.create_dataset({ name, data: new Float64Array([value]), shape: [1, 1], dtype: '<d' });
  classAttr(dataset, 'double');
}

/** A 1 x N char array (UTF-16 code units). */
function writeChar(file: H5Group, name: string, text: string): void {
  const codes = Uint16Array.from({ length: Math.max(1, text.length) }, (_, i) => (i < text.length ? text.charCodeAt(i) : 32));
  const dataset = file.create_dataset({ name, data: codes, shape: [codes.length, 1], dtype: '<H' });
  classAttr(dataset, 'char');
  dataset.create_attribute('MATLAB_int_decode', 2, null, '<i');
}

/** Writes `field` as a MAT-file v7.3 at `path` (atomically). */
export async function writeMat(path: string, field: ExportField): Promise<void> {
  const [ny, nx] = field.shape;
  await writeAtomic(path, async (tmp) => {
    const plain = `${tmp}.h5`;
    try {
      await withH5File(plain, 'w', (file) => {
        writeMatrix(file, 'x', field.x, ny, nx, 'single');
        writeMatrix(file, 'y', field.y, ny, nx, 'single');
        writeMatrix(file, field.uName, field.u, ny, nx, 'single');
        writeMatrix(file, field.vName, field.v, ny, nx, 'single');
        if (field.valid !== undefined) writeMatrix(file, 'valid', field.valid, ny, nx, 'logical');
        if (field.correl !== undefined) writeMatrix(file, 'correl', field.correl, ny, nx, 'single');
        if (field.sigmaX !== undefined) writeMatrix(file, 'uncertainty_x', field.sigmaX, ny, nx, 'single');
        if (field.sigmaY !== undefined) writeMatrix(file, 'uncertainty_y', field.sigmaY, ny, nx, 'single');
        writeChar(file, 'units_position', field.positionUnit);
        writeChar(file, 'units_vector', field.vectorUnit);
        writeChar(file, 'description', field.description.join('\n'));
        writeChar(file, 'program', `${PROGRAM} ${VERSION}`);
        if (field.calibration.pxPerM !== undefined) writeScalar(file, 'px_per_m', field.calibration.pxPerM);
        if (field.calibration.dt !== undefined) writeScalar(file, 'dt', field.calibration.dt);
      });
      await writeFile(tmp, withUserBlock(await readFile(plain), matHeader()));
    } finally {
      await rm(plain, { force: true });
    }
  });
}
