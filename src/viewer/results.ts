/**
 * What the viewer serves about a result directory: the list of result files, one result
 * as JSON (vectors of the last pass with their errors), a figure drawn by the renderer of
 * `fluidimage view`. Every file name coming from a request goes through resolveResult,
 * which only lets through regular `.h5` files inside the directory.
 */
import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { readImage, type ImageData } from '../io/images.js';
import { readPivFile } from '../io/pivfile.js';
import { bestGrid, lastPass } from '../post/grid.js';
import { MEAN_FILE } from '../topologies/mean_piv.js';
import { renderFigure, type Background, type FigureOptions } from '../view/figure.js';
import { imageCandidates } from '../view/files.js';
import type { PlotFrame } from '../view/frame.js';
import type { FinalField, PassResult, PivResult } from '../results/piv_result.js';
import { inSeries, isInside, type SeriesPlaces } from './series.js';

/** An error with the HTTP status to answer. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export type ImageChoice = 'a' | 'b' | 'none';

/**
 * The real path of result `name` (relative to `root`, itself a real path). 400 for names
 * that try to leave the directory (`..`, absolute, symlinks pointing outside) or are not
 * result files; 404 when there is no such file. Checked before anything is read.
 */
export async function resolveResult(root: string, name: string | null): Promise<string> {
  if (name === null || name === '') throw new HttpError(400, 'missing parameter: file');
  const segments = name.split('/');
  if (isAbsolute(name) || name.includes('\0') || name.includes('\\') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new HttpError(400, `invalid file name: ${JSON.stringify(name)}`);
  }
  if (!name.endsWith('.h5')) throw new HttpError(400, `not a result file (*.h5): ${JSON.stringify(name)}`);
  // realpath resolves symlinks anywhere on the way: the check below sees where they lead.
  const real = await realpath(join(root, name)).catch(() => {
    throw new HttpError(404, `no such result file: ${name}`);
  });
  if (!isInside(real, root)) throw new HttpError(400, `outside the result directory: ${JSON.stringify(name)}`);
  const st = await stat(real).catch(() => undefined);
  if (!st?.isFile()) throw new HttpError(404, `no such result file: ${name}`);
  return real;
}

/** Result files (sorted names) directly in `root`: as `fluidimage view DIR`, without hidden ones and the mean. */
export async function listResults(root: string): Promise<string[]> {
  const entries: Dirent[] = await readdir(root, { withFileTypes: true });
  const names: string[] = [];
  for (const e of entries) {
    const n = e.name;
    if (n.startsWith('.') || n === MEAN_FILE || !n.endsWith('.h5')) continue;
    if (e.isFile()) names.push(n);
    // A symlink is listed only when it would be served.
    else if (e.isSymbolicLink() && (await resolveResult(root, n).then(() => true, () => false))) names.push(n);
  }
  return names.sort();
}

/**
 * Parsed results, re-read when the file changes (a rerun with --how recompute); a few
 * kept, since toggling options re-requests the same file.
 */
export class ResultCache {
  private readonly entries = new Map<string, { stamp: string; result: Promise<PivResult> }>();

  constructor(private readonly capacity = 8) {}

  async get(path: string): Promise<PivResult> {
    const st = await stat(path);
    const stamp = `${st.mtimeMs}:${st.size}`;
    const hit = this.entries.get(path);
    if (hit !== undefined && hit.stamp === stamp) return hit.result;
    const result = readPivFile(path);
    const entry = { stamp, result };
    // A failed read must not stay cached (the file may be fixed or rewritten).
    result.catch(() => {
      if (this.entries.get(path) === entry) this.entries.delete(path);
    });
    this.entries.delete(path);
    this.entries.set(path, entry);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return result;
  }
}

/** The float32 value as the shortest decimal that reads back to it (null for NaN): compact, exact JSON. */
function f32(v: number): number | null {
  if (!Number.isFinite(v)) return null;
  for (let p = 1; p < 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return s;
  }
  return v;
}

export interface ResultJson {
  file: string;
  names: [string, string];
  /** [ny, nx] of the images. */
  shape_images: [number, number];
  nb_passes: number;
  /** The pass shown: the last. */
  pass: number;
  /** [ny, nx] of its grid (x fastest). */
  shape_grid: [number, number];
  /** Grid step in pixels (to pick the vector nearest a click). */
  step: number;
  x: (number | null)[];
  y: (number | null)[];
  dx: (number | null)[];
  dy: (number | null)[];
  correl: (number | null)[];
  /** Per-vector uncertainty (1 sigma, px) when the result holds it (piv0.uncertainty). */
  sigma_x?: (number | null)[];
  sigma_y?: (number | null)[];
  /** Errors of the last pass: vector index, code, message. */
  errors: { index: number[]; code: number[]; message: string[] };
}

export function resultJson(file: string, result: PivResult): ResultJson {
  const pass = lastPass(result);
  const list = (a: Float32Array) => Array.from(a, f32);
  return {
    file,
    names: result.names,
    shape_images: result.shape_images,
    nb_passes: result.passes.length,
    pass: result.passes.length - 1,
    shape_grid: pass.shape_grid,
    step: gridStep(pass),
    x: list(pass.xs),
    y: list(pass.ys),
    dx: list(pass.deltaxs),
    dy: list(pass.deltays),
    correl: list(pass.correls_max),
    ...(pass.extra?.uncertainty_x && pass.extra.uncertainty_y
      ? { sigma_x: list(pass.extra.uncertainty_x), sigma_y: list(pass.extra.uncertainty_y) } : {}),
    errors: { index: Array.from(pass.errors.keys), code: Array.from(pass.errors.codes), message: pass.errors.values },
  };
}

/** Smallest positive distance between distinct x (or y) positions; 16 when unknown. */
function gridStep(pass: PassResult): number {
  let best = Number.POSITIVE_INFINITY;
  for (const axis of [pass.xs, pass.ys]) {
    const unique = [...new Set(axis)].sort((a, b) => a - b);
    for (let i = 1; i < unique.length; i++) best = Math.min(best, unique[i] - unique[i - 1]);
  }
  return Number.isFinite(best) && best > 0 ? best : 16;
}

/** The image drawn behind a figure, or why there is none. */
export interface FoundImage {
  image?: ImageData;
  /** Set when an image exists but is not drawn: it lies outside the series (see series.ts). */
  note?: string;
}

/**
 * Image a (as `fluidimage view`) or b of the pair, found the same way (stored path, else
 * beside the result directory); frame 1 when both are frames of one double-frame file.
 * Only images of the series (`places`) are read: a result file cannot choose others.
 */
async function findImage(resultPath: string, result: PivResult, which: ImageChoice, places: SeriesPlaces): Promise<FoundImage> {
  if (which === 'none') return {};
  const [pathA, pathB] = result.paths;
  const [nameA, nameB] = result.names;
  const frames = which === 'b' && pathA === pathB && nameA === nameB ? { frame: 1 } : {};
  const pair: PivResult = which === 'a' ? result : { ...result, names: [nameB, nameA], paths: [pathB, pathA] };
  let refused = false;
  for (const candidate of imageCandidates(resultPath, pair)) {
    const path = await realpath(candidate).catch(() => undefined);
    if (path === undefined) continue;
    if (!inSeries(path, resultPath, places)) {
      refused = true;
      continue;
    }
    try {
      // The real path, checked above: a link changed meanwhile is not followed.
      return { image: await readImage(path, frames) };
    } catch {
      // Unreadable: try the next place, else draw without image.
    }
  }
  return refused ? { note: `image ${which.toUpperCase()} is outside the series of this result directory: not drawn` } : {};
}

/**
 * The result with the vectors of its last pass removed but its field kept (the final grid,
 * else the pass's own grid as one), so that the renderer draws the background alone.
 */
export function withoutVectors(result: PivResult): PivResult {
  const pass = lastPass(result);
  let final: FinalField | undefined = pass.final;
  const grid = final === undefined ? bestGrid(result) : undefined;
  if (grid !== undefined) {
    const n = grid.nx * grid.ny;
    final = {
      ixvecs_final: Float32Array.from({ length: n }, (_, i) => grid.x[i % grid.nx]),
      iyvecs_final: Float32Array.from({ length: n }, (_, i) => grid.y[Math.floor(i / grid.nx)]),
      deltaxs_final: grid.u,
      deltays_final: grid.v,
    };
  }
  const empty = new Float32Array(0);
  const stripped: PassResult = {
    xs: empty, ys: empty, deltaxs: empty, deltays: empty, correls_max: empty,
    errors: { keys: new Int32Array(0), values: [], codes: new Int32Array(0) },
    shape_grid: [0, 0],
    final,
  };
  // The uncertainty background: that of the grid kept (the pass's when it stands as the final one).
  const ex = pass.extra ?? {};
  const [ux, uy] = pass.final !== undefined ? [ex.uncertainty_x_final, ex.uncertainty_y_final] : [ex.uncertainty_x, ex.uncertainty_y];
  if (ux !== undefined && uy !== undefined) stripped.extra = { uncertainty_x_final: ux, uncertainty_y_final: uy };
  return { ...result, passes: [...result.passes.slice(0, -1), stripped] };
}

/** Arrow scale and colour limits shared by all the figures of a series (see sharedScales). */
export type Scales = Pick<FigureOptions, 'scale' | 'arrowMax' | 'clim'>;

/** Scales chosen from the data of `result` (as the first figure of `fluidimage view DIR`). */
export async function scalesOf(result: PivResult, background: Background): Promise<Scales> {
  const [ny, nx] = result.shape_images;
  // The scales do not depend on the zoom: draw a thumbnail, it is cheaper.
  const zoom = Math.min(1, 64 / Math.max(nx, ny, 1));
  const figure = await renderFigure(result, undefined, { background, zoom });
  return { scale: figure.scale, arrowMax: figure.arrowMax, clim: figure.clim };
}

export interface FigureRequest {
  background: Background;
  image: ImageChoice;
  vectors: boolean;
  scales: Scales;
  /** Where images may be read from (seriesPlaces). */
  places: SeriesPlaces;
}

/** A PNG of the result and where its plot lies (to map clicks to image coordinates). */
export async function figurePng(path: string, result: PivResult, req: FigureRequest): Promise<{ png: Buffer; frame: PlotFrame; imageFound: boolean; note?: string }> {
  const { image, note } = await findImage(path, result, req.image, req.places);
  const imageName = req.image === 'a' ? result.names[0] : req.image === 'b' ? result.names[1] : '';
  const title = req.image === 'none' ? basename(path) : `${basename(path)} - image ${req.image.toUpperCase()} ${imageName}`;
  const figure = await renderFigure(req.vectors ? result : withoutVectors(result), image, {
    ...req.scales,
    background: req.background,
    // The note in the figure itself too: it may be saved or shared without the page.
    title: note === undefined ? title : `${title} (outside the series: not drawn)`,
  });
  return { png: await figure.canvas.toPng(), frame: figure.frame, imageFound: image !== undefined, note };
}
