/**
 * Small typed helpers over h5wasm (HDF5 compiled to WebAssembly).
 *
 * - `withH5File` opens a file, runs a synchronous callback and closes it; HDF5 errors throw
 *   (by default h5wasm only prints them and goes on, e.g. a failed open gives file_id -1).
 * - Parameter trees are stored like fluiddyn's ParamContainer: one group per child, one
 *   attribute per value; None as the string "None"; strings as fixed-length byte strings (so
 *   h5py returns `bytes`, which ParamContainer decodes); string lists as fixed-length string
 *   arrays. Booleans become 0/1 integers as in Fluidimage, but stored as int8 (numbers are
 *   int64 or float64) so that this reader can give booleans back.
 * - Numeric datasets are read back converted to the requested typed array, whatever the
 *   stored type (Fluidimage files hold int64 and float64 where this program writes float32).
 *
 * h5wasm pitfalls handled here: its dtype strings are struct-module letters ('<q' int64,
 * '<d' float64, '<b' int8); numpy-like '<i8'/'<f8' silently give int32/float32. Fixed-length
 * strings with ASCII charset are decoded as windows-1252; int64 values come back as bigint.
 */
import h5wasm, { dtype_to_metadata } from 'h5wasm/node';
import type { Attribute, Dataset, File, Group, Metadata } from 'h5wasm/node';
import type { ParamTree, ParamValue } from '../params/tree.js';
import { PROGRAM, VERSION } from '../version.js';

export type H5File = File;
export type H5Group = Group;
export type H5Dataset = Dataset;
/** Something that carries attributes. */
export type H5Object = Group | Dataset;
/** 'r' read, 'w' create or truncate, 'a' read and write an existing file. */
export type H5Mode = 'r' | 'w' | 'a';

type H5ModuleType = Awaited<typeof h5wasm.ready>;

/** HDF5 type classes (H5T_class_t) used here. */
const H5T_INTEGER = 0;
const H5T_FLOAT = 1;
const H5T_STRING = 3;
const H5T_ENUM = 8;
/** H5T_CSET_ASCII: such strings may still hold UTF-8 bytes (h5py writes `bytes` so). */
const CSET_ASCII = 0;

/** What Fluidimage (fluiddyn's ParamContainer) writes for a Python None. */
const NONE_STRING = 'None';

let h5Module: H5ModuleType | undefined;
/** Nesting depth of withH5File calls, to switch the throwing error handler once. */
let throwingDepth = 0;

/** Wait for the WebAssembly module (once); the engine starts it early, so the first result write does not pay for it. */
export async function h5Ready(): Promise<H5ModuleType> {
  h5Module ??= await h5wasm.ready;
  return h5Module;
}

/**
 * Open `path` ('w' truncates or creates it), run `fn`, close the file, return fn's result.
 * `fn` must be synchronous: HDF5 errors are made to throw only while it runs (the handler is
 * global to the wasm module), and nothing else can touch h5wasm in between.
 */
export async function withH5File<T>(path: string, mode: H5Mode, fn: (file: H5File) => T): Promise<T> {
  const mod = await h5Ready();
  if (throwingDepth++ === 0) mod.activate_throwing_error_handler();
  try {
    const file = openFile(path, mode);
    let result: T;
    try {
      result = fn(file);
      if (isPromiseLike(result)) throw new Error('withH5File: the callback must be synchronous');
    } catch (error) {
      try {
        file.close();
      } catch {
        // Keep the first error, which says what went wrong.
      }
      throw shortenH5Error(error, `${path}`);
    }
    try {
      file.close();
    } catch (error) {
      throw shortenH5Error(error, `closing ${path}`);
    }
    return result;
  } finally {
    if (--throwingDepth === 0) mod.deactivate_throwing_error_handler();
  }
}

function openFile(path: string, mode: H5Mode): H5File {
  let file: H5File;
  try {
    // track_order keeps attributes (parameters) in insertion order for h5py/h5dump too.
    file = mode === 'w' ? new h5wasm.File(path, 'w', { track_order: true }) : new h5wasm.File(path, mode);
  } catch (error) {
    throw shortenH5Error(error, `cannot open HDF5 file ${path} for ${mode === 'r' ? 'reading' : 'writing'}`);
  }
  if (file.file_id < 0n) throw new Error(`cannot open HDF5 file ${path}`);
  return file;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** HDF5-DIAG error stacks are ~30 lines; keep the most specific "minor:" reason. */
function shortenH5Error(error: unknown, context: string): Error {
  if (!(error instanceof Error) || !error.message.includes('HDF5-DIAG')) {
    return error instanceof Error ? error : new Error(`${context}: ${String(error)}`);
  }
  const reasons = [...error.message.matchAll(/^\s*minor: (.*)$/gm)].map((m) => m[1]);
  const errno = /error message = '([^']*)'/.exec(error.message);
  const reason = errno?.[1] ?? reasons[reasons.length - 1] ?? 'HDF5 error';
  return new Error(`${context}: ${reason}`, { cause: error });
}

// ---------------------------------------------------------------------------------------------
// Navigation

/** The group at `path` under `parent`, or undefined if absent or not a group. */
export function getGroup(parent: H5Group, path: string): H5Group | undefined {
  const entity = parent.get(path);
  return entity instanceof h5wasm.Group ? entity : undefined;
}

/** The dataset at `path` under `parent`, or undefined if absent or not a dataset. */
export function getDataset(parent: H5Group, path: string): H5Dataset | undefined {
  const entity = parent.get(path);
  return entity instanceof h5wasm.Dataset ? entity : undefined;
}

/** Names of the child groups and datasets of `group` (links to other things are ignored). */
export function childNames(group: H5Group): { groups: string[]; datasets: string[] } {
  const groups: string[] = [];
  const datasets: string[] = [];
  for (const name of group.keys()) {
    const entity = group.get(name);
    if (entity instanceof h5wasm.Group) groups.push(name);
    else if (entity instanceof h5wasm.Dataset) datasets.push(name);
  }
  return { groups, datasets };
}

/**
 * Create a group. `trackOrder` keeps its links and attributes in creation order (parameter
 * groups, so that they read back in the order of the schema); other groups are listed by
 * name, as h5py lists Fluidimage's own files. Creation order is not free: HDF5 moves such a
 * group past 8 members into dense storage (a fractal heap and two B-trees), which doubled
 * the time to write a PIV result.
 */
export function createGroup(parent: H5Group, name: string, opts: { trackOrder?: boolean } = {}): H5Group {
  return parent.create_group(name, opts.trackOrder ?? false);
}

// ---------------------------------------------------------------------------------------------
// Attributes

/** A variable-length UTF-8 string attribute (what h5py writes for a Python str). */
export function writeStringAttr(target: H5Object, name: string, value: string): void {
  target.create_attribute(name, value);
}

/** The attributes that say what wrote a file and what it holds (class_name, program, program_version). */
export function writeProgramAttrs(target: H5Object, className: string): void {
  writeStringAttr(target, 'class_name', className);
  writeStringAttr(target, 'program', PROGRAM);
  writeStringAttr(target, 'program_version', VERSION);
}

/** A fixed-length byte-string attribute (what h5py writes for Python bytes / np.bytes_). */
export function writeBytesAttr(target: H5Object, name: string, value: string): void {
  target.create_attribute(name, value, null, fixedStringDtype([value]));
}

/** A scalar int64 attribute. */
export function writeInt64Attr(target: H5Object, name: string, value: number): void {
  if (!Number.isSafeInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer`);
  target.create_attribute(name, value, null, '<q');
}

/**
 * A parameter value as an attribute, the way fluiddyn's ParamContainer stores it with h5py:
 * null -> "None", boolean -> 0/1 (int8 here), integer -> int64, other number -> float64,
 * string -> fixed-length string, number[] -> int64 or float64 array, string[] -> fixed-length
 * string array, [] -> empty float64 array (as h5py does for an empty list).
 */
export function writeParamAttr(target: H5Object, name: string, value: ParamValue): void {
  if (value === null) {
    writeBytesAttr(target, name, NONE_STRING);
  } else if (typeof value === 'boolean') {
    target.create_attribute(name, value ? 1 : 0, null, '<b');
  } else if (typeof value === 'number') {
    target.create_attribute(name, value, null, Number.isSafeInteger(value) ? '<q' : '<d');
  } else if (typeof value === 'string') {
    writeBytesAttr(target, name, value);
  } else if (Array.isArray(value)) {
    writeArrayAttr(target, name, value);
  } else {
    throw new Error(`parameter ${name}: unsupported value ${describe(value)}`);
  }
}

function writeArrayAttr(target: H5Object, name: string, value: readonly unknown[]): void {
  const shape = [value.length];
  if (value.length === 0) {
    target.create_attribute(name, new Float64Array(0), shape, '<d');
  } else if (value.every((v): v is number => typeof v === 'number')) {
    const dtype = value.every((v) => Number.isSafeInteger(v)) ? '<q' : '<d';
    target.create_attribute(name, [...value], shape, dtype);
  } else if (value.every((v): v is string => typeof v === 'string')) {
    target.create_attribute(name, [...value], shape, fixedStringDtype(value));
  } else if (value.every((v) => Array.isArray(v))) {
    writeBytesAttr(target, name, JSON.stringify(value)); // nested lists (polygons): JSON text
  } else {
    throw new Error(`parameter ${name}: arrays must hold only numbers or only strings`);
  }
}

function describe(value: unknown): string {
  return typeof value === 'object' ? Object.prototype.toString.call(value) : `${typeof value} ${String(value)}`;
}

/**
 * h5wasm dtype for fixed-length strings: pure ASCII -> C string ('A', NULLTERM, ASCII charset,
 * like Fluidimage's) with one spare byte so NULLTERM readers (h5dump) see every character;
 * otherwise 'S' (UTF-8 charset, exact byte size, as h5wasm offers no NULLPAD UTF-8 type).
 */
function fixedStringDtype(values: readonly string[]): string {
  const encoder = new TextEncoder();
  let maxBytes = 0;
  let ascii = true;
  for (const s of values) {
    const nbytes = encoder.encode(s).length;
    if (nbytes !== s.length) ascii = false;
    maxBytes = Math.max(maxBytes, nbytes);
  }
  return ascii ? `A${maxBytes + 1}` : `S${Math.max(maxBytes, 1)}`;
}

/** Names of the attributes of `target`, in stored order. */
export function attrNames(target: H5Object): string[] {
  return Object.keys(target.attrs);
}

/**
 * Read an attribute as a parameter value (inverse of writeParamAttr, also for h5py files):
 * "None" -> null, int8 or HDF5 boolean enum -> boolean, other numbers -> number, arrays ->
 * number[] / string[]. Undefined when absent or of a type that has no such value.
 */
export function readParamAttr(target: H5Object, name: string): ParamValue | undefined {
  const attr: Attribute | undefined = target.attrs[name];
  if (attr === undefined) return undefined;
  return toParamValue(attr.metadata, attr.value);
}

/** A string attribute (scalar, any string type), or undefined. */
export function readStringAttr(target: H5Object, name: string): string | undefined {
  const value = readParamAttr(target, name);
  if (typeof value === 'string') return value;
  if (value === null) return NONE_STRING;
  return undefined;
}

/** A scalar numeric attribute, or undefined. */
export function readNumberAttr(target: H5Object, name: string): number | undefined {
  const value = readParamAttr(target, name);
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return undefined;
}

/** Convert what h5wasm returns for an attribute or dataset into a parameter value. */
function toParamValue(metadata: Metadata, value: unknown): ParamValue | undefined {
  const scalar = metadata.shape === null || metadata.shape.length === 0;
  switch (metadata.type) {
    case H5T_STRING: {
      const strings = (Array.isArray(value) ? value : [value]).map((s) => fixCharset(String(s), metadata));
      if (!scalar) return strings;
      return strings[0] === NONE_STRING ? null : strings[0];
    }
    case H5T_ENUM: {
      const members = metadata.enum_type?.members ?? {};
      const isBool = 'FALSE' in members && 'TRUE' in members && Object.keys(members).length === 2;
      const numbers = toNumbers(value);
      if (numbers === undefined) return undefined;
      if (scalar) return isBool ? numbers[0] !== 0 : numbers[0];
      return numbers;
    }
    case H5T_INTEGER:
    case H5T_FLOAT: {
      const numbers = toNumbers(value);
      if (numbers === undefined) return undefined;
      if (!scalar) return numbers;
      // int8 is how booleans are written here (Fluidimage's integers are int64).
      const isBool = metadata.type === H5T_INTEGER && metadata.size === 1 && metadata.signed;
      return isBool ? numbers[0] !== 0 : numbers[0];
    }
    default:
      return undefined;
  }
}

/** Numbers from a scalar, bigint, typed array or array; undefined for anything else. */
function toNumbers(value: unknown): number[] | undefined {
  if (typeof value === 'number') return [value];
  if (typeof value === 'bigint') return [Number(value)];
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>, Number);
  }
  if (Array.isArray(value) && value.every((v) => typeof v === 'number' || typeof v === 'bigint')) {
    return value.map(Number);
  }
  return undefined;
}

/** windows-1252 character -> byte, to undo h5wasm's decoding of ASCII-charset strings. */
let win1252ToByte: Map<string, number> | undefined;

/**
 * Strings of ASCII charset often hold UTF-8 bytes (h5py writes Python bytes so), which h5wasm
 * decodes byte by byte (windows-1252 for fixed length, latin-1 for variable length). Rebuild
 * the bytes and decode them as UTF-8 when that is valid; otherwise keep the string.
 */
function fixCharset(s: string, metadata: Metadata): string {
  if (metadata.cset !== CSET_ASCII || !/[^\x00-\x7f]/.test(s)) return s;
  if (win1252ToByte === undefined) {
    const table = new TextDecoder('windows-1252').decode(Uint8Array.from({ length: 256 }, (_, i) => i));
    win1252ToByte = new Map([...table].map((ch, i) => [ch, i]));
  }
  const bytes: number[] = [];
  for (const ch of s) {
    const byte = win1252ToByte.get(ch) ?? ch.codePointAt(0) ?? 0;
    if (byte > 0xff) return s;
    bytes.push(byte);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Parameter trees

/** True for a nested parameter object (a child container), false for a value. */
function isParamTree(value: ParamValue | ParamTree): value is ParamTree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Write `tree` as group `name` of `parent`: children as subgroups, values as attributes
 * (fluiddyn ParamContainer layout). Returns the group.
 */
export function writeParamTree(parent: H5Group, name: string, tree: ParamTree): H5Group {
  checkName(name);
  const group = createGroup(parent, name, { trackOrder: true });
  for (const [key, value] of Object.entries(tree)) {
    checkName(key);
    if (isParamTree(value)) writeParamTree(group, key, value);
    else writeParamAttr(group, key, value);
  }
  return group;
}

/** HDF5 names cannot contain '/', nor be '.' or empty. */
function checkName(name: string): void {
  if (name === '' || name === '.' || name.includes('/')) throw new Error(`invalid HDF5 name ${JSON.stringify(name)}`);
}

/**
 * Read a parameter group back into a plain object: attributes (and small datasets, which
 * ParamContainer also accepts) as values, subgroups as children. The `_tag` attribute that
 * ParamContainer puts on the root of its own files is dropped.
 */
export function readParamTree(group: H5Group): ParamTree {
  const tree: ParamTree = {};
  // `attrs` reads every attribute at each access: take it once.
  for (const [key, attr] of Object.entries(group.attrs)) {
    if (key === '_tag' && group.path === '/') continue;
    const value = toParamValue(attr.metadata, attr.value);
    if (value !== undefined) tree[key] = value;
  }
  for (const key of group.keys()) {
    const entity = group.get(key);
    if (entity instanceof h5wasm.Group) {
      tree[key] = readParamTree(entity);
    } else if (entity instanceof h5wasm.Dataset) {
      const value = toParamValue(entity.metadata, entity.value);
      if (value !== undefined) tree[key] = value;
    }
  }
  return tree;
}

// ---------------------------------------------------------------------------------------------
// Datasets

/** A 1-D float32 dataset. */
export function writeFloat32(parent: H5Group, name: string, data: Float32Array | readonly number[]): void {
  writeNumeric(parent, name, data instanceof Float32Array ? data : Float32Array.from(data), '<f');
}

/** A 1-D int32 dataset. */
export function writeInt32(parent: H5Group, name: string, data: Int32Array | readonly number[]): void {
  writeNumeric(parent, name, data instanceof Int32Array ? data : Int32Array.from(data), '<i');
}

/** A 1-D int64 dataset (numpy's default integer, e.g. Fluidimage's shape_images). */
export function writeInt64(parent: H5Group, name: string, data: readonly number[]): void {
  for (const v of data) if (!Number.isSafeInteger(v)) throw new Error(`dataset ${name}: ${v} is not an integer`);
  writeNumeric(parent, name, BigInt64Array.from(data, (v) => BigInt(v)), '<q');
}

type NumericDtype = '<f' | '<i' | '<q';
type WriteMetadata = Parameters<H5ModuleType['create_dataset']>[3];
const numericMetadata = new Map<NumericDtype, ReturnType<typeof dtype_to_metadata>>();

/**
 * A contiguous 1-D dataset through h5wasm's module call, as Group.create_dataset makes it,
 * without the re-opening of the new dataset that Group.create_dataset does to return it
 * (~30 us of a ~90 us dataset; a PIV result holds ~37 of them). Only inside withH5File.
 */
function writeNumeric(parent: H5Group, name: string, array: Float32Array | Int32Array | BigInt64Array, dtype: NumericDtype): void {
  const mod = h5Module;
  if (mod === undefined) throw new Error('writeNumeric: the HDF5 module is not loaded (use withH5File)');
  let meta = numericMetadata.get(dtype);
  if (meta === undefined) numericMetadata.set(dtype, (meta = dtype_to_metadata(dtype)));
  const shape = [BigInt(array.length)];
  const ptr = mod._malloc(Math.max(1, array.byteLength));
  if (ptr === 0) throw new Error(`dataset ${name}: out of memory in the HDF5 module`);
  try {
    mod.HEAPU8.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), ptr);
    // What Group.create_dataset passes for a contiguous, uncompressed dataset (the module
    // reads chunks and compression too, which its declared type leaves out).
    const args: WriteMetadata & { chunks: null; compression: number; compression_opts: number[]; track_order: boolean } = {
      ...meta, shape, maxshape: shape, chunks: null, compression: 0, compression_opts: [], track_order: false,
    };
    mod.create_dataset(parent.file_id, `${parent.path}/${name}`, BigInt(ptr), args);
  } finally {
    mod._free(ptr);
  }
}

/** A 1-D dataset of fixed-length strings (numpy 'S' dtype for h5py, as Fluidimage's). */
export function writeStrings(parent: H5Group, name: string, data: readonly string[]): H5Dataset {
  return parent.create_dataset({ name, data: [...data], shape: [data.length], dtype: fixedStringDtype(data) });
}

/** Numeric dataset at `path` (any integer/float type, any shape, flattened), or undefined. */
function readNumericValue(parent: H5Group, path: string): ArrayLike<number | bigint> | undefined {
  const dataset = getDataset(parent, path);
  if (dataset === undefined) return undefined;
  const { type } = dataset.metadata;
  if (type !== H5T_INTEGER && type !== H5T_FLOAT && type !== H5T_ENUM) return undefined;
  const value = dataset.value;
  if (typeof value === 'number' || typeof value === 'bigint') return [value];
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return value as unknown as ArrayLike<number | bigint>;
  return undefined;
}

/** True when `path` is a numeric dataset. */
export function isNumericDataset(parent: H5Group, path: string): boolean {
  const dataset = getDataset(parent, path);
  if (dataset === undefined) return false;
  const { type } = dataset.metadata;
  return type === H5T_INTEGER || type === H5T_FLOAT || type === H5T_ENUM;
}

/** A numeric dataset converted to float32 (flattened), or undefined if absent/non numeric. */
export function readFloat32(parent: H5Group, path: string): Float32Array | undefined {
  const value = readNumericValue(parent, path);
  if (value === undefined) return undefined;
  if (value instanceof Float32Array) return value;
  return Float32Array.from(value, Number);
}

/** A numeric dataset converted to int32 (flattened), or undefined if absent/non numeric. */
export function readInt32(parent: H5Group, path: string): Int32Array | undefined {
  const value = readNumericValue(parent, path);
  if (value === undefined) return undefined;
  if (value instanceof Int32Array) return value;
  return Int32Array.from(value, Number);
}

/** A numeric dataset as plain numbers (flattened), or undefined if absent/non numeric. */
export function readNumbers(parent: H5Group, path: string): number[] | undefined {
  const value = readNumericValue(parent, path);
  return value === undefined ? undefined : Array.from(value, Number);
}

/** A string dataset (fixed or variable length, flattened), or undefined. */
export function readStrings(parent: H5Group, path: string): string[] | undefined {
  const dataset = getDataset(parent, path);
  if (dataset === undefined || dataset.metadata.type !== H5T_STRING) return undefined;
  const value = dataset.value;
  const strings = Array.isArray(value) ? value : [value];
  return strings.map((s) => fixCharset(String(s), dataset.metadata));
}
