/**
 * Where the image lies in the figure: the plot rectangle and the map from image
 * coordinates (x = column, y = row, pixel centres at integers) to figure pixel centres.
 */
export interface PlotFrame {
  /** Plot rectangle, in figure pixels. */
  left: number;
  top: number;
  width: number;
  height: number;
  /** Figure pixels per image pixel, along x and y. */
  zx: number;
  zy: number;
}

/** The frame showing an image of nx x ny pixels as a width x height rectangle at (left, top). */
export function makeFrame(left: number, top: number, width: number, height: number, nx: number, ny: number): PlotFrame {
  return { left, top, width, height, zx: width / nx, zy: height / ny };
}

/** Figure column of image column x (image pixel i spans figure [left + i*zx, left + (i+1)*zx)). */
export function figX(f: PlotFrame, x: number): number {
  return f.left + (x + 0.5) * f.zx - 0.5;
}

export function figY(f: PlotFrame, y: number): number {
  return f.top + (y + 0.5) * f.zy - 0.5;
}

/** Image column at figure column X (inverse of figX). */
export function imageX(f: PlotFrame, X: number): number {
  return (X - f.left + 0.5) / f.zx - 0.5;
}

export function imageY(f: PlotFrame, Y: number): number {
  return (Y - f.top + 0.5) / f.zy - 0.5;
}
