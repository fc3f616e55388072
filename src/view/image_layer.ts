/**
 * The first image of the pair as a grey background: contrast stretched between low and
 * high percentiles (PIV images are mostly dark with a few bright particles), resized to
 * the plot by sharp (native code, off the JS thread), then copied into the canvas.
 */
import sharp from 'sharp';
import type { ImageData } from '../io/images.js';
import type { Canvas } from './canvas.js';
import type { PlotFrame } from './frame.js';

/** Fractions of the pixels left below black and above white. */
const LOW_FRACTION = 0.005;
const HIGH_FRACTION = 0.002;

/** 8-bit display values of an image (same size), linearly stretched between percentiles. */
export function stretchTo8bit(im: ImageData): Uint8Array {
  const { data } = im;
  const n = data.length;
  const out = new Uint8Array(n);
  if (n === 0) return out;
  if (data instanceof Float32Array) {
    const [lo, hi] = floatPercentiles(data);
    const gain = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0; i < n; i++) {
      // Uint8Array stores modulo 256: clamp first (NaN becomes 0).
      const g = (data[i] - lo) * gain + 0.5;
      out[i] = g >= 255 ? 255 : g > 0 ? g : 0;
    }
    return out;
  }
  // Integer data: histogram over all levels, then a lookup table level -> grey.
  const levels = data instanceof Uint16Array ? 65536 : 256;
  const hist = new Uint32Array(levels);
  for (let i = 0; i < n; i++) hist[data[i]]++;
  const lo = levelAt(hist, LOW_FRACTION * n);
  let hi = levelAt(hist, (1 - HIGH_FRACTION) * n);
  if (hi <= lo) hi = lo + 1;
  const lut = new Uint8Array(levels);
  for (let v = 0; v < levels; v++) lut[v] = v <= lo ? 0 : v >= hi ? 255 : Math.round(((v - lo) * 255) / (hi - lo));
  for (let i = 0; i < n; i++) out[i] = lut[data[i]];
  return out;
}

/** Smallest level whose cumulative count exceeds `count`. */
function levelAt(hist: Uint32Array, count: number): number {
  let cumulative = 0;
  for (let v = 0; v < hist.length; v++) {
    cumulative += hist[v];
    if (cumulative > count) return v;
  }
  return hist.length - 1;
}

/** Percentiles of float data through a 4096-bin histogram between min and max. */
function floatPercentiles(data: Float32Array): [number, number] {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!(max > min)) return [min, min + 1];
  const bins = 4096;
  const hist = new Uint32Array(bins);
  const scale = (bins - 1) / (max - min);
  let finite = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isFinite(v)) {
      hist[Math.floor((v - min) * scale)]++;
      finite++;
    }
  }
  const lo = min + levelAt(hist, LOW_FRACTION * finite) / scale;
  const hi = min + (levelAt(hist, (1 - HIGH_FRACTION) * finite) + 1) / scale;
  return [lo, hi];
}

/** The stretched image resized to width x height (one byte per pixel). */
export async function displayImage(im: ImageData, width: number, height: number): Promise<Uint8Array> {
  const grey = stretchTo8bit(im);
  if (im.width === width && im.height === height) return grey;
  const buf = await sharp(grey, { raw: { width: im.width, height: im.height, channels: 1 } })
    .resize(width, height, { fit: 'fill', kernel: width < im.width ? 'lanczos3' : 'nearest' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { data, info } = buf;
  if (info.channels === 1) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  // sharp may hand back more channels for some inputs: keep the first.
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = data[i * info.channels];
  return out;
}

/** Copies a plot-sized grey image into the plot rectangle of the canvas. */
export function drawGrey(canvas: Canvas, frame: PlotFrame, grey: Uint8Array): void {
  const d = canvas.data;
  const { left, top, width, height } = frame;
  for (let j = 0; j < height; j++) {
    const y = top + j;
    if (y < 0 || y >= canvas.height) continue;
    let p = (y * canvas.width + left) * 4;
    let s = j * width;
    for (let i = 0; i < width; i++, p += 4, s++) {
      const g = grey[s];
      d[p] = g;
      d[p + 1] = g;
      d[p + 2] = g;
      d[p + 3] = 255;
    }
  }
}
