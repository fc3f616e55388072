/** The command line: one sub-command per file in this folder. */
import yargs, { type Argv } from 'yargs';
import { defaults } from '../params/schema.js';
import { formatParams } from '../params/load.js';
import { SYNTH_CASE_NAMES, SYNTH_CASES } from '../works/synth/cases.js';
import { VERSION } from '../version.js';
import { EXIT_OK, EXIT_USAGE, reportError } from './common.js';
import { TOPOLOGIES, type TopologyEntry, type TopologyName } from '../topologies/registry.js';

/** Options shared by the commands that process a series. */
function seriesOptions<T>(y: Argv<T>, entry: TopologyEntry) {
  return y
    .positional('path', { type: 'string', describe: 'Directory, image file or glob of the series', demandOption: true })
    .option('config', { alias: 'c', type: 'string', describe: 'Params file (YAML or JSON), e.g. from "fluidimage params piv"' })
    .option('set', { type: 'string', array: true, describe: 'Override one parameter: --set piv0.shape_crop_im0=32 (repeatable)' })
    .option('output', { alias: 'o', type: 'string', describe: entry.output })
    .option('how', { type: 'string', choices: ['complete', 'recompute', 'new_dir'], describe: entry.how ?? 'complete: only missing results (default); recompute: all; new_dir: a fresh directory' })
    .option('executor', { type: 'string', choices: ['auto', 'local', 'sequential', 'mpi'] as const, default: 'auto' as const, describe: 'How items are spread: local (all cores, default), sequential (debugging)' })
    .option('workers', { type: 'number', describe: entry.workers ?? 'Pairs computed at once (default: number of cores)' })
    .option('threads', { type: 'number', describe: 'Local executor: JS threads the workers are spread over (default: up to 4 workers per thread, at most 16 threads)' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress output' })
    .option('rank-timeout', { type: 'number', describe: 'MPI: seconds without a sign of life after which a rank counts as lost and the job ends (default 40, or FLUIDIMAGE_RANK_TIMEOUT)' })
    .check((a) => {
      const timeout = a['rank-timeout'];
      if (timeout !== undefined && !(timeout > 0 && timeout <= 86400)) throw new Error(`Expected a number of seconds in (0, 86400] for --rank-timeout but received ${String(timeout)}`);
      for (const name of ['workers', 'threads'] as const) {
        const v = a[name];
        if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new Error(`Expected a positive integer for --${name} but received ${String(v)}`);
      }
      return true;
    });
}

/** The options of a series command, as its runner takes them. */
function runOptions(a: { path?: unknown; config?: string; set?: string[]; output?: string; how?: string; executor?: string; workers?: number; threads?: number; quiet?: boolean; 'rank-timeout'?: number }) {
  return {
    path: a.path as string, config: a.config, set: a.set, output: a.output, how: a.how,
    executor: (a.executor ?? 'auto') as 'auto', workers: a.workers, threads: a.threads, quiet: a.quiet, rankTimeout: a['rank-timeout'],
  };
}

/** Runs the command line; resolves to the process exit status. */
export async function main(argv: string[]): Promise<number> {
  let status = EXIT_OK;
  // With exitProcess(false), yargs still calls the handler after a validation failure.
  let usageFailed = false;
  const guard = (fn: () => Promise<number>) => async () => {
    if (usageFailed) return;
    try {
      status = await fn();
    } catch (e) {
      status = reportError(e);
    }
  };
  let parser = yargs(argv)
    .scriptName('fluidimage')
    .version(VERSION)
    .usage('$0 <command> [options]\n\nPIV and image processing of large series of fluid-mechanics images.');
  for (const [name, entry] of Object.entries(TOPOLOGIES) as [TopologyName, TopologyEntry][]) {
    parser = parser.command(`${name} <path>`, entry.describe, (y) => seriesOptions(y, entry),
      (a) => guard(async () => (await import('../engine/run_series.js')).runTopology(name, runOptions(a)))());
  }
  parser = parser
    .command('params <topology>', 'Print the documented default parameters (a valid params file)', (y) => y
      .positional('topology', { type: 'string', choices: Object.keys(TOPOLOGIES), demandOption: true })
      .option('format', { type: 'string', choices: ['yaml', 'json'] as const, default: 'yaml' as const }),
    (a) => guard(async () => {
      const schema = await TOPOLOGIES[a.topology as TopologyName].schema();
      process.stdout.write(formatParams(schema, defaults(schema), a.format as 'yaml' | 'json'));
      return EXIT_OK;
    })())
    .command('monitor <outdir>', 'Progress, rate, ETA and failures of the job writing (or that wrote) OUTDIR', (y) => y
      .positional('outdir', { type: 'string', demandOption: true })
      .option('json', { type: 'boolean', default: false }),
    (a) => guard(async () => (await import('./monitor.js')).runMonitor(a.outdir as string, a.json))())
    .command('view <path>', 'Figure (PNG) of a PIV result: image, vectors, optional vorticity/magnitude map; a directory gives one per file', (y) => y
      .positional('path', { type: 'string', demandOption: true, describe: 'Result file, directory or glob of result files' })
      .option('output', { alias: 'o', type: 'string', describe: 'PNG file (one result) or directory (default: beside the file; <dir>/figures)' })
      .option('background', { type: 'string', choices: ['none', 'vorticity', 'divergence', 'magnitude', 'uncertainty'] as const, default: 'none' as const, describe: 'Colour map under the vectors, with a colour bar (uncertainty: sqrt(sigma_x^2 + sigma_y^2) of the per-vector uncertainty, px)' })
      .option('scale', { type: 'number', describe: 'Arrow length in image pixels per pixel of displacement (default: from the data; in a directory, from the first file)' })
      .option('image', { type: 'boolean', default: true, describe: 'Draw the first image of the pair (--no-image: dark background)' })
      .option('index', { type: 'number', describe: 'With a directory: only the figure of its k-th result file (from 0)' })
      .option('zoom', { type: 'number', describe: 'Figure pixels per image pixel (default: fit 500 to 1000 pixels)' })
      .option('clim', { type: 'number', array: true, describe: 'Colour limits MIN MAX of the background' })
      .option('workers', { type: 'number', describe: 'Figures made at once (directory)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false })
      .check((a) => {
        if (a.scale !== undefined && !(a.scale > 0)) throw new Error(`Expected a positive number for --scale but received ${a.scale}`);
        if (a.zoom !== undefined && !(a.zoom > 0 && a.zoom <= 16)) throw new Error(`Expected a number in (0, 16] for --zoom but received ${a.zoom}`);
        if (a.index !== undefined && !(Number.isInteger(a.index) && a.index >= 0)) throw new Error(`Expected an integer >= 0 for --index but received ${a.index}`);
        if (a.workers !== undefined && !(Number.isInteger(a.workers) && a.workers >= 1)) throw new Error(`Expected a positive integer for --workers but received ${a.workers}`);
        return true;
      }),
    (a) => guard(async () => (await import('./view.js')).runView({
      path: a.path as string, output: a.output, background: a.background as 'none', scale: a.scale, image: a.image,
      index: a.index, zoom: a.zoom, clim: a.clim, workers: a.workers, quiet: a.quiet,
    }))())
    .command('export <path>', 'PIV results as CSV/TSV, VTK (ParaView), MATLAB v7.3 or netCDF-4 (UVmat); a directory gives one file per result', (y) => y
      .positional('path', { type: 'string', demandOption: true, describe: 'Result file, directory or glob of result files' })
      .option('format', { alias: 'f', type: 'string', choices: ['csv', 'tsv', 'vtk', 'mat', 'netcdf'] as const, demandOption: true })
      .option('output', { alias: 'o', type: 'string', describe: 'Output file (one result) or directory (default: beside the file; <dir>/export_<format>)' })
      .option('scale', { type: 'number', describe: 'Calibration: pixels per metre (positions and vectors in m)' })
      .option('dt', { type: 'number', describe: 'Calibration: seconds between the two images (vectors as velocities, per s)' })
      .option('final', { type: 'boolean', default: false, describe: 'The final regular grid instead of the vectors of the last pass' })
      .option('pass', { type: 'number', describe: 'Pass index (default: the last)' })
      .option('workers', { type: 'number', describe: 'Files exported at once (directory)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false })
      .check((a) => {
        if (a.scale !== undefined && !(a.scale > 0)) throw new Error(`Expected a positive number (pixels per metre) for --scale but received ${a.scale}`);
        if (a.dt !== undefined && !(a.dt > 0)) throw new Error(`Expected a positive number (seconds) for --dt but received ${a.dt}`);
        if (a.pass !== undefined && !(Number.isInteger(a.pass) && a.pass >= 0)) throw new Error(`Expected an integer >= 0 for --pass but received ${a.pass}`);
        if (a.workers !== undefined && !(Number.isInteger(a.workers) && a.workers >= 1)) throw new Error(`Expected a positive integer for --workers but received ${a.workers}`);
        return true;
      }),
    (a) => guard(async () => (await import('./export.js')).runExport({
      path: a.path as string, format: a.format, output: a.output, scale: a.scale, dt: a.dt, final: a.final,
      pass: a.pass, workers: a.workers, quiet: a.quiet,
    }))())
    .command('viewer <outdir>', 'Local web page to browse the results of OUTDIR: pairs, images, vectors, backgrounds, vector values, job progress', (y) => y
      .positional('outdir', { type: 'string', demandOption: true, describe: 'Result directory (e.g. images.piv)' })
      .option('port', { type: 'number', default: 8765, describe: 'TCP port (0: any free port)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on (the page has no authentication: keep it local)' })
      .check((a) => {
        if (!(Number.isInteger(a.port) && a.port >= 0 && a.port <= 65535)) throw new Error(`Expected an integer between 0 and 65535 for --port but received ${a.port}`);
        return true;
      }),
    (a) => guard(async () => (await import('./viewer.js')).runViewer({ outdir: a.outdir as string, port: a.port, host: a.host }))())
    .command('info <file>', 'Summary of a PIV result file', (y) => y
      .positional('file', { type: 'string', demandOption: true })
      .option('json', { type: 'boolean', default: false }),
    (a) => guard(async () => (await import('./info.js')).runInfo(a.file as string, a.json))())
    .command('synth <case>', `Synthetic image pairs with a known displacement field (${SYNTH_CASE_NAMES.map((n) => `${n}: ${SYNTH_CASES[n].doc}`).join('; ')})`, (y) => y
      .positional('case', { type: 'string', choices: SYNTH_CASE_NAMES, demandOption: true })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'Directory to write the images to' })
      .option('size', { type: 'number', array: true, default: [256], describe: 'Image size: N or NY NX' })
      .option('pairs', { type: 'number', default: 2 })
      .option('density', { type: 'number', default: 0.035, describe: 'Particles per pixel' })
      .option('diameter', { type: 'number', default: 2.5, describe: 'Particle image diameter (e^-2), pixels' })
      .option('bit-depth', { type: 'number', choices: [8, 16] })
      .option('noise', { type: 'number', describe: 'Noise standard deviation, fraction of full scale' })
      .option('seed', { type: 'number', default: 1 })
      .option('dx', { type: 'number', describe: 'Override the uniform displacement along x' })
      .option('dy', { type: 'number', describe: 'Override the uniform displacement along y' })
      .option('format', { type: 'string', choices: ['png', 'tif', 'bmp'] as const, default: 'png' as const })
      .check((a) => {
        const size = a.size as number[];
        if (!(size.length === 1 || size.length === 2) || !size.every((s) => Number.isInteger(s) && s >= 16 && s <= 16384)) {
          throw new Error(`Expected one or two integers between 16 and 16384 for --size but received ${size.join(' ')}`);
        }
        if (!(Number.isInteger(a.pairs) && a.pairs >= 1)) throw new Error(`Expected a positive integer for --pairs but received ${a.pairs}`);
        if (!(a.density > 0 && a.density < 1)) throw new Error(`Expected a number in (0, 1) for --density but received ${a.density}`);
        if (!(a.diameter > 0.5 && a.diameter < 20)) throw new Error(`Expected a number in (0.5, 20) for --diameter but received ${a.diameter}`);
        return true;
      }),
    (a) => guard(async () => (await import('./synth.js')).runSynth({
      caseName: a.case as string, output: a.output, size: a.size as number[], pairs: a.pairs, density: a.density,
      diameter: a.diameter, bitDepth: a['bit-depth'] as 8 | 16 | undefined, noise: a.noise, seed: a.seed,
      format: a.format as 'png', dx: a.dx, dy: a.dy,
    }))())
    .demandCommand(1, 'Name a command (fluidimage --help lists them)')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .exitProcess(false)
    .fail((msg, err) => {
      // Errors of our own (with a code) are reported by the caller; yargs' messages and
      // the checks above are usage errors.
      if (err && typeof (err as { code?: unknown }).code === 'string') throw err;
      process.stderr.write(`fluidimage: error: ${msg ?? err?.message}\nRun 'fluidimage --help' for the commands and options.\n`);
      status = EXIT_USAGE;
      usageFailed = true;
    });
  try {
    await parser.parseAsync();
  } catch (e) {
    return reportError(e);
  }
  return status;
}
