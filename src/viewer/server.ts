/**
 * The result viewer's HTTP server (node:http only): the page, and JSON/PNG endpoints
 *
 *   GET /                  the page (one HTML file, inline script and style)
 *   GET /api/files         {outdir, files: [names]}: result files of the directory
 *   GET /api/result?file=  vectors, grid and errors of the last pass (ResultJson)
 *   GET /api/figure?file=&background=none|vorticity|divergence|magnitude&image=a|b|none&vectors=0|1
 *                          PNG drawn by the renderer of `fluidimage view`; header
 *                          X-Plot-Frame: where the plot lies in it (JSON PlotFrame)
 *   GET /api/job           progress of the latest job (as `fluidimage monitor --json`),
 *                          or {state: 'none', message}
 *
 * It serves nothing but these: result names are checked by resolveResult, and the images
 * drawn in figures are only read, never sent as files, and only those of the series
 * (series.ts). It answers only Host names that DNS rebinding cannot forge (host.ts).
 */
import { stat, realpath } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { jobState } from '../report/job_state.js';
import { BACKGROUNDS, type Background } from '../view/figure.js';
import type { PivResult } from '../results/piv_result.js';
import { hostAllowed } from './host.js';
import { VIEWER_PAGE } from './page.js';
import {
  figurePng,
  HttpError,
  listResults,
  resolveResult,
  ResultCache,
  resultJson,
  scalesOf,
  type ImageChoice,
  type Scales,
} from './results.js';
import { seriesPlaces } from './series.js';

export interface ViewerOptions {
  /** 0 (default): any free port. */
  port?: number;
  /** Default 127.0.0.1: the viewer has no authentication. */
  host?: string;
}

export interface Viewer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Clients that open connections and send nothing, or half a request, are cut off soon (a
 * local page sends its requests at once): a few such sockets cannot hold the viewer.
 * Timeouts are checked every second.
 */
const IDLE_LIMITS = { headersTimeout: 5_000, requestTimeout: 10_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 };
const SOCKET_IDLE_MS = 30_000;

/** The page may only talk to this server (no CDN, no external fetch); data: is its empty favicon. */
const PAGE_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'";

function choice<T extends string>(value: string | null, allowed: readonly T[], fallback: T, name: string): T {
  if (value === null) return fallback;
  const found = allowed.find((a) => a === value);
  if (found === undefined) throw new HttpError(400, `${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return found;
}

/** Serves the result directory `outdir` until close() is called. */
export async function startViewer(outdir: string, opts: ViewerOptions = {}): Promise<Viewer> {
  const dir = resolve(outdir);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
    throw Object.assign(new Error(`No such result directory: ${dir}`), { code: 'ERR_INPUT' });
  }
  // Real path: symlinked results are compared against it (see resolveResult).
  const root = await realpath(dir);
  const host = opts.host ?? '127.0.0.1';
  const cache = new ResultCache();
  // One set of scales per (first file, background): arrows and colours compare across pairs.
  const scales = new Map<string, Promise<Scales>>();

  async function sharedScales(background: Background): Promise<Scales> {
    const first = (await listResults(root))[0];
    if (first === undefined) return {};
    const key = `${first}\n${background}`;
    let s = scales.get(key);
    if (s === undefined) {
      s = resolveResult(root, first)
        .then(async (path) => scalesOf(await cache.get(path), background))
        .catch((): Scales => ({}));
      scales.set(key, s);
    }
    return s;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Pages of other sites must not be answered (DNS rebinding).
    if (!hostAllowed(req.headers.host, host)) throw new HttpError(403, 'unexpected Host header');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      throw new HttpError(405, 'only GET and HEAD');
    }
    const url = new URL(req.url ?? '/', 'http://viewer');
    const q = url.searchParams;
    switch (url.pathname) {
      case '/':
      case '/index.html':
        return send(res, 200, 'text/html; charset=utf-8', VIEWER_PAGE, { 'Content-Security-Policy': PAGE_CSP });
      case '/api/files':
        return sendJson(res, { outdir: root, files: await listResults(root) });
      case '/api/result': {
        const path = await resolveResult(root, q.get('file'));
        return sendJson(res, resultJson(q.get('file') ?? '', await readResult(path)));
      }
      case '/api/figure': {
        const path = await resolveResult(root, q.get('file'));
        const background = choice(q.get('background'), BACKGROUNDS, 'none', 'background');
        const image = choice<ImageChoice>(q.get('image'), ['a', 'b', 'none'], 'a', 'image');
        const vectors = choice(q.get('vectors'), ['0', '1'], '1', 'vectors') === '1';
        const result = await readResult(path);
        const places = await seriesPlaces(root);
        const figure = await figurePng(path, result, { background, image, vectors, scales: await sharedScales(background), places });
        return send(res, 200, 'image/png', figure.png, {
          'X-Plot-Frame': JSON.stringify(figure.frame),
          'X-Image-Found': figure.imageFound ? '1' : '0',
          ...(figure.note === undefined ? {} : { 'X-Image-Note': figure.note }),
        });
      }
      case '/api/job':
        return sendJson(res, await jobState(root).catch((e: unknown) => ({
          // No job directory yet, or one being created: nothing to show, not a failure.
          state: 'none', message: e instanceof Error ? e.message : String(e),
        })));
      default:
        throw new HttpError(404, `not found: ${url.pathname}`);
    }
  }

  /** A result file that exists but cannot be read is the client's choice of file: 422. */
  async function readResult(path: string): Promise<PivResult> {
    return cache.get(path).catch((e: unknown) => {
      throw new HttpError(422, `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  const server = createServer(IDLE_LIMITS, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      const message = e instanceof Error ? e.message : String(e);
      if (res.headersSent) res.destroy();
      else sendJson(res, { error: message }, status);
    });
  });
  // A client silent after its request (not reading the figure) holds no socket for long either.
  server.setTimeout(SOCKET_IDLE_MS);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/`,
    port,
    close: () => new Promise<void>((ok) => {
      server.close(() => ok());
      // Browsers keep connections alive: without this, close() would wait for them.
      server.closeAllConnections();
    }),
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    // Results change while a job runs.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(body);
}

function sendJson(res: ServerResponse, value: unknown, status = 200): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}
