/**
 * `fluidimage view FILE.h5|DIR -o OUT.png|OUTDIR`: figures of PIV results. A directory
 * gives one PNG per result file, all with the arrow scale and colour limits of the first
 * (so that a series can be compared or made into a film), or one file with --index.
 */
import { availableParallelism } from 'node:os';
import { mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { local } from '../executors/local.js';
import { Progress } from '../report/progress.js';
import { listResultFiles } from '../topologies/mean_piv.js';
import type { Background } from '../view/figure.js';
import { viewFile, type ViewFileOptions } from '../view/files.js';
import { EXIT_ITEMS_FAILED, EXIT_OK } from './common.js';

export interface ViewOptions {
  path: string;
  output?: string;
  background?: Background;
  scale?: number;
  image?: boolean;
  index?: number;
  zoom?: number;
  clim?: number[];
  workers?: number;
  quiet?: boolean;
}

const usageError = (message: string): Error => Object.assign(new Error(message), { code: 'ERR_USAGE' });

const pngName = (resultPath: string): string => `${basename(resultPath).replace(/\.h5$/i, '')}.png`;

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

export async function runView(o: ViewOptions): Promise<number> {
  const figureOptions: ViewFileOptions = { background: o.background, scale: o.scale, zoom: o.zoom, image: o.image };
  if (o.clim !== undefined) {
    if (o.clim.length !== 2 || !(o.clim[0] < o.clim[1])) throw usageError(`--clim takes two numbers MIN MAX with MIN < MAX, got ${o.clim.join(' ')}`);
    figureOptions.clim = [o.clim[0], o.clim[1]];
  }
  const input = resolve(o.path);
  // A file (existing or not: the error then names it), unless it is a glob.
  const single = !(await isDirectory(input)) && !/[*?[]/.test(basename(input));
  if (single || o.index !== undefined) {
    let file = input;
    if (!single) {
      const files = await listResultFiles(o.path);
      const index = o.index ?? 0;
      if (!(Number.isInteger(index) && index >= 0 && index < files.length)) {
        throw usageError(`--index ${index} is out of range: ${o.path} holds ${files.length} result file(s) (0 to ${files.length - 1})`);
      }
      file = files[index];
    }
    let out = o.output === undefined ? join(dirname(file), pngName(file)) : resolve(o.output);
    if (await isDirectory(out)) out = join(out, pngName(file));
    const figure = await viewFile(file, out, figureOptions).catch((e: unknown) => {
      if ((e as { code?: unknown }).code === 'ERR_NOT_PIV') throw e;
      throw Object.assign(new Error(`Cannot make a figure of ${file}: ${e instanceof Error ? e.message : String(e)}`), { code: 'ERR_RESULT_READ' });
    });
    if (!o.quiet && o.image !== false && !figure.imageFound) process.stderr.write(`view: ${basename(file)}: first image not found, drawn without it\n`);
    if (!o.quiet && (o.background ?? 'none') !== 'none' && figure.clim === undefined) {
      process.stderr.write(`view: ${basename(file)}: no regular grid in this result, drawn without ${o.background}\n`);
    }
    process.stdout.write(`${out}\n`);
    return EXIT_OK;
  }
  return viewDirectory(input, o, figureOptions);
}

/** One figure per result file; the first fixes the scale and colour limits of the others. */
async function viewDirectory(input: string, o: ViewOptions, figureOptions: ViewFileOptions): Promise<number> {
  const files = await listResultFiles(o.path);
  // A glob's results are in the directory above the pattern.
  const base = (await isDirectory(input)) ? input : dirname(input);
  const outDir = o.output === undefined ? join(base, 'figures') : resolve(o.output);
  await mkdir(outDir, { recursive: true });
  const progress = new Progress('view', files.length, 0, process.stderr, o.quiet);
  const shared: ViewFileOptions = { ...figureOptions };
  const [first, ...rest] = files;
  const t0 = performance.now();
  try {
    const figure = await viewFile(first, join(outDir, pngName(first)), shared);
    shared.scale ??= figure.scale;
    shared.arrowMax ??= figure.arrowMax;
    shared.clim ??= figure.clim;
    progress.record({ name: basename(first), ok: true, seconds: (performance.now() - t0) / 1000 });
  } catch (e) {
    progress.record({ name: basename(first), ok: false, error: e instanceof Error ? e.message : String(e), seconds: (performance.now() - t0) / 1000 });
  }
  await local({
    items: rest,
    name: (f) => basename(f),
    read: async (f) => f,
    compute: async (f) => {
      await viewFile(f, join(outDir, pngName(f)), shared);
    },
    write: async () => {},
  }, { workers: o.workers ?? Math.min(8, availableParallelism()), onItem: (r) => progress.record(r) });
  const summary = progress.finish();
  process.stdout.write(`${outDir}\n`);
  return summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
}
