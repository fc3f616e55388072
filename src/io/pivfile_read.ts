/**
 * Reading PIV result files: ours (pivfile_layout.ts) and Fluidimage's own (int64/float64
 * datasets, no codes, no shape_grid, grids stored y fastest).
 */
import type { FinalField, PassErrors, PassResult, PivResult } from '../results/piv_result.js';
import { notPivSentence } from './kinds.js';
import {
  type H5File,
  type H5Group,
  childNames,
  getGroup,
  isNumericDataset,
  readFloat32,
  readInt32,
  readNumberAttr,
  readNumbers,
  readParamTree,
  readStringAttr,
  readStrings,
  withH5File,
} from './h5.js';
import { FINAL_KEYS, RESERVED_NAMES, UNKNOWN_ERROR_CODE, type VectorKey } from './pivfile_layout.js';
import { parsePyStrings } from './pyrepr.js';

/** Root attributes that are not part of PivResult. */
export interface PivFileInfo {
  class_name?: string;
  conventions?: string;
  program?: string;
  program_version?: string;
}

/**
 * Read a PIV result file written by writePivFile or by Fluidimage. For Fluidimage's files:
 * missing datasets become NaN-filled (per-vector) or empty arrays, missing error codes are
 * UNKNOWN_ERROR_CODE; without `shape_grid` the grid is inferred from xs/ys when they form a
 * complete regular grid, reordered to x fastest if stored otherwise (error keys remapped),
 * else it is [1, n]. Other numeric datasets of a pass are returned in `extra`, as stored.
 */
export async function readPivFile(path: string): Promise<PivResult> {
  return (await readPivFileWithInfo(path)).result;
}

/** readPivFile plus the root attributes that describe the file. */
export async function readPivFileWithInfo(path: string): Promise<{ result: PivResult; info: PivFileInfo }> {
  return withH5File(path, 'r', (file) => readLayout(file, path));
}

function readLayout(file: H5File, path: string): { result: PivResult; info: PivFileInfo } {
  const nbPasses = readNumberAttr(file, 'nb_passes') ?? countPassGroups(file);
  if (nbPasses === 0 || getGroup(file, 'piv0') === undefined) {
    const className = readStringAttr(file, 'class_name');
    throw Object.assign(new Error(className === undefined ? `${path}: not a PIV result file (no /piv0 group)` : notPivSentence(path, className)), { code: 'ERR_NOT_PIV' });
  }
  const params = getGroup(file, 'params');
  const couple = getGroup(file, 'couple');
  const passes: PassResult[] = [];
  for (let index = 0; index < nbPasses; index++) {
    const group = getGroup(file, `piv${index}`);
    if (group === undefined) throw new Error(`${path}: missing group /piv${index}`);
    passes.push(readPass(group));
  }
  const result: PivResult = {
    names: readPair(couple, 'names'),
    paths: readPair(couple, 'paths'),
    shape_images: readShapeImages(couple),
    passes,
    params: params === undefined ? {} : readParamTree(params),
  };
  const info: PivFileInfo = {};
  const fields: [keyof PivFileInfo, string][] = [
    ['class_name', 'class_name'],
    ['conventions', 'Conventions'],
    ['program', 'program'],
    ['program_version', 'program_version'],
  ];
  for (const [key, attr] of fields) {
    const value = readStringAttr(file, attr);
    if (value !== undefined) info[key] = value;
  }
  return { result, info };
}

/** Number of consecutive /piv{k} groups (for files without nb_passes). */
function countPassGroups(file: H5File): number {
  let n = 0;
  while (getGroup(file, `piv${n}`) !== undefined) n++;
  return n;
}

/** couple/names or couple/paths: a Python tuple repr, or a string array; ['', ''] if absent. */
function readPair(couple: H5Group | undefined, name: string): [string, string] {
  if (couple === undefined) return ['', ''];
  const attr = couple.attrs[name];
  const value: unknown = attr?.value;
  let items: string[] | undefined;
  if (typeof value === 'string') items = parsePyStrings(value) ?? [value];
  else if (Array.isArray(value)) items = value.map(String);
  return [items?.[0] ?? '', items?.[1] ?? ''];
}

function readShapeImages(couple: H5Group | undefined): [number, number] {
  const shape = couple === undefined ? undefined : readNumbers(couple, 'shape_images');
  return shape !== undefined && shape.length >= 2 ? [shape[0], shape[1]] : [0, 0];
}

function readPass(group: H5Group): PassResult {
  const xs = readFloat32(group, 'xs') ?? new Float32Array(0);
  const n = xs.length;
  const vector = (key: VectorKey): Float32Array => {
    const data = readFloat32(group, key);
    return data !== undefined && data.length === n ? data : new Float32Array(n).fill(Number.NaN);
  };
  let pass: PassResult = {
    xs,
    ys: vector('ys'),
    deltaxs: vector('deltaxs'),
    deltays: vector('deltays'),
    correls_max: vector('correls_max'),
    errors: readErrors(group),
    shape_grid: [1, n],
  };
  const stored = readNumbers(group, 'shape_grid');
  if (stored !== undefined && stored.length === 2 && stored[0] * stored[1] === n) {
    pass.shape_grid = [stored[0], stored[1]];
  } else {
    pass = withInferredGrid(pass);
  }

  const extra: Record<string, Float32Array> = {};
  const final = readFinal(group, extra);
  if (final !== undefined) pass.final = final;
  for (const name of childNames(group).datasets) {
    if (RESERVED_NAMES.has(name) || !isNumericDataset(group, name)) continue;
    const data = readFloat32(group, name);
    if (data !== undefined) extra[name] = data;
  }
  if (Object.keys(extra).length > 0) pass.extra = extra;
  return pass;
}

function readErrors(group: H5Group): PassErrors {
  const errors = getGroup(group, 'errors');
  const keys = (errors && readInt32(errors, 'keys')) ?? new Int32Array(0);
  const values = (errors && readStrings(errors, 'values')) ?? [];
  const codes = (errors && readInt32(errors, 'codes')) ?? new Int32Array(0);
  const n = keys.length;
  return {
    keys,
    values: values.length === n ? values : Array.from({ length: n }, (_, i) => values[i] ?? ''),
    codes: codes.length === n ? codes : new Int32Array(n).fill(UNKNOWN_ERROR_CODE),
  };
}

/**
 * The final field, from flattened coordinates (ours: x fastest; Fluidimage's: y fastest),
 * or from grid axes. Coordinates that do not form a regular grid go to `extra` instead.
 */
function readFinal(group: H5Group, extra: Record<string, Float32Array>): FinalField | undefined {
  const arrays = FINAL_KEYS.map((key) => readFloat32(group, key));
  const [ixs, iys, dxs, dys] = arrays;
  if (ixs === undefined || iys === undefined || dxs === undefined || dys === undefined) {
    FINAL_KEYS.forEach((key, i) => {
      const data = arrays[i];
      if (data !== undefined) extra[key] = data;
    });
    return undefined;
  }
  const n = dxs.length;
  if (dys.length === n && ixs.length * iys.length === n && !(ixs.length === n && iys.length === n)) {
    // Grid axes (flattened coordinates of more than one point have n * n elements).
    return { ...expandAxes(ixs, iys), deltaxs_final: dxs, deltays_final: dys };
  }
  const grid = dys.length === n && ixs.length === n && iys.length === n ? inferGrid(ixs, iys) : undefined;
  if (grid === undefined) {
    Object.assign(extra, { ixvecs_final: ixs, iyvecs_final: iys, deltaxs_final: dxs, deltays_final: dys });
    return undefined;
  }
  return {
    ...expandAxes(grid.ux, grid.uy),
    deltaxs_final: permute(dxs, grid.perm),
    deltays_final: permute(dys, grid.perm),
  };
}

/** Per-point coordinates (x fastest) of the grid ux x uy, as FinalField holds them. */
function expandAxes(ux: ArrayLike<number>, uy: ArrayLike<number>): { ixvecs_final: Float32Array; iyvecs_final: Float32Array } {
  const nx = ux.length;
  const ny = uy.length;
  const ixs = new Float32Array(nx * ny);
  const iys = new Float32Array(nx * ny);
  for (let iy = 0; iy < ny; iy++) {
    for (let ix = 0; ix < nx; ix++) {
      ixs[iy * nx + ix] = ux[ix];
      iys[iy * nx + ix] = uy[iy];
    }
  }
  return { ixvecs_final: ixs, iyvecs_final: iys };
}

/** A complete regular grid: sorted axes, and perm[new index] = stored index (null: same). */
interface GridOrder {
  ux: number[];
  uy: number[];
  perm: Int32Array | null;
}

/** Recognise positions that fill a regular grid exactly once, whatever their order. */
export function inferGrid(xs: ArrayLike<number>, ys: ArrayLike<number>): GridOrder | undefined {
  const n = xs.length;
  if (n === 0 || ys.length !== n) return undefined;
  const ux = [...new Set(Array.from(xs))].sort((a, b) => a - b);
  const uy = [...new Set(Array.from(ys))].sort((a, b) => a - b);
  if (ux.length * uy.length !== n) return undefined;
  const indexX = new Map(ux.map((v, i) => [v, i]));
  const indexY = new Map(uy.map((v, i) => [v, i]));
  const perm = new Int32Array(n).fill(-1);
  let identity = true;
  for (let i = 0; i < n; i++) {
    const ix = indexX.get(xs[i]);
    const iy = indexY.get(ys[i]);
    if (ix === undefined || iy === undefined) return undefined;
    const k = iy * ux.length + ix;
    if (perm[k] !== -1) return undefined;
    perm[k] = i;
    if (k !== i) identity = false;
  }
  return { ux, uy, perm: identity ? null : perm };
}

function permute(data: Float32Array, perm: Int32Array | null): Float32Array {
  if (perm === null) return data;
  const out = new Float32Array(perm.length);
  for (let i = 0; i < perm.length; i++) out[i] = data[perm[i]];
  return out;
}

/** Give a pass without stored shape_grid its grid shape, reordered x fastest if needed. */
function withInferredGrid(pass: PassResult): PassResult {
  const grid = inferGrid(pass.xs, pass.ys);
  if (grid === undefined) return pass;
  const shape: [number, number] = [grid.uy.length, grid.ux.length];
  const { perm } = grid;
  if (perm === null) return { ...pass, shape_grid: shape };
  const newIndex = new Int32Array(perm.length);
  perm.forEach((old, i) => {
    newIndex[old] = i;
  });
  return {
    ...pass,
    xs: permute(pass.xs, perm),
    ys: permute(pass.ys, perm),
    deltaxs: permute(pass.deltaxs, perm),
    deltays: permute(pass.deltays, perm),
    correls_max: permute(pass.correls_max, perm),
    errors: { ...pass.errors, keys: pass.errors.keys.map((key) => (key >= 0 && key < perm.length ? newIndex[key] : key)) },
    shape_grid: shape,
  };
}
