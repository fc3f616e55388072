/** Writing PIV result files (layout: pivfile_layout.ts), atomically, from a shared head. */
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { FinalField, PassResult, PivResult } from '../results/piv_result.js';
import { tempPathFor, writeAtomic } from './atomic.js';
import {
  type H5File,
  type H5Group,
  createGroup,
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
import { CLASS_NAME, CONVENTIONS, MODULE_NAME, PASS_CLASS_NAME, RESERVED_NAMES, VECTOR_KEYS, type PivFileMeta } from './pivfile_layout.js';
import { pyTupleRepr } from './pyrepr.js';

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
