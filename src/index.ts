/**
 * fluidimage as a library (`import { computePiv } from 'fluidimage'`): the PIV of one pair
 * in memory, the series commands of the CLI, typed parameter trees, result files, and the
 * MPI communicator for one's own scripts under mpirun.
 *
 * Importing this module loads the native core: without it (install scripts skipped) the
 * import throws one message saying how to build it (`npx fluidimage-build`).
 */
import { availableParallelism } from 'node:os';
import { native } from './native.js';
import { readImageFloat32 } from './io/images.js';
import { readPivFile, writePivFile } from './io/pivfile.js';
import { withH5File, readStringAttr, readNumberAttr, childNames, readFloat32, readStrings, getDataset, getGroup, readParamTree, type H5Group } from './io/h5.js';
import { readSurfFile, SURF_CLASS_NAME, type SurfFile } from './works/surftrack/file.js';
import { applySets } from './params/load.js';
import { defaults, type Defaults, type Group } from './params/schema.js';
import { pivSchema } from './params/piv.js';
import { ensembleSchema } from './params/ensemble.js';
import { meanSchema } from './params/mean.js';
import { bosSchema } from './params/bos.js';
import { surftrackSchema } from './params/surftrack.js';
import { im2imSchema } from './params/im2im.js';
import { preprocSchema } from './params/preproc.js';
import { meanImageSchema } from './params/mean_image.js';
import type { TopologyName } from './topologies/registry.js';
import { chainSteps, loadMask, pairFilter, pairMasker } from './topologies/piv.js';
import { WorkPIV, type PairImages } from './works/piv/work.js';
import type { PassResult, PivResult } from './results/piv_result.js';
import type { ParamTree } from './params/tree.js';
import type { RunOptions } from './engine/options.js';
import type { Summary } from './report/progress.js';
import { PROGRAM, VERSION } from './version.js';

// The addon now, so that a missing build is one clear error at import.
native();

export { VERSION } from './version.js';
export type { PivResult, PassResult, FinalField, PassErrors } from './results/piv_result.js';
export type { ParamTree, ParamValue } from './params/tree.js';
export type { Summary, ItemOutcome } from './report/progress.js';
export type { SurfFile } from './works/surftrack/file.js';
export type { TopologyName } from './topologies/registry.js';
export type { Defaults } from './params/schema.js';
export { ParamError } from './params/schema.js';

/**
 * MPI for scripts started by mpirun/srun: `mpi.world()` is MPI_COMM_WORLD (MPI starts on the
 * first call). Naming differs from mpi4py: buffers (typed arrays, no copy) use the plain
 * names (`send`, `recv`, `bcast`, `gather`, `reduce`, `allreduce`, `isend`, `irecv`; mpi4py's
 * upper-case `Send`, `Recv`, `Bcast`...), any JSON value uses the `*Object` names
 * (`sendObject`, `recvObject`, `bcastObject`, `gatherObject`, `isendObject`, `irecvObject`;
 * mpi4py's lower-case `send(obj)`, `recv()`, `bcast(obj)`...). `recvObject` returns
 * `{ value, source, tag }`.
 */
export * as mpi from './mpi/comm.js';
export { world, Comm } from './mpi/comm.js';

// ---- parameters ---------------------------------------------------------------------------------

const SCHEMAS = {
  piv: pivSchema,
  bos: bosSchema,
  ensemble: ensembleSchema,
  mean: meanSchema,
  surftrack: surftrackSchema,
  im2im: im2imSchema,
  preproc: preprocSchema,
  'mean-image': meanImageSchema,
} satisfies Record<TopologyName, Group>;

/** The parameter tree of a topology, typed from its schema (`fluidimage params NAME` prints it). */
export type ParamsOf<T extends TopologyName> = Defaults<(typeof SCHEMAS)[T]>;
export type PivParams = ParamsOf<'piv'>;

/** Some of the parameters: nested objects with any keys left out (lists are given whole). */
export type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** The default parameters of a topology (a fresh copy each call). */
export function defaultParams<T extends TopologyName>(topology: T): ParamsOf<T> {
  return defaults(schemaOf(topology)) as ParamsOf<T>;
}

function schemaOf(topology: string): Group {
  if (!Object.hasOwn(SCHEMAS, topology)) {
    throw Object.assign(new Error(`Unknown topology ${JSON.stringify(topology)}: expected one of ${Object.keys(SCHEMAS).join(', ')}`), { code: 'ERR_TOPOLOGY' });
  }
  return SCHEMAS[topology as TopologyName];
}

/** `KEY=VALUE` settings (as --set) of a partial tree: validated, modules resolved, as on the command line. */
function toSets(partial: unknown, prefix = ''): string[] {
  if (partial === undefined) return [];
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
    throw Object.assign(new TypeError(`Expected an object of parameters${prefix ? ` for ${prefix}` : ''} but received ${JSON.stringify(partial)}`), { code: 'ERR_PARAM' });
  }
  return Object.entries(partial).flatMap(([name, value]) => {
    const key = prefix ? `${prefix}.${name}` : name;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return toSets(value, key);
    return [`${key}=${JSON.stringify(value)}`];
  });
}

// ---- PIV of one pair ------------------------------------------------------------------------------

/** An image in memory: row-major pixels (any numeric array), `height * width` of them. */
export interface ImageArray {
  data: ArrayLike<number>;
  width: number;
  height: number;
  /** For the result's names (default "a", "b"). */
  name?: string;
}

/** The final field on its regular grid, flattened [ny, nx] (x fastest), pixels. */
export interface PivField {
  /** Column and row of each grid point. */
  x: Float32Array;
  y: Float32Array;
  /** Displacement along x (columns) and y (rows) between the images; NaN where masked. */
  u: Float32Array;
  v: Float32Array;
  nx: number;
  ny: number;
}

/** A PIV result (what a result file holds: passes, params, images) with its final field. */
export interface PivOutput extends PivResult {
  final: PivField;
}

export interface ComputePivOptions {
  /** Native threads for the correlations (default: all cores). */
  threads?: number;
}

async function imageOf(input: string | ImageArray, fallback: string): Promise<{ data: Float32Array; width: number; height: number; name: string; path: string }> {
  if (typeof input === 'string') {
    const im = await readImageFloat32(input);
    return { ...im, name: input.split(/[\\/]/).pop() ?? input, path: input };
  }
  const { data, width, height } = input;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0 || data.length !== width * height) {
    throw new RangeError(`Expected an image of width * height pixels but received ${data.length} pixels for ${width} x ${height}`);
  }
  return { data: Float32Array.from(data), width, height, name: input.name ?? fallback, path: '' };
}

function finalField(passes: readonly PassResult[]): PivField | undefined {
  const f = passes[passes.length - 1]?.final;
  if (!f) return undefined;
  const nx = new Set(f.ixvecs_final).size;
  return { x: f.ixvecs_final, y: f.iyvecs_final, u: f.deltaxs_final, v: f.deltays_final, nx, ny: nx === 0 ? 0 : f.ixvecs_final.length / nx };
}

/**
 * The PIV of one pair: `a` and `b` are image paths or images in memory; `params` some of the
 * PIV parameters (`defaultParams('piv')` for all). Resolves to every pass and the final field.
 */
export async function computePiv(a: string | ImageArray, b: string | ImageArray, params: DeepPartial<PivParams> = {},
  options: ComputePivOptions = {}): Promise<PivOutput> {
  const tree = applySets(pivSchema, defaults(pivSchema), toSets(params));
  const [im0, im1] = await Promise.all([imageOf(a, 'a'), imageOf(b, 'b')]);
  if (im0.width !== im1.width || im0.height !== im1.height) {
    throw new RangeError(`The images of a pair must have the same size: ${im0.width}x${im0.height} and ${im1.width}x${im1.height}`);
  }
  let pair: PairImages = {
    im0: im0.data, im1: im1.data, width: im0.width, height: im0.height, owned: true,
    names: [im0.name, im1.name], paths: [im0.path, im1.path],
  };
  const steps = chainSteps(await pairFilter(tree), await pairMasker(tree));
  if (steps) pair = await steps(pair);
  const { configureNative } = await import('./engine/run_series.js');
  configureNative(tree);
  const work = new WorkPIV(tree, options.threads ?? availableParallelism(), await loadMask(tree));
  const result = await work.calcul(pair);
  return { ...result, final: finalField(result.passes)! };
}

/** Writes a PIV result (computePiv's, or one read) as a Fluidimage MultipassPIVResults HDF5 file. */
export async function writePivResult(path: string, result: PivResult): Promise<void> {
  const { passes, names, paths, shape_images, params } = result;
  await writePivFile(path, { passes, names, paths, shape_images, params }, { program: PROGRAM, version: VERSION });
}

// ---- series ----------------------------------------------------------------------------------------

export interface SeriesOptions<T extends TopologyName> {
  /** Some of the parameters (as `--set`, validated; module paths relative to the current directory). */
  params?: DeepPartial<ParamsOf<T>>;
  /** A params file (YAML or JSON, as `-c`); `params` override it. */
  config?: string;
  /** Output directory (`-o`). */
  output?: string;
  how?: 'complete' | 'recompute' | 'new_dir';
  /** As --executor (default "auto": MPI under mpirun/srun with several ranks, else local). */
  executor?: RunOptions['executor'];
  workers?: number;
  threads?: number;
  /** No progress on stderr (default true). */
  quiet?: boolean;
  /** MPI: seconds of silence after which a rank counts as lost. */
  rankTimeout?: number;
}

export interface SeriesResult {
  /** The CLI's exit status: 0 all done, 1 items failed, 3 stopped by a signal. */
  status: number;
  /** Items done, failed (with their errors), skipped, seconds; absent on MPI ranks other than 0. */
  summary?: Summary;
  outputDir?: string;
}

/**
 * Runs a series command (as `fluidimage TOPOLOGY PATH`) and resolves to its summary. Errors
 * of usage (parameters, inputs) reject. Under mpirun it runs on every rank with the MPI
 * executor and finalises MPI at its end. Prints the output directory on stdout, as the CLI.
 */
export async function runSeries<T extends TopologyName>(topology: T, path: string, options: SeriesOptions<T> = {}): Promise<SeriesResult> {
  schemaOf(topology);
  const { runTopology } = await import('./engine/run_series.js');
  const out: SeriesResult = { status: 0 };
  const { params, quiet, executor, ...rest } = options;
  out.status = await runTopology(topology, {
    ...rest, path, set: toSets(params), executor: executor ?? 'auto', quiet: quiet ?? true,
    onSummary: (summary, outputDir) => Object.assign(out, { summary, outputDir }),
  });
  return out;
}

// ---- result files ------------------------------------------------------------------------------

/** What `readResult` returns, by kind of file. */
export type ResultFile =
  /** PIV and BOS results (one pair / one image against the reference). */
  | ({ kind: 'piv'; path: string; final: PivField | undefined } & PivResult)
  | ({ kind: 'surftrack'; path: string } & SurfFile)
  /** `mean-image`'s mean.h5: mean (and min, max, std) [height, width]. */
  | { kind: 'mean-image'; path: string; width: number; height: number; count: number; images: Record<string, Float32Array>; names: string[]; params: ParamTree }
  /** `fluidimage mean`'s mean_piv.h5: time average of the final fields. */
  | { kind: 'mean-piv'; path: string; x: Float32Array; y: Float32Array; fields: Record<string, Float32Array>; count: number; files: string[] }
  /** preproc with saving.format=hdf5: float32 images by input name. */
  | { kind: 'preproc'; path: string; images: Record<string, Float32Array>; width: number; height: number; params: ParamTree };

/** Float32 datasets of a group, by name (flattened). */
function datasets(group: H5Group, skip: readonly string[] = []): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const name of childNames(group).datasets) {
    const data = skip.includes(name) ? undefined : readFloat32(group, name);
    if (data) out[name] = data;
  }
  return out;
}

function imageShape(group: H5Group, name: string | undefined): { width: number; height: number } {
  const shape = name === undefined ? [] : getDataset(group, name)?.shape ?? [];
  return { height: Number(shape[0] ?? 0), width: Number(shape[1] ?? 0) };
}

/** Reads any result file of fluidimage (the kind is told by its `class_name` attribute). */
export async function readResult(path: string): Promise<ResultFile> {
  const className = await withH5File(path, 'r', (f) => readStringAttr(f, 'class_name'));
  switch (className) {
    case SURF_CLASS_NAME:
      return { kind: 'surftrack', path, ...(await readSurfFile(path)) };
    case 'MeanImage':
      return withH5File(path, 'r', (f) => {
        const images = datasets(f);
        return {
          kind: 'mean-image', path, ...imageShape(f, 'mean'), count: readNumberAttr(f, 'nb_images') ?? 0, images,
          names: readStrings(f, 'sources/names') ?? [], params: paramsOf(f),
        };
      });
    case 'TimeAveragePIV':
      return withH5File(path, 'r', (f) => {
        const { ixvecs, iyvecs, ...fields } = datasets(f);
        return { kind: 'mean-piv', path, x: ixvecs, y: iyvecs, fields, count: readNumberAttr(f, 'nb_fields') ?? 0, files: readStrings(f, 'sources/files') ?? [] };
      });
    case 'PreprocResults':
      return withH5File(path, 'r', (f) => {
        const group = getGroup(f, 'images');
        const images = group ? datasets(group) : {};
        return { kind: 'preproc', path, images, ...(group ? imageShape(group, Object.keys(images)[0]) : { width: 0, height: 0 }), params: paramsOf(f) };
      });
    default: {
      // PIV and BOS files (also Fluidimage's own, whose class attribute may be absent).
      const result = await readPivFile(path);
      return { kind: 'piv', path, ...result, final: finalField(result.passes) };
    }
  }
}

function paramsOf(f: H5Group): ParamTree {
  const g = getGroup(f, 'params');
  return g ? readParamTree(g) : {};
}
