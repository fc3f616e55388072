/**
 * Vectors as arrows from their positions (quiver's "tail" pivot), coloured by magnitude
 * over a dark halo so they read on any background; rejected vectors as small red crosses.
 */
import type { Canvas, Rgb } from './canvas.js';
import { figX, figY, type PlotFrame } from './frame.js';

export interface Vectors {
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
  dx: ArrayLike<number>;
  dy: ArrayLike<number>;
}

export const REJECTED_COLOUR: Rgb = 0xff2020;
const HALO: Rgb = 0x000000;
/** Half-angle of the arrow heads. */
const HEAD_ANGLE = (25 * Math.PI) / 180;
const COS_HEAD = Math.cos(HEAD_ANGLE);
const SIN_HEAD = Math.sin(HEAD_ANGLE);

/**
 * One arrow from (X, Y) along (LX, LY), in figure pixels, with the given core width.
 * The head is at most 35% of the length and at most `maxHead` pixels.
 */
export function drawArrow(canvas: Canvas, X: number, Y: number, LX: number, LY: number, colour: Rgb, width: number, maxHead: number, halo: boolean): void {
  const length = Math.sqrt(LX * LX + LY * LY);
  const X1 = X + LX;
  const Y1 = Y + LY;
  // Unit vector pointing back from the tip, rotated by +/- the head angle.
  const ux = length > 0 ? -LX / length : 0;
  const uy = length > 0 ? -LY / length : 0;
  const head = Math.min(maxHead, Math.max(0.35 * length, Math.min(length, 2.5)));
  const ax = X1 + head * (ux * COS_HEAD - uy * SIN_HEAD);
  const ay = Y1 + head * (ux * SIN_HEAD + uy * COS_HEAD);
  const bx = X1 + head * (ux * COS_HEAD + uy * SIN_HEAD);
  const by = Y1 + head * (-ux * SIN_HEAD + uy * COS_HEAD);
  const tip: ArrowTip = { X1, Y1, ax, ay, bx, by, withHead: length >= 1 };
  if (halo) strokeArrow(canvas, X, Y, tip, width + 1.5, HALO, 0.55);
  strokeArrow(canvas, X, Y, tip, width, colour, 1);
}

/** End point and the two ends of the head of an arrow. */
interface ArrowTip {
  X1: number;
  Y1: number;
  ax: number;
  ay: number;
  bx: number;
  by: number;
  withHead: boolean;
}

function strokeArrow(canvas: Canvas, X: number, Y: number, t: ArrowTip, width: number, colour: Rgb, opacity: number): void {
  canvas.line(X, Y, t.X1, t.Y1, width, colour, opacity);
  if (t.withHead) {
    canvas.line(t.X1, t.Y1, t.ax, t.ay, width, colour, opacity);
    canvas.line(t.X1, t.Y1, t.bx, t.by, width, colour, opacity);
  }
}

/**
 * All vectors: arrow length = `scale` image pixels per pixel of displacement, colour from
 * `lut` over [0, maxMagnitude]; NaN vectors become crosses. Returns the number drawn.
 */
export function drawVectors(canvas: Canvas, frame: PlotFrame, v: Vectors, scale: number, lut: Int32Array, maxMagnitude: number): { arrows: number; rejected: number } {
  const width = Math.max(1, Math.min(frame.zx, 2) * 1.2);
  const maxHead = Math.max(4, 6 * Math.min(frame.zx, 2));
  const cross = Math.max(2.5, 3 * Math.min(frame.zx, 2));
  const gain = maxMagnitude > 0 ? 255 / maxMagnitude : 0;
  let arrows = 0;
  let rejected = 0;
  for (let k = 0; k < v.xs.length; k++) {
    const X = figX(frame, v.xs[k]);
    const Y = figY(frame, v.ys[k]);
    const dx = v.dx[k];
    const dy = v.dy[k];
    if (Number.isNaN(dx) || Number.isNaN(dy)) {
      // Dark halo first, so the cross reads on a red colour map too.
      canvas.line(X - cross, Y - cross, X + cross, Y + cross, 3, HALO, 0.6);
      canvas.line(X - cross, Y + cross, X + cross, Y - cross, 3, HALO, 0.6);
      canvas.line(X - cross, Y - cross, X + cross, Y + cross, 1.5, REJECTED_COLOUR);
      canvas.line(X - cross, Y + cross, X + cross, Y - cross, 1.5, REJECTED_COLOUR);
      rejected++;
      continue;
    }
    const level = Math.min(255, Math.round(Math.sqrt(dx * dx + dy * dy) * gain));
    drawArrow(canvas, X, Y, dx * scale * frame.zx, dy * scale * frame.zy, lut[level], width, maxHead, true);
    arrows++;
  }
  return { arrows, rejected };
}
