/**
 * netCDF-4 files in UVmat's "civdata" layout (what UVmat's civ_series writes), so that
 * UVmat and any netCDF reader open them. netCDF-4 is HDF5 with conventions, written here
 * with h5wasm:
 * - a dimension `nb_vec_1` (n vectors) is an HDF5 dimension scale whose NAME attribute is
 *   netCDF's marker for "a dimension but not a variable" (the dataset's values are unused);
 * - each variable is a dataset with that scale attached to its dimension (DIMENSION_LIST);
 * - text attributes are fixed-length ASCII strings (NC_CHAR).
 * Variables (float32 unless said): Civ1_X, Civ1_Y (pixels, UVmat's frame: X = column + 1,
 * Y = number of rows - row, i.e. 1-based and upwards), Civ1_U, Civ1_V (displacement in
 * pixels, V upwards), Civ1_C (correlation), Civ1_F (int32: this program's error code,
 * 0 none), Civ1_FF (int32: 1 rejected, 0 valid; U, V are 0 there). UVmat calibrates
 * itself (its XML files): positions and displacements stay in pixels and dt goes to the
 * global attribute Civ1_Dt.
 */
import { writeAtomic } from '../io/atomic.js';
import { withH5File, type H5Group, type H5Object } from '../io/h5.js';
import { PROGRAM, VERSION } from '../version.js';
import type { ExportField } from './table.js';

const DIMENSION = 'nb_vec_1';
/** netCDF-C's NAME of a dimension scale without coordinate variable (then %10d of the length). */
const DIM_WITHOUT_VARIABLE = 'This is a netCDF dimension but not a netCDF variable.';

function textAttr(target: H5Object, name: string, value: string): void {
  const ascii = value.replace(/[^\x20-\x7e\n]/g, '?');
  target.create_attribute(name, ascii === '' ? ' ' : ascii, null, `A${Math.max(1, ascii.length)}`);
}

function variable(file: H5Group, name: string, data: Float32Array | Int32Array, role: string, units?: string): void {
  const dataset = file.create_dataset({ name, data, shape: [data.length], dtype: data instanceof Float32Array ? '<f' : '<i' });
  dataset.attach_scale(0, DIMENSION);
  textAttr(dataset, 'Role', role);
  if (units !== undefined) textAttr(dataset, 'units', units);
}

/**
 * Writes the pass vectors of `pixels` (an uncalibrated field) as a UVmat civdata netCDF-4
 * file; `dt` (seconds between the images) goes to Civ1_Dt (1 when unknown).
 */
export async function writeNetcdf(path: string, pixels: ExportField, dt?: number): Promise<void> {
  if (pixels.kind !== 'pass' || pixels.valid === undefined || pixels.correl === undefined || pixels.code === undefined) {
    throw Object.assign(new Error('netcdf export is of the vectors of a pass (UVmat civdata), not of the final grid'), { code: 'ERR_USAGE' });
  }
  const { valid, code } = pixels;
  const n = pixels.x.length;
  const nyImage = pixels.shapeImages[0];
  const X = new Float32Array(n);
  const Y = new Float32Array(n);
  const U = new Float32Array(n);
  const V = new Float32Array(n);
  const FF = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    X[i] = pixels.x[i] + 1;
    Y[i] = nyImage - pixels.y[i];
    const ok = valid[i] === 1;
    U[i] = ok ? pixels.u[i] : 0;
    V[i] = ok ? -pixels.v[i] : 0;
    FF[i] = ok ? 0 : 1;
  }
  const correl = Float32Array.from(pixels.correl, (c) => (Number.isFinite(c) ? c : 0));
  await writeAtomic(path, (tmp) => withH5File(tmp, 'w', (file) => {
    textAttr(file, 'Conventions', 'uvmat/civdata');
    textAttr(file, 'Program', `${PROGRAM} ${VERSION}`);
    file.create_attribute('CivStage', 2, null, '<i');
    file.create_attribute('Civ1_Time', 0, null, '<d');
    file.create_attribute('Civ1_Dt', dt ?? 1, null, '<d');
    textAttr(file, 'Civ1_ImageA', pixels.names[0]);
    textAttr(file, 'Civ1_ImageB', pixels.names[1]);
    textAttr(file, 'history', [
      pixels.description[0],
      `${pixels.description[1]}; dimension nb_vec_1 = vectors`,
      'Civ1_X = column + 1, Civ1_Y = number of image rows - row (UVmat: 1-based, upwards), in pixels',
      'Civ1_U, Civ1_V: displacement from the first image to the second in pixels (V upwards), 0 where rejected',
      'Civ1_C: normalised correlation peak; Civ1_F: error code of fluidimage (0 none); Civ1_FF: 1 rejected, 0 valid',
    ].join('\n'));

    const dim = file.create_dataset({ name: DIMENSION, data: new Float32Array(n), shape: [n], dtype: '<f' });
    dim.make_scale(`${DIM_WITHOUT_VARIABLE}${String(n).padStart(10, ' ')}`);
    dim.create_attribute('_Netcdf4Dimid', 0, null, '<i');

    variable(file, 'Civ1_X', X, 'coord_x', 'pixel');
    variable(file, 'Civ1_Y', Y, 'coord_y', 'pixel');
    variable(file, 'Civ1_U', U, 'vector_x', 'pixel');
    variable(file, 'Civ1_V', V, 'vector_y', 'pixel');
    variable(file, 'Civ1_C', correl, 'ancillary');
    variable(file, 'Civ1_F', code, 'warnflag');
    variable(file, 'Civ1_FF', FF, 'errorflag');
  }));
}
