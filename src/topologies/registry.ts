/**
 * Every series command, once: the CLI makes its sub-commands from this list, the worker
 * threads of the local executor and the entry point's re-execution (thread pool sizing)
 * read it too. Adding a topology: its own files (params/<name>.ts, topologies/<name>.ts
 * exporting a TopologySpec) and one entry here. Imports are lazy: run.ts reads this list
 * before anything heavy is loaded.
 */
import type { AnyReduceSpec, AnyTopologySpec } from './spec.js';
import type { RunOptions } from '../engine/options.js';
import type { Group } from '../params/schema.js';

export interface TopologyEntry {
  /** One line for `fluidimage --help`. */
  describe: string;
  /** Help of -o. */
  output: string;
  /** Help of --workers, where it differs from "pairs computed at once". */
  workers?: string;
  /** Help of --how, where it differs from the series' (one result per item). */
  how?: string;
  /** The parameters (`fluidimage params NAME`). */
  schema(): Promise<Group>;
  /** The topology's spec (planning, worker job) for the engine's series runner. */
  load?(): Promise<AnyTopologySpec | AnyReduceSpec>;
  /** Commands not run by the engine's series runner (yet): their own runner. */
  run?(o: RunOptions): Promise<number>;
}

export const TOPOLOGIES = {
  piv: {
    describe: 'PIV of a series of image pairs (one HDF5 file per pair)',
    output: 'Output directory (default: <input dir>.piv)',
    schema: async () => (await import('../params/piv.js')).pivSchema,
    load: async () => (await import('./piv.js')).pivTopology,
  },
  bos: {
    describe: 'Background-oriented schlieren: PIV between a reference image and every image (bos_<index>.h5)',
    output: 'Output directory (default: <input dir>.bos)',
    schema: async () => (await import('../params/bos.js')).bosSchema,
    load: async () => (await import('./bos.js')).bosTopology,
  },
  ensemble: {
    describe: 'Ensemble correlation: correlation planes of all pairs summed pass by pass, one mean field (ensemble.h5)',
    output: 'Output directory (default: <input dir>.ensemble)',
    workers: 'Pairs correlated at once, each with its own plane sums (default: number of cores)',
    schema: async () => (await import('../params/ensemble.js')).ensembleSchema,
    load: async () => (await import('./ensemble.js')).ensembleTopology,
  },
  surftrack: {
    describe: 'Surface tracking: heights of a free surface by Fourier-transform profilometry of projected fringes (surf_<index>.h5)',
    output: 'Output directory (default: <input dir>.surf)',
    schema: async () => (await import('../params/surftrack.js')).surftrackSchema,
    load: async () => (await import('./surftrack.js')).surftrackTopology,
  },
  im2im: {
    describe: 'A user JavaScript function applied to every image (--set im2im=module.mjs); images keep names and bit depth',
    output: 'Output directory (default: <input dir>.im2im)',
    schema: async () => (await import('../params/im2im.js')).im2imSchema,
    load: async () => (await import('./im2im.js')).im2imTopology,
  },
  preproc: {
    describe: 'Preprocess a series of images (filters, temporal background removal, contrast); same names and bit depth in <dir>.pre',
    output: 'Output directory (default: <input dir>.pre)',
    workers: 'Items computed at once, each in its own thread (default: number of cores)',
    schema: async () => (await import('../params/preproc.js')).preprocSchema,
    load: async () => (await import('./preproc.js')).preprocTopology,
  },
  mean: {
    describe: 'Time average (mean, RMS fluctuations, uncertainty of the mean) of a series of PIV results (PATH: DIR.piv or a glob)',
    output: 'Output file (default: <dir>/mean_piv.h5)',
    how: 'recompute: average again (default); complete: nothing to do when the output file exists',
    workers: 'Result files read at once (default: number of cores)',
    schema: async () => (await import('../params/mean.js')).meanSchema,
    load: async () => (await import('./mean_piv.js')).meanTopology,
  },
  'mean-image': {
    describe: 'Mean (and min, max, std) image of a series: an image in the input bit depth and an HDF5 file (float32)',
    output: 'Output directory (default: <input dir>.mean_image)',
    workers: 'Images read at once (default: number of cores)',
    schema: async () => (await import('../params/mean_image.js')).meanImageSchema,
    load: async () => (await import('./mean_image.js')).meanImageTopology,
  },
} satisfies Record<string, TopologyEntry>;

export type TopologyName = keyof typeof TOPOLOGIES;

export function isTopologyName(name: string): name is TopologyName {
  return Object.hasOwn(TOPOLOGIES, name);
}

/** The spec of a topology by name, with a clear error for an unknown one. */
export async function loadTopology(name: string): Promise<AnyTopologySpec | AnyReduceSpec> {
  if (!isTopologyName(name)) throw Object.assign(new Error(`Unknown topology ${JSON.stringify(name)}: expected one of ${Object.keys(TOPOLOGIES).join(', ')}`), { code: 'ERR_TOPOLOGY' });
  const entry: TopologyEntry = TOPOLOGIES[name];
  if (!entry.load) throw Object.assign(new Error(`${name} has no series runner spec`), { code: 'ERR_TOPOLOGY' });
  return entry.load();
}
