/**
 * The surface tracking topology: reference images (flat surface) -> setup, once per
 * process; then every image of the series -> height field -> `surf_<index>.h5`.
 *
 * Items are independent (each frame's 2 pi ambiguity is fixed against the reference, see
 * works/surftrack/work.ts), so the local and MPI executors, `--how complete` and job-array
 * splits need no ordering between frames; frames are still listed in series order. Every
 * process (MPI rank) reads the reference images and builds the same setup.
 */
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readImage, type ImageData } from '../io/images.js';
import { SLICE_RE, surftrackSchema } from '../params/surftrack.js';
import { ParamError, typedTree } from '../params/schema.js';
import { buildSeries, resultName, SeriesError, type Item } from '../series/series.js';
import { PROGRAM, VERSION } from '../version.js';
import type { Job } from '../executors/types.js';
import type { ParamTree } from '../params/tree.js';
import { writeSurfFile } from '../works/surftrack/file.js';
import { makeSurfCompute, type SurfCompute } from '../works/surftrack/pool.js';
import { prepareSetup, type SurfResult, type SurfSetup } from '../works/surftrack/work.js';
import { seriesOutputDir, seriesParams, seriesPath } from './output.js';
import type { PlannedJob, TopologySpec } from './spec.js';

/** Python's slice(start, stop, step).indices(n) as a list of indices. */
export function sliceIndices(text: string, n: number): number[] {
  const m = SLICE_RE.exec(text);
  if (!m) throw new Error(`not a slice: ${text}`);
  const step = m[3] !== undefined ? Number(m[3]) : 1;
  const clamp = (v: string | undefined, dflt: number, lo: number, hi: number): number => {
    if (v === undefined) return dflt;
    let k = Number(v);
    if (k < 0) k += n;
    return Math.min(Math.max(k, lo), hi);
  };
  const out: number[] = [];
  if (step > 0) {
    const start = clamp(m[1], 0, 0, n);
    const stop = clamp(m[2], n, 0, n);
    for (let k = start; k < stop; k += step) out.push(k);
  } else {
    const start = clamp(m[1], n - 1, -1, n - 1);
    const stop = clamp(m[2], -1, -1, n - 1);
    for (let k = start; k > stop; k += step) out.push(k);
  }
  return out;
}

/** The reference images: `images.path_ref` (or the series' images), then the selection. */
async function referencePaths(params: ParamTree): Promise<string[]> {
  const p = typedTree(surftrackSchema, params);
  const { images, surface_tracking: st } = p;
  const pathRef = images.path_ref;
  const source = pathRef ?? seriesPath(p);
  let all: string[];
  try {
    const items = await buildSeries({ path: source, str_subset: 'all1by1', ind_start: 'first', ind_stop: null, ind_step: 1 });
    all = items.filter((it) => it.missing.length === 0).map((it) => it.paths[0]);
  } catch (e) {
    if (pathRef !== null && e instanceof SeriesError) throw new ParamError('images.path_ref', `images.path_ref: ${e.message}`);
    throw e;
  }
  const slice = images.str_slice_ref;
  let chosen: number[];
  if (slice !== null) {
    chosen = sliceIndices(slice, all.length);
  } else {
    const first = st.startref_frame;
    const last = Math.min(st.lastref_frame, all.length - 1);
    chosen = [];
    for (let k = first; k <= last; k++) chosen.push(k);
  }
  if (chosen.length === 0) {
    throw new ParamError(slice !== null ? 'images.str_slice_ref' : 'surface_tracking.startref_frame',
      `No reference image selected among the ${all.length} image(s) of ${source} ` +
      (slice !== null ? `by images.str_slice_ref ${JSON.stringify(slice)}` : `from startref_frame ${String(st.startref_frame)} to lastref_frame ${String(st.lastref_frame)}`));
  }
  return chosen.map((k) => all[k]);
}

/** Reads the reference images and prepares the setup; an unreadable reference stops the job. */
async function loadSetup(params: ParamTree): Promise<SurfSetup> {
  const paths = await referencePaths(params);
  const refs: ImageData[] = [];
  for (const p of paths) {
    try {
      refs.push(await readImage(p));
    } catch (e) {
      throw new ParamError('images.path_ref', `Cannot use the reference image: ${(e as Error).message}`);
    }
  }
  return prepareSetup(params, refs);
}

/** The steps over `items`. */
function surftrackJob(setup: SurfSetup, compute: SurfCompute, params: ParamTree, outputDir: string, items: Item[]): Job<Item, ImageData, SurfResult> {
  const postfix = typedTree(surftrackSchema, params).saving.postfix;
  return {
    items,
    name: (item) => item.names[0],
    read: async (item) => {
      if (item.missing.length > 0) throw new Error(`missing image: ${item.missing.join(', ')}`);
      return readImage(item.paths[0]);
    },
    compute: (image) => compute.run(image),
    write: (result, item) => writeSurfFile(join(outputDir, resultName(item, postfix)), result, setup, {
      program: PROGRAM, version: VERSION, name: item.names[0], path: item.paths[0], params,
    }),
  };
}

async function planSurftrack(params: ParamTree, _opts: { threadsPerItem: number }): Promise<PlannedJob<Item, ImageData, SurfResult>> {
  const p = typedTree(surftrackSchema, params);
  const series = seriesParams(p);
  const items = await buildSeries(series);
  if (items.some((it) => it.paths.length !== 1)) {
    throw new ParamError('series.str_subset', `Surface tracking processes single images; series.str_subset ${JSON.stringify(series.str_subset)} gives several per item`);
  }
  const setup = await loadSetup(params);
  const postfix = p.saving.postfix;
  const outputDir = await seriesOutputDir(p);
  const todo = p.saving.how === 'complete' ? items.filter((it) => !existsSync(join(outputDir, resultName(it, postfix)))) : items;
  const job = surftrackJob(setup, makeSurfCompute(setup, availableParallelism()), params, outputDir, todo);
  return { job, outputDir, skipped: items.length - todo.length, total: items.length };
}

/** The steps for MPI ranks other than 0 (items come from rank 0). */
async function surftrackWorkerJob(params: ParamTree, outputDir: string): Promise<Job<Item, ImageData, SurfResult>> {
  const setup = await loadSetup(params);
  return surftrackJob(setup, makeSurfCompute(setup, availableParallelism()), params, outputDir, []);
}

export const surftrackTopology: TopologySpec<Item, ImageData, SurfResult> = {
  threads: true,
  name: 'surftrack',
  itemLabel: 'image',
  schema: surftrackSchema,
  plan: planSurftrack,
  workerJob: surftrackWorkerJob,
};
