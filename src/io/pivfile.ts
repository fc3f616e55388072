/**
 * PIV result files in Fluidimage's `MultipassPIVResults v1` HDF5 layout:
 *
 *   /            attrs class_name, module_name, Conventions, nb_passes, program, program_version
 *   /params      the parameter tree (groups for children, attributes for values)
 *   /couple      attrs names, paths (Python tuple reprs, as Fluidimage writes and evals them);
 *                dataset shape_images = [ny, nx]
 *   /piv{k}      attrs class_name="HeavyPIVResults", module_name;
 *                xs, ys, deltaxs, deltays, correls_max (float32), shape_grid = [ny, nx],
 *                errors/{keys int32, values strings, codes int32},
 *                last pass: ixvecs_final, iyvecs_final, deltaxs_final, deltays_final (float32,
 *                flattened regular grid, x fastest), plus any `extra` float32 datasets.
 *
 * The reader also takes Fluidimage's own files (int64/float64 datasets, no codes, no
 * shape_grid, grids stored y fastest): see readPivFile.
 */
import type { FinalField, PassErrors, PassResult, PivResult } from '../works/piv/types.js';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tempPathFor, writeAtomic } from './atomic.js';
import { notPivSentence } from './kinds.js';
import {
  type H5File,
  type H5Group,
  childNames,
  createGroup,
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
  writeBytesAttr,
  writeFloat32,
  writeInt32,
  writeInt64,
  writeInt64Attr,
  writeParamTree,
  writeStringAttr,
  writeStrings,
} from './h5.js';

export const CLASS_NAME = 'MultipassPIVResults';
export const MODULE_NAME = 'fluidimage.data_objects.piv';
export const CONVENTIONS = 'fluidimage.data_objects.piv.MultipassPIVResults v1';
/** class_name of each /piv{k} group in Fluidimage's files. */
const PASS_CLASS_NAME = 'HeavyPIVResults';

/** Error code given to errors read from files that store none (Fluidimage's own). */
export const UNKNOWN_ERROR_CODE = -1;

/** Who wrote the file (root attributes `program`, `program_version`). */
export interface PivFileMeta {
  program: string;
  version: string;
}

/** Per-vector datasets of a pass, in the order they are written. */
const VECTOR_KEYS = ['xs', 'ys', 'deltaxs', 'deltays', 'correls_max'] as const;
type VectorKey = (typeof VECTOR_KEYS)[number];
const FINAL_KEYS = ['ixvecs_final', 'iyvecs_final', 'deltaxs_final', 'deltays_final'] as const;
/** Names in a pass group that `extra` datasets may not take. */
const RESERVED_NAMES: ReadonlySet<string> = new Set<string>([
  ...VECTOR_KEYS,
  ...FINAL_KEYS,
  'shape_grid',
  'errors',
]);

// =============================================================================================
// Writing

/** Write `result` to `path` atomically (temporary file renamed when complete). */
export async function writePivFile(path: string, result: PivResult, meta: PivFileMeta): Promise<void> {
  validatePivResult(result);
  const head = await headTemplate(path, result, meta);
  await writeAtomic(path, async (tmpPath) => {
    await writeFile(tmpPath, head);
    await withH5File(tmpPath, 'a', (file) => writePairLayout(file, result));
  });
}

/**
 * The part of a result file shared by every result of a job (root attributes, /params) as
 * the bytes of a small HDF5 file, made once and copied as the start of each result: its
 * ~70 attributes and ~12 groups were a third of the time to write a result, and opening a
 * copy costs less than creating a file. The last few heads are kept (one per job in
 * practice; key: the parameters and who writes).
 */
const heads = new Map<string, Uint8Array>();
const MAX_HEADS = 4;

async function headTemplate(path: string, result: PivResult, meta: PivFileMeta): Promise<Uint8Array> {
  const key = JSON.stringify([meta.program, meta.version, result.passes.length, result.params]);
  let head = heads.get(key);
  if (head === undefined) {
    // Made next to the result (a directory we can write), read back, removed.
    const tmpPath = tempPathFor(path);
    try {
      await withH5File(tmpPath, 'w', (file) => writeHeadLayout(file, result, meta));
      head = new Uint8Array(await readFile(tmpPath));
    } finally {
      await rm(tmpPath, { force: true });
    }
    if (heads.size >= MAX_HEADS) heads.delete(heads.keys().next().value as string);
    heads.set(key, head);
  }
  return head;
}

/** Throw a descriptive error when array lengths disagree, before any file is created. */
export function validatePivResult(result: PivResult): void {
  if (result.passes.length === 0) throw new Error('PIV result without passes');
  result.passes.forEach((pass, index) => {
    const where = `pass ${index}`;
    const [ny, nx] = pass.shape_grid;
    const n = pass.xs.length;
    if (ny * nx !== n) throw new Error(`${where}: shape_grid ${ny}x${nx} does not match ${n} vectors`);
    for (const key of VECTOR_KEYS) {
      if (pass[key].length !== n) throw new Error(`${where}: ${key} has ${pass[key].length} values, expected ${n}`);
    }
    const { keys, values, codes } = pass.errors;
    if (values.length !== keys.length || codes.length !== keys.length) {
      throw new Error(`${where}: errors keys/values/codes lengths differ`);
    }
    for (const key of keys) if (key < 0 || key >= n) throw new Error(`${where}: error key ${key} out of range`);
    if (pass.final !== undefined) finalShape(pass.final, where);
    for (const name of Object.keys(pass.extra ?? {})) {
      if (RESERVED_NAMES.has(name) || name.includes('/') || name === '') {
        throw new Error(`${where}: extra dataset name ${JSON.stringify(name)} is reserved or invalid`);
      }
    }
  });
}

/**
 * [ny, nx] of a final field. The type holds per-point coordinates (all lengths equal, the
 * grid shape is that of the pass); grid axes (lengths nx and ny) are accepted too.
 */
function finalShape(final: FinalField, where: string): [number, number] {
  const nx = final.ixvecs_final.length;
  const ny = final.iyvecs_final.length;
  const n = final.deltaxs_final.length;
  if (final.deltays_final.length !== n) throw new Error(`${where}: deltaxs_final and deltays_final lengths differ`);
  if (nx * ny === n) return [ny, nx];
  if (nx === n && ny === n) return [1, n];
  throw new Error(`${where}: final grid ${ny}x${nx} does not match ${n} values`);
}

/** Root attributes and /params: the same for every result of a job. */
function writeHeadLayout(file: H5File, result: PivResult, meta: PivFileMeta): void {
  writeStringAttr(file, 'class_name', CLASS_NAME);
  writeStringAttr(file, 'module_name', MODULE_NAME);
  writeStringAttr(file, 'Conventions', CONVENTIONS);
  writeInt64Attr(file, 'nb_passes', result.passes.length);
  writeStringAttr(file, 'program', meta.program);
  writeStringAttr(file, 'program_version', meta.version);

  writeParamTree(file, 'params', result.params);
}

/** /couple and the passes: what is proper to one pair. */
function writePairLayout(file: H5File, result: PivResult): void {
  const couple = createGroup(file, 'couple');
  // Fluidimage reads these with eval(attr.decode()): Python tuple reprs as byte strings.
  writeBytesAttr(couple, 'names', pyTupleRepr(result.names));
  writeBytesAttr(couple, 'paths', pyTupleRepr(result.paths));
  writeInt64(couple, 'shape_images', result.shape_images);

  result.passes.forEach((pass, index) => writePass(file, `piv${index}`, pass));
}

function writePass(file: H5File, name: string, pass: PassResult): void {
  const group = createGroup(file, name);
  writeStringAttr(group, 'class_name', PASS_CLASS_NAME);
  writeStringAttr(group, 'module_name', MODULE_NAME);
  for (const key of VECTOR_KEYS) writeFloat32(group, key, pass[key]);
  writeInt64(group, 'shape_grid', pass.shape_grid);

  const errors = createGroup(group, 'errors');
  writeInt32(errors, 'keys', pass.errors.keys);
  writeStrings(errors, 'values', pass.errors.values);
  writeInt32(errors, 'codes', pass.errors.codes);

  if (pass.final !== undefined) writeFinal(group, pass.final);
  for (const [key, data] of Object.entries(pass.extra ?? {})) writeFloat32(group, key, data);
}

/** The final field as flattened coordinates (x fastest), as in Fluidimage's files. */
function writeFinal(group: H5Group, final: FinalField): void {
  const [ny, nx] = finalShape(final, group.path);
  const n = ny * nx;
  let ixs = final.ixvecs_final;
  let iys = final.iyvecs_final;
  if (!(ixs.length === n && iys.length === n)) {
    ixs = new Float32Array(n);
    iys = new Float32Array(n);
    for (let iy = 0; iy < ny; iy++) {
      for (let ix = 0; ix < nx; ix++) {
        ixs[iy * nx + ix] = final.ixvecs_final[ix];
        iys[iy * nx + ix] = final.iyvecs_final[iy];
      }
    }
  }
  writeFloat32(group, 'ixvecs_final', ixs);
  writeFloat32(group, 'iyvecs_final', iys);
  writeFloat32(group, 'deltaxs_final', final.deltaxs_final);
  writeFloat32(group, 'deltays_final', final.deltays_final);
}

// =============================================================================================
// Reading

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

// =============================================================================================
// Summary (for an `info` command)

/** Count, mean, min and max of the finite values (null when there is none). */
export interface Stats {
  count: number;
  mean: number | null;
  min: number | null;
  max: number | null;
}

export interface PivPassSummary {
  index: number;
  nb_vectors: number;
  /** Vectors whose deltaxs or deltays is NaN. */
  nb_rejected: number;
  nb_errors: number;
  shape_grid: [number, number];
  has_final: boolean;
  deltaxs: Stats;
  deltays: Stats;
}

export interface PivSummary extends PivFileInfo {
  path: string;
  nb_passes: number;
  names: [string, string];
  shape_images: [number, number];
  passes: PivPassSummary[];
}

/** A small description of a PIV result file. */
export async function readPivSummary(path: string): Promise<PivSummary> {
  const { result, info } = await readPivFileWithInfo(path);
  return {
    path,
    ...info,
    nb_passes: result.passes.length,
    names: result.names,
    shape_images: result.shape_images,
    passes: result.passes.map(summarizePass),
  };
}

export function summarizePass(pass: PassResult, index: number): PivPassSummary {
  let rejected = 0;
  for (let i = 0; i < pass.deltaxs.length; i++) {
    if (Number.isNaN(pass.deltaxs[i]) || Number.isNaN(pass.deltays[i])) rejected++;
  }
  return {
    index,
    nb_vectors: pass.xs.length,
    nb_rejected: rejected,
    nb_errors: pass.errors.keys.length,
    shape_grid: pass.shape_grid,
    has_final: pass.final !== undefined,
    deltaxs: stats(pass.deltaxs),
    deltays: stats(pass.deltays),
  };
}

/** Statistics of the finite values of `data`. */
export function stats(data: ArrayLike<number>): Stats {
  let count = 0;
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) continue;
    count++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return count === 0 ? { count, mean: null, min: null, max: null } : { count, mean: sum / count, min, max };
}

// =============================================================================================
// Python literals (couple/names and couple/paths)

/** repr() of a Python str (quotes and escapes as Python 3 chooses them). */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\' || ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || (code >= 0x7f && code <= 0xa0)) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** repr() of a Python tuple of str. */
export function pyTupleRepr(items: readonly string[]): string {
  const inner = items.map(pyStrRepr).join(', ');
  return items.length === 1 ? `(${inner},)` : `(${inner})`;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\', "'": "'", '"': '"', n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '',
};

/**
 * Parse a Python tuple or list of string literals (`('a', "b")`, Python 2's `(u'a', u'b')`).
 * Undefined when `text` is not such a literal.
 */
export function parsePyStrings(text: string): string[] | undefined {
  const t = text.trim();
  const close = t.startsWith('(') ? ')' : t.startsWith('[') ? ']' : undefined;
  if (close === undefined || !t.endsWith(close)) return undefined;
  const items: string[] = [];
  let i = 1;
  const end = t.length - 1;
  while (i < end) {
    while (i < end && (t[i] === ' ' || t[i] === ',' || t[i] === '\n')) i++;
    if (i >= end) break;
    let raw = false;
    while (i < end && /[uUbBrR]/.test(t[i])) raw ||= t[i++].toLowerCase() === 'r';
    const quote = t[i];
    if (quote !== "'" && quote !== '"') return undefined;
    i++;
    let s = '';
    while (i < end && t[i] !== quote) {
      if (t[i] !== '\\' || raw) {
        s += t[i++];
        continue;
      }
      const next = t[i + 1] ?? '';
      const hexLength = next === 'x' ? 2 : next === 'u' ? 4 : next === 'U' ? 8 : 0;
      if (hexLength > 0 && /^[0-9a-fA-F]+$/.test(t.slice(i + 2, i + 2 + hexLength))) {
        s += String.fromCodePoint(parseInt(t.slice(i + 2, i + 2 + hexLength), 16));
        i += 2 + hexLength;
      } else if (/[0-7]/.test(next)) {
        const octal = /^[0-7]{1,3}/.exec(t.slice(i + 1))?.[0] ?? '0';
        s += String.fromCodePoint(parseInt(octal, 8));
        i += 1 + octal.length;
      } else if (next in SIMPLE_ESCAPES) {
        s += SIMPLE_ESCAPES[next];
        i += 2;
      } else {
        s += `\\${next}`;
        i += 2;
      }
    }
    if (t[i] !== quote) return undefined;
    i++;
    items.push(s);
  }
  return items;
}
