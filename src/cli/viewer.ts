/**
 * `fluidimage viewer OUTDIR [--port P] [--host H]`: a local web page to browse the results
 * of OUTDIR (pairs, images, vectors, backgrounds, values of a vector, progress of the job),
 * served until SIGINT or SIGTERM.
 */
import { isLoopback } from '../viewer/host.js';
import { startViewer } from '../viewer/server.js';
import { EXIT_OK } from './common.js';

export interface ViewerCliOptions {
  outdir: string;
  port: number;
  host: string;
}

export async function runViewer(o: ViewerCliOptions): Promise<number> {
  const viewer = await startViewer(o.outdir, { port: o.port, host: o.host }).catch((e: unknown) => {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') throw Object.assign(new Error(`port ${o.port} is in use on ${o.host}: choose another with --port (0: any free port)`), { code: 'ERR_USAGE' });
    if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') throw Object.assign(new Error(`cannot listen on host ${o.host}: ${err.message}`), { code: 'ERR_USAGE' });
    throw e;
  });
  if (!isLoopback(o.host)) {
    process.stderr.write(`viewer: listening on ${o.host}: anyone who can reach it can read these results (no authentication)\n`);
  }
  process.stdout.write(`fluidimage viewer: ${viewer.url}  (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await viewer.close();
  return EXIT_OK;
}
