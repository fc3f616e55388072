/**
 * A figure of a PIV result: the first image in grey (or a dark plot), optionally a colour
 * map of vorticity, divergence, magnitude or uncertainty with its colour bar, the vectors of the last
 * pass as arrows coloured by magnitude, rejected vectors as red crosses, a scale arrow,
 * axes with tick labels in pixels, and a title. Rendered into an RGBA canvas.
 */
import type { ImageData } from '../io/images.js';
import { divergence, vorticity } from '../post/derivatives.js';
import { bestGrid, finalGrid, lastPass, magnitude, type GridField } from '../post/grid.js';
import type { PivResult } from '../results/piv_result.js';
import { Canvas, type Rgb } from './canvas.js';
import { colormap } from './colormap.js';
import { drawScalarField, type ScalarGrid } from './field_layer.js';
import { textWidth } from './font.js';
import { figX, figY, makeFrame, type PlotFrame } from './frame.js';
import { displayImage, drawGrey } from './image_layer.js';
import { formatNumber, niceBelow, niceStep, ticks } from './numbers.js';
import { drawArrow, drawVectors, type Vectors } from './vector_layer.js';

export const BACKGROUNDS = ['none', 'vorticity', 'divergence', 'magnitude', 'uncertainty'] as const;
export type Background = (typeof BACKGROUNDS)[number];

export interface FigureOptions {
  background?: Background;
  /** Arrow length in image pixels per pixel of displacement (default: from the data). */
  scale?: number;
  /** Colour limits of the background (default: from the data). */
  clim?: [number, number];
  /** Displacement magnitude at the top of the arrow colour map (default: from the data). */
  arrowMax?: number;
  /** Figure pixels per image pixel (default: the plot fits in about 500 to 1000 pixels). */
  zoom?: number;
  /** Text at the top left. */
  title?: string;
}

/** What was drawn, and the settings that were chosen from the data (to reuse them). */
export interface Figure {
  canvas: Canvas;
  frame: PlotFrame;
  scale: number;
  arrowMax: number;
  clim?: [number, number];
  /** Colour bar rectangle, when there is a background. */
  colourBar?: { left: number; top: number; width: number; height: number };
  arrows: number;
  /** One arrow in `stride` along x and y is drawn (dense fields). */
  stride: number;
  rejected: number;
}

const WHITE: Rgb = 0xffffff;
const INK: Rgb = 0x000000;
const DARK_PLOT: Rgb = 0x1e1e24;
/** Opacity of the colour map over an image (1 without image). */
const FIELD_ALPHA_OVER_IMAGE = 0.6;

const BAR_TITLES: Record<Exclude<Background, 'none'>, string> = {
  vorticity: 'vorticity',
  divergence: 'divergence',
  magnitude: '|d| (px)',
  uncertainty: 'sigma (px)',
};

/** Default zoom: big images shrunk to about 1000 pixels, small ones enlarged to about 500. */
export function defaultZoom(nx: number, ny: number): number {
  const side = Math.max(nx, ny);
  if (side > 1000) return 1000 / side;
  if (side < 250) return Math.min(4, Math.floor(500 / side));
  return 1;
}

export async function renderFigure(result: PivResult, image: ImageData | undefined, opts: FigureOptions = {}): Promise<Figure> {
  const background = opts.background ?? 'none';
  const pass = lastPass(result);
  const [imgNx, imgNy] = imageSize(result, image);
  const zoom = opts.zoom ?? defaultZoom(imgNx, imgNy);
  if (!(zoom > 0 && zoom <= 16)) throw new Error(`zoom must be in (0, 16], got ${zoom}`);
  const plotW = Math.max(1, Math.round(imgNx * zoom));
  const plotH = Math.max(1, Math.round(imgNy * zoom));
  const fs = Math.max(plotW, plotH) >= 900 ? 2 : 1;

  // Background scalar and its limits (they set the width of the colour bar labels).
  const grid = background === 'none' ? undefined : bestGrid(result);
  const scalar = grid === undefined ? undefined : scalarOf(grid, background, result);
  const clim = scalar === undefined ? undefined : opts.clim ?? autoLimits(scalar.values, background);

  // Layout: margins around the plot.
  const tick = 4 * fs;
  const xStep = niceStep(imgNx / Math.max(2, Math.floor(plotW / (textWidth(String(imgNx), fs) + 24 * fs))));
  const yStep = niceStep(imgNy / Math.max(2, Math.floor(plotH / (28 * fs))));
  const xTicks = ticks(0, imgNx - 1, xStep);
  const yTicks = ticks(0, imgNy - 1, yStep);
  const yLabelW = Math.max(...yTicks.map((t) => textWidth(formatNumber(t), fs)), 0);
  const left = 8 + yLabelW + 3 * fs + tick;
  const top = 8 * fs + 14;
  const bottom = tick + 4 + 8 * fs + 6;
  const barGap = 10 * fs;
  const barW = 12 * fs;
  let right = Math.max(12, Math.ceil(textWidth(formatNumber(xTicks[xTicks.length - 1] ?? 0), fs) / 2) + 4);
  let barTitle = '';
  if (clim !== undefined) {
    barTitle = BAR_TITLES[background as Exclude<Background, 'none'>];
    const labelW = Math.max(textWidth(formatNumber(clim[0]), fs), textWidth(formatNumber(clim[1]), fs));
    right = Math.max(barGap + barW + 4 * fs + labelW + 8, barGap + textWidth(barTitle, fs) + 8);
  }
  const canvas = new Canvas(left + plotW + right, top + plotH + bottom, WHITE);
  const frame = makeFrame(left, top, plotW, plotH, imgNx, imgNy);

  // Plot content: image (or dark), colour map, vectors.
  canvas.fillRect(left, top, plotW, plotH, DARK_PLOT);
  if (image !== undefined) drawGrey(canvas, frame, await displayImage(image, plotW, plotH));
  if (scalar !== undefined && clim !== undefined) {
    const lut = colormap(sequential(background) ? 'viridis' : 'coolwarm');
    drawScalarField(canvas, frame, scalar, lut, clim[0], clim[1], image === undefined ? 1 : FIELD_ALPHA_OVER_IMAGE);
  }
  const mags = magnitude(pass.deltaxs, pass.deltays);
  // A few outliers should not leave every other arrow at the bottom of the colour map.
  const arrowMax = opts.arrowMax ?? Math.max(quantile(mags, 0.98), 1e-6);
  // Dense fields: one arrow in `stride` along x and y, so that arrows stay apart.
  const spacing = gridSpacing(pass.xs, pass.ys);
  const stride = Math.max(1, Math.ceil(MIN_ARROW_SPACING / (spacing * frame.zx)));
  const scale = opts.scale ?? autoScale(pass.xs, pass.ys, mags) * stride;
  if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`arrow scale must be > 0, got ${scale}`);
  const drawn = drawVectors(canvas, frame, subset({ xs: pass.xs, ys: pass.ys, dx: pass.deltaxs, dy: pass.deltays }, pass.shape_grid, stride),
    scale, colormap('bright'), arrowMax);

  // Clip whatever went past the plot, then draw the frame, axes and annotations.
  canvas.fillRect(0, 0, canvas.width, top, WHITE);
  canvas.fillRect(0, top + plotH, canvas.width, bottom, WHITE);
  canvas.fillRect(0, top, left, plotH, WHITE);
  canvas.fillRect(left + plotW, top, right, plotH, WHITE);
  drawBox(canvas, left - 1, top - 1, plotW + 2, plotH + 2, INK);
  for (const t of xTicks) {
    const X = Math.round(figX(frame, t));
    canvas.fillRect(X, top + plotH + 1, 1, tick, INK);
    canvas.text(formatNumber(t), X, top + plotH + tick + 4, INK, fs, 'center');
  }
  for (const t of yTicks) {
    const Y = Math.round(figY(frame, t));
    canvas.fillRect(left - 1 - tick, Y, tick, 1, INK);
    canvas.text(formatNumber(t), left - tick - 3 * fs - 1, Y - Math.floor((7 * fs) / 2), INK, fs, 'right');
  }
  const title = (opts.title ?? '') + (stride > 1 ? `${opts.title ? ', ' : ''}1 arrow in ${stride} along x and y` : '');
  canvas.text(title, left, Math.round((top - 7 * fs) / 2), INK, fs, 'left');
  drawScaleArrow(canvas, frame, scale, arrowMax, fs);

  let colourBar: Figure['colourBar'];
  if (clim !== undefined) {
    colourBar = { left: left + plotW + barGap, top, width: barW, height: plotH };
    drawColourBar(canvas, colourBar, colormap(sequential(background) ? 'viridis' : 'coolwarm'), clim, barTitle, fs);
  }
  return { canvas, frame, scale, arrowMax, clim, colourBar, arrows: drawn.arrows, rejected: drawn.rejected, stride };
}

/** Figure pixels between neighbouring arrows below which only a subset is drawn. */
const MIN_ARROW_SPACING = 10;

/** Every `stride`-th vector along x and y of a [ny, nx] grid (of the list, for scattered vectors). */
function subset(v: Vectors, shape: [number, number], stride: number): Vectors {
  if (stride === 1) return v;
  const [ny, nx] = shape;
  const keep: number[] = [];
  if (ny * nx === v.xs.length && ny > 1) {
    for (let iy = 0; iy < ny; iy += stride) for (let ix = 0; ix < nx; ix += stride) keep.push(iy * nx + ix);
  } else {
    for (let k = 0; k < v.xs.length; k += stride * stride) keep.push(k);
  }
  const pick = (a: ArrayLike<number>) => Float32Array.from(keep, (k) => a[k]);
  return { xs: pick(v.xs), ys: pick(v.ys), dx: pick(v.dx), dy: pick(v.dy) };
}

/** [nx, ny] of the image: from the file, else the image read, else the vector extent. */
function imageSize(result: PivResult, image: ImageData | undefined): [number, number] {
  const [ny, nx] = result.shape_images;
  if (nx > 0 && ny > 0) return [nx, ny];
  if (image !== undefined) return [image.width, image.height];
  const pass = lastPass(result);
  let maxX = 0;
  let maxY = 0;
  for (let i = 0; i < pass.xs.length; i++) {
    maxX = Math.max(maxX, pass.xs[i]);
    maxY = Math.max(maxY, pass.ys[i]);
  }
  return [Math.max(16, Math.ceil(maxX + 16)), Math.max(16, Math.ceil(maxY + 16))];
}

function scalarOf(grid: GridField, background: Exclude<Background, 'none'> | 'none', result: PivResult): ScalarGrid {
  const values = background === 'vorticity' ? vorticity(grid) : background === 'divergence' ? divergence(grid)
    : background === 'uncertainty' ? uncertaintyOf(result, grid) : magnitude(grid.u, grid.v);
  return { nx: grid.nx, ny: grid.ny, x: grid.x, y: grid.y, values };
}

/** Backgrounds of positive values (a sequential colour map from 0). */
const sequential = (background: Background): boolean => background === 'magnitude' || background === 'uncertainty';

/**
 * sqrt(sigma_x^2 + sigma_y^2) of the per-vector uncertainty on the grid bestGrid gives
 * (uncertainty_*_final on the final grid, else uncertainty_* of the last pass).
 */
function uncertaintyOf(result: PivResult, grid: GridField): Float32Array {
  const extra = lastPass(result).extra ?? {};
  const onFinal = finalGrid(result) !== undefined;
  const [ux, uy] = onFinal ? [extra.uncertainty_x_final, extra.uncertainty_y_final] : [extra.uncertainty_x, extra.uncertainty_y];
  const n = grid.nx * grid.ny;
  if (ux === undefined || uy === undefined || ux.length !== n || uy.length !== n) {
    throw new Error(`no per-vector uncertainty in this result (${onFinal ? 'uncertainty_x_final, uncertainty_y_final' : 'uncertainty_x, uncertainty_y'}): ` +
      'it was made with piv0.uncertainty false or by an older version');
  }
  return magnitude(ux, uy);
}

/** Symmetric limits for signed quantities, [0, max] for magnitudes; robust to a few outliers. */
export function autoLimits(values: Float32Array, background: Background): [number, number] {
  if (background === 'magnitude') return [0, Math.max(quantile(values, 1), 1e-6)];
  // A few windows of weak correlation have a large sigma: the bulk of the field sets the scale.
  if (background === 'uncertainty') return [0, Math.max(quantile(values, 0.98), 1e-6)];
  const abs = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) abs[i] = Math.abs(values[i]);
  const m = Math.max(quantile(abs, 0.99), 1e-6);
  return [-m, m];
}

/** The q-quantile (0..1) of the finite values; 0 when there is none. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) finite.push(values[i]);
  if (finite.length === 0) return 0;
  finite.sort((a, b) => a - b);
  return finite[Math.min(finite.length - 1, Math.max(0, Math.round(q * (finite.length - 1))))];
}

/** Arrow scale so that the 95th percentile of the magnitude spans 90% of the grid step. */
export function autoScale(xs: ArrayLike<number>, ys: ArrayLike<number>, mags: Float32Array): number {
  const ref = quantile(mags, 0.95);
  const spacing = gridSpacing(xs, ys);
  return ref > 0 ? (0.9 * spacing) / ref : 1;
}

/**
 * Smallest positive difference between distinct x (or y) positions; 16 when unknown. At
 * least half the mean spacing (extent over count): positions of files of other layouts
 * (not on a grid, float noise) would otherwise give tiny arrows and a huge scale arrow.
 */
function gridSpacing(xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  let best = Number.POSITIVE_INFINITY;
  const extent: number[] = [];
  for (const axis of [xs, ys]) {
    const unique = [...new Set(Array.from(axis).filter(Number.isFinite))].sort((a, b) => a - b);
    for (let i = 1; i < unique.length; i++) best = Math.min(best, unique[i] - unique[i - 1]);
    extent.push(unique.length > 1 ? unique[unique.length - 1] - unique[0] : 0);
  }
  const n = xs.length;
  const mean = n > 1 ? (extent[0] > 0 && extent[1] > 0 ? Math.sqrt((extent[0] * extent[1]) / n) : Math.max(extent[0], extent[1]) / (n - 1)) : 0;
  if (Number.isFinite(best) && best > 0) return Math.max(best, 0.5 * mean);
  return mean > 0 ? mean : 16;
}

function drawBox(canvas: Canvas, x: number, y: number, w: number, h: number, colour: Rgb): void {
  canvas.fillRect(x, y, w, 1, colour);
  canvas.fillRect(x, y + h - 1, w, 1, colour);
  canvas.fillRect(x, y, 1, h, colour);
  canvas.fillRect(x + w - 1, y, 1, h, colour);
}

/** A reference arrow at the top right of the plot with its length in pixels of displacement. */
function drawScaleArrow(canvas: Canvas, frame: PlotFrame, scale: number, ref: number, fs: number): void {
  let value = niceBelow(ref);
  // At least 12 figure pixels long, so that it reads as an arrow.
  if (value * scale * frame.zx < 12) value = niceStep(12 / (scale * frame.zx));
  const length = value * scale * frame.zx;
  const label = `${formatNumber(value)} px`;
  const rightEnd = frame.left + frame.width - 2;
  const y = Math.round(frame.top / 2);
  const start = Math.max(frame.left, rightEnd - length);
  drawArrow(canvas, start, y, rightEnd - start, 0, INK, Math.max(1.2, fs), 6 * fs, false);
  canvas.text(label, start - 4 * fs, y - Math.floor((7 * fs) / 2), INK, fs, 'right');
}

/** Vertical colour bar, maximum at the top, with its limits and name. */
function drawColourBar(canvas: Canvas, bar: NonNullable<Figure['colourBar']>, lut: Int32Array, clim: [number, number], title: string, fs: number): void {
  for (let r = 0; r < bar.height; r++) {
    const level = bar.height > 1 ? Math.round(255 * (1 - r / (bar.height - 1))) : 255;
    canvas.fillRect(bar.left, bar.top + r, bar.width, 1, lut[level]);
  }
  drawBox(canvas, bar.left - 1, bar.top - 1, bar.width + 2, bar.height + 2, INK);
  const labelX = bar.left + bar.width + 4 * fs;
  canvas.text(formatNumber(clim[1]), labelX, bar.top, INK, fs, 'left');
  canvas.text(formatNumber(clim[0]), labelX, bar.top + bar.height - 7 * fs, INK, fs, 'left');
  canvas.text(title, bar.left, Math.round((bar.top - 7 * fs) / 2), INK, fs, 'left');
}
