/**
 * The preprocessing topology: series of items (one image, or a stack of images for the
 * temporal tools) -> read -> tools -> the processed images, each written atomically
 * under its own name in `<input dir>.pre` (or as HDF5).
 *
 * Which images an item writes follows Fluidimage (get_ind_middle): its middle image,
 * plus, for the first item of the whole series, the images before the middle and, for
 * the last item, the images after it, so that every image of the series is written
 * once. "The whole series" ignores ind_start/ind_stop, so that a series split into
 * index ranges (job arrays) writes no image twice.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import { encodeBmp8 } from '../io/bmp.js';
import { createGroup, withH5File, writeInt64Attr, writeParamTree, writeStringAttr, writeProgramAttrs } from '../io/h5.js';
import { readImage, toFloat32, writeImage, type ImageData } from '../io/images.js';
import { ParamError, typedTree } from '../params/schema.js';
import { preprocSchema } from '../params/preproc.js';
import { parseImageName } from '../series/filenames.js';
import { buildSeries, type Item, type SeriesParams } from '../series/series.js';
import type { Job } from '../executors/types.js';
import type { ParamTree } from '../params/tree.js';
import { makeCompute, type PreprocCompute } from '../works/preproc/pool.js';
import { WorkPreproc, type PreprocInput } from '../works/preproc/work.js';
import { prepareOutputDir, seriesOutputPath, seriesParams } from './output.js';
import type { PlannedJob, TopologySpec } from './spec.js';

/** An item and the images (indices into `paths`) it writes. */
export type PreprocItem = Item & { outputs: number[] };

/** Extensions written as they are; other formats are written as PNG. */
const WRITABLE = ['.png', '.tif', '.tiff', '.bmp'];

/**
 * Fluidimage's get_ind_middle: the middle of an item of Ni x Nj images (Ni values of the
 * first index, Nj of the second): [floor(Ni/2) Nj (- 1 when Ni is even), ceil(Ni/2) Nj).
 */
export function middleRange(names: readonly string[]): [number, number] {
  const firsts = new Set(names.map((n) => parseImageName(n).indices[0]?.value ?? 0));
  const ni = Math.max(1, firsts.size);
  const nj = Math.max(1, Math.round(names.length / ni));
  let start = Math.floor(ni / 2) * nj;
  if (ni % 2 === 0) start -= 1;
  return [Math.max(0, start), Math.ceil(ni / 2) * nj];
}

/** The images an item writes, given whether it starts or ends the whole series. */
export function outputIndices(names: readonly string[], first: boolean, last: boolean): number[] {
  if (names.length === 1) return [0];
  const [start, end] = middleRange(names);
  const from = first ? 0 : start;
  const to = last ? names.length : end;
  return Array.from({ length: to - from }, (_, k) => from + k);
}

/** Output file name of an input image. */
export function outputName(inputName: string, format: 'img' | 'hdf5'): string {
  const ext = extname(inputName);
  const stem = ext ? inputName.slice(0, -ext.length) : inputName;
  if (format === 'hdf5') return `${stem}.h5`;
  return WRITABLE.includes(ext.toLowerCase()) ? inputName : `${stem}.png`;
}

/** Rounded and clipped to the range of the bit depth. */
export function toIntegers(data: Float32Array | Float64Array, bitDepth: 8 | 16): Uint8Array | Uint16Array {
  const top = bitDepth === 8 ? 255 : 65535;
  const out = bitDepth === 8 ? new Uint8Array(data.length) : new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Math.round(data[i]!);
    out[i] = v > 0 ? (v < top ? v : top) : 0; // NaN -> 0
  }
  return out;
}

/** Writes float values as an image file of the given bit depth (format from the extension), atomically. */
export async function writeImageAs(path: string, width: number, height: number, data: Float32Array | Float64Array,
  bitDepth: 8 | 16 | 32): Promise<void> {
  if (bitDepth === 32) {
    throw new Error(`cannot write ${basename(path)}: float images have no integer bit depth (use saving.format=hdf5)`);
  }
  const values = toIntegers(data, bitDepth);
  const ext = extname(path).toLowerCase();
  await writeAtomic(path, async (tmp) => {
    if (ext === '.bmp') {
      if (!(values instanceof Uint8Array)) throw new Error(`cannot write ${basename(path)}: BMP is 8-bit only`);
      await writeFile(tmp, encodeBmp8(width, height, values));
    } else {
      await writeImage(tmp, width, height, values, { format: ext === '.tif' || ext === '.tiff' ? 'tiff' : 'png' });
    }
  });
}

/** Float32 result in Fluidimage's PreprocResults layout: /images/<input name>, /params. */
async function writeH5(path: string, inputName: string, width: number, height: number, data: Float32Array,
  bitDepth: number, params: ParamTree): Promise<void> {
  await writeAtomic(path, (tmp) => withH5File(tmp, 'w', (f) => {
    writeProgramAttrs(f, 'PreprocResults');
    writeStringAttr(f, 'module_name', 'fluidimage.data_objects.preproc');
    writeInt64Attr(f, 'bit_depth_input', bitDepth);
    const images = createGroup(f, 'images');
    images.create_dataset({ name: inputName, data, shape: [height, width], dtype: '<f' });
    writeParamTree(f, 'params', params);
  }));
}

/**
 * Decoded images kept for the next items: with "i-2:i+3" each image belongs to five
 * items, read once instead of five times. Keeps the raw values (not float32 copies,
 * which are handed to the compute threads).
 */
class ImageCache {
  private readonly entries = new Map<string, Promise<ImageData>>();
  constructor(private readonly capacity: number) {}

  get(path: string): Promise<ImageData> {
    let p = this.entries.get(path);
    if (p === undefined) {
      p = readImage(path);
      // A failed read is not kept: each item naming the image reports it.
      p.catch(() => this.entries.delete(path));
      this.entries.set(path, p);
      while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    }
    return p;
  }
}

/** Reads the images of an item; names every unreadable one; sizes must match. */
async function readItem(item: PreprocItem, cache: ImageCache): Promise<PreprocInput> {
  if (item.missing.length > 0) throw new Error(`missing image(s): ${item.missing.join(', ')}`);
  const reads = await Promise.allSettled(item.paths.map((p) => cache.get(p)));
  const failed = reads.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) throw new Error(failed.map((r) => (r.reason as Error).message).join('; '));
  const images = reads.map((r) => (r as PromiseFulfilledResult<ImageData>).value);
  const first = images[0]!;
  for (const im of images) {
    if (im.width !== first.width || im.height !== first.height || im.bitDepth !== first.bitDepth) {
      throw new Error(`images of one item must have the same size and bit depth: ${basename(first.path)} is ` +
        `${first.width}x${first.height} ${first.bitDepth}-bit, ${basename(im.path)} is ${im.width}x${im.height} ${im.bitDepth}-bit`);
    }
  }
  return { width: first.width, height: first.height, bitDepth: first.bitDepth, images: images.map(toFloat32), outputs: item.outputs };
}

/** Items of the series with the images each one writes. */
async function preprocItems(series: SeriesParams, stack: boolean): Promise<PreprocItem[]> {
  const items = await buildSeries(series);
  const perItem = new Set(items.map((it) => it.paths.length));
  if (stack && Math.max(...perItem) < 2) {
    throw new ParamError('series.str_subset', `The temporal tools need several images per item, but series.str_subset ` +
      `${JSON.stringify(series.str_subset)} selects one; use e.g. "i-2:i+3" (5 images around i)`);
  }
  if (Math.max(...perItem) === 1) return items.map((it) => ({ ...it, outputs: [0] }));
  // The ends of the whole series, whatever ind_start/ind_stop/ind_step select.
  const whole = await buildSeries({ ...series, ind_start: 'first', ind_stop: null, ind_step: 1 });
  const firstIndex = whole[0]!.index;
  const lastIndex = whole[whole.length - 1]!.index;
  return items.map((it) => ({ ...it, outputs: outputIndices(it.names, it.index === firstIndex, it.index === lastIndex) }));
}

/** The images an item writes, with the geometry of its inputs. */
export interface PreprocOutput {
  width: number;
  height: number;
  bitDepth: 8 | 16 | 32;
  images: Float32Array[];
}

export interface PreprocPlan extends PlannedJob<PreprocItem, PreprocInput, PreprocOutput> {
  /** Stops the compute threads. */
  close(): Promise<void>;
}

/**
 * Plans a preprocessing job from resolved parameters: the items still to compute
 * (`how: complete`: those with an output missing), the output directory, and the
 * read/compute/write steps; `threads` > 1 computes in that many worker threads.
 */
async function planPreproc(params: ParamTree, opts: { threads: number }): Promise<PreprocPlan> {
  const p = typedTree(preprocSchema, params);
  const series = seriesParams(p);
  const tools = p.preproc.tools as unknown as ParamTree;
  const work = new WorkPreproc(tools);
  const items = await preprocItems(series, work.needsStack);
  const format = p.saving.format;
  const inputDir = dirname(items[0]!.paths[0]!);
  const outDir = seriesOutputPath(p);
  if (outDir === inputDir) {
    throw new ParamError('saving.path', `The output directory would be the input directory ${inputDir}: the images would be overwritten; choose another (-o)`);
  }
  const outputDir = await prepareOutputDir(outDir, p.saving.how);
  const outPath = outputPathFor(outputDir, format);
  const todo = p.saving.how === 'complete' ? items.filter((it) => it.outputs.some((k) => !existsSync(outPath(it, k)))) : items;
  const perItem = Math.max(...items.map((it) => it.paths.length));
  const { job, close } = preprocJob(params, outputDir, todo, opts.threads, perItem);
  return { job, outputDir, skipped: items.length - todo.length, total: items.length, close };
}

function outputPathFor(outputDir: string, format: 'img' | 'hdf5'): (item: PreprocItem, k: number) => string {
  return (item, k) => join(outputDir, outputName(item.names[k]!, format));
}

/**
 * The read/compute/write steps over `items` (on MPI ranks other than 0, items arrive from
 * rank 0 and `items` is empty); `close` stops the compute threads.
 */
function preprocJob(params: ParamTree, outputDir: string, items: PreprocItem[], threads: number, perItem: number):
  { job: Job<PreprocItem, PreprocInput, PreprocOutput>; close: () => Promise<void> } {
  const p = typedTree(preprocSchema, params);
  const tools = p.preproc.tools as unknown as ParamTree;
  const format = p.saving.format;
  const outPath = outputPathFor(outputDir, format);
  const compute: PreprocCompute = makeCompute(tools, threads);
  // Temporal stacks overlap from one item to the next: keep recent images.
  const cache = new ImageCache(perItem > 1 ? (threads + 2) * perItem : 0);
  const job: Job<PreprocItem, PreprocInput, PreprocOutput> = {
    items,
    name: (item) => item.outputs.map((k) => item.names[k]).join(' + '),
    read: (item) => readItem(item, cache),
    compute: async (input) => ({ width: input.width, height: input.height, bitDepth: input.bitDepth, images: await compute.run(input) }),
    write: async (r, item) => {
      await Promise.all(item.outputs.map((k, j) => (format === 'hdf5'
        ? writeH5(outPath(item, k), item.names[k]!, r.width, r.height, r.images[j]!, r.bitDepth, params)
        : writeImageAs(outPath(item, k), r.width, r.height, r.images[j]!, r.bitDepth))));
    },
  };
  return { job, close: () => compute.close() };
}

/** The steps for MPI ranks other than 0 (one compute thread per lane). */
function preprocWorkerJob(params: ParamTree, outputDir: string, lanes: number): Job<PreprocItem, PreprocInput, PreprocOutput> & { close(): Promise<void> } {
  const work = new WorkPreproc(typedTree(preprocSchema, params).preproc.tools as unknown as ParamTree);
  const { job, close } = preprocJob(params, outputDir, [], lanes, work.needsStack ? 8 : 1);
  return { ...job, close };
}

export const preprocTopology: TopologySpec<PreprocItem, PreprocInput, PreprocOutput> = {
  name: 'preproc',
  itemLabel: 'item',
  schema: preprocSchema,
  defaultLanes: 'cores',
  plan: (params, { workers }) => planPreproc(params, { threads: workers }),
  workerJob: async (params, outputDir, lanes) => preprocWorkerJob(params, outputDir, lanes),
};
