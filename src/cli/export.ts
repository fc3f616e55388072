/**
 * `fluidimage export FILE.h5|DIR --format csv|tsv|vtk|mat|netcdf -o OUT`: PIV results in
 * formats other tools read. A directory (or glob) gives one file per result in OUTDIR.
 */
import { availableParallelism } from 'node:os';
import { mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { local } from '../executors/local.js';
import { EXPORT_FORMATS, EXTENSIONS, exportFile, type ExportFormat } from '../export/formats.js';
import { exportField, type FieldChoice } from '../export/table.js';
import { readPivFile } from '../io/pivfile.js';
import { Progress } from '../report/progress.js';
import { listResultFiles } from '../topologies/mean_piv.js';
import { EXIT_ITEMS_FAILED, EXIT_OK } from './common.js';

export interface ExportOptions {
  path: string;
  format: string;
  output?: string;
  /** Pixels per metre. */
  scale?: number;
  /** Seconds between the two images. */
  dt?: number;
  final?: boolean;
  pass?: number;
  workers?: number;
  quiet?: boolean;
}

const usageError = (message: string): Error => Object.assign(new Error(message), { code: 'ERR_USAGE' });

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

/** Throws the usage error (or the not-a-PIV-result sentence) that exporting `file` would give. */
async function checkChoice(file: string | undefined, format: ExportFormat, choice: FieldChoice): Promise<void> {
  if (file === undefined) return;
  let result;
  try {
    result = await readPivFile(file);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ERR_NOT_PIV') throw e;
    return; // unreadable: that file fails on its own
  }
  if (format === 'netcdf' && choice.final) throw usageError('--final is not available for netcdf (UVmat civdata holds the vectors of a pass)');
  try {
    exportField(result, file, choice);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ERR_USAGE') throw usageError(`${(e as Error).message} (${basename(file)}, the first file)`);
  }
}

export async function runExport(o: ExportOptions): Promise<number> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) throw usageError(`unknown format ${o.format} (expected ${EXPORT_FORMATS.join(', ')})`);
  const format = o.format as ExportFormat;
  if (format === 'netcdf' && o.scale !== undefined) {
    throw usageError('--scale does not apply to netcdf: UVmat keeps positions and displacements in pixels and applies its own calibration ' +
      '(--dt is stored as Civ1_Dt); use csv, tsv, vtk or mat for positions in metres');
  }
  const choice: FieldChoice = { final: o.final, pass: o.pass, calibration: { pxPerM: o.scale, dt: o.dt } };
  const outName = (file: string): string => `${basename(file).replace(/\.h5$/i, '')}${EXTENSIONS[format]}`;
  const input = resolve(o.path);
  // A file (existing or not: the error then names it), unless it is a glob.
  const single = !(await isDirectory(input)) && !/[*?[]/.test(basename(input));
  if (single) {
    let out = o.output === undefined ? join(dirname(input), outName(input)) : resolve(o.output);
    if (await isDirectory(out)) out = join(out, outName(input));
    await exportFile(input, out, format, choice).catch((e: unknown) => {
      if (e instanceof Error && ['ERR_USAGE', 'ERR_NOT_PIV'].includes((e as { code?: string }).code ?? '')) throw e;
      throw Object.assign(new Error(`Cannot export ${input}: ${e instanceof Error ? e.message : String(e)}`), { code: 'ERR_RESULT_READ' });
    });
    process.stdout.write(`${out}\n`);
    return EXIT_OK;
  }
  const files = await listResultFiles(o.path);
  // Usage errors (--final, --pass, a file of another kind) before anything is written: the
  // options against the first file.
  await checkChoice(files[0], format, choice);
  // A glob's results are in the directory above the pattern.
  const base = (await isDirectory(input)) ? input : dirname(input);
  const outDir = o.output === undefined ? join(base, `export_${format}`) : resolve(o.output);
  await mkdir(outDir, { recursive: true });
  const progress = new Progress('export', files.length, 0, process.stderr, o.quiet);
  await local({
    items: files,
    name: (f) => basename(f),
    read: async (f) => f,
    compute: async (f) => exportFile(f, join(outDir, outName(f)), format, choice),
    write: async () => {},
  }, { workers: o.workers ?? Math.min(8, availableParallelism()), onItem: (r) => progress.record(r) });
  const summary = progress.finish();
  process.stdout.write(`${outDir}\n`);
  return summary.failed.length > 0 ? EXIT_ITEMS_FAILED : EXIT_OK;
}
