/**
 * Point-wise and brightness tools: thresholds, rescaling, gamma, plus sharpen. Each
 * returns a new array (inputs are never modified).
 */
import { minMax, rescaleInPlace, type Img } from './image.js';
import { gaussianFilter, uniformFilter } from './linear.js';

/** Clip to [minima, maxima] (Fluidimage's global_threshold). */
export function globalThreshold(data: Float32Array, minima: number, maxima: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    out[i] = v < minima ? minima : v > maxima ? maxima : v;
  }
  return out;
}

/**
 * Local threshold T = local mean - offset (skimage's threshold_local: gaussian with
 * sigma = (size - 1) / 6, or a box mean); pixels above T are kept, the others set to 0.
 */
export function adaptiveThreshold(im: Img, windowSize: number, offset: number, method: 'gaussian' | 'mean'): Float32Array {
  const local = method === 'gaussian' ? gaussianFilter(im, (windowSize - 1) / 6) : uniformFilter(im, windowSize);
  const { data } = im;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    out[i] = v > local[i]! - offset ? v : 0;
  }
  return out;
}

/** Linear map of [image min, image max] onto [minima, maxima]. */
export function rescaleIntensity(data: Float32Array, minima: number, maxima: number): Float32Array {
  const out = data.slice();
  rescaleInPlace(out, minima, maxima);
  return out;
}

/**
 * floor(max(I) tanh(I / t) / max(tanh(I / t))), t = threshold or 2 sqrt(mean(I^2))
 * (Fluidimage's rescale_intensity_tanh). Unchanged when t is 0 or no value is positive.
 */
export function rescaleIntensityTanh(data: Float32Array, threshold: number | null): Float32Array {
  let t = threshold;
  if (t === null) {
    let s = 0;
    for (let i = 0; i < data.length; i++) s += data[i]! * data[i]!;
    t = 2 * Math.sqrt(s / data.length);
  }
  if (!(t > 0)) return data.slice();
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.tanh(data[i]! / t);
  const [, maxIn] = minMax(data);
  const [, maxTanh] = minMax(out);
  if (!(maxTanh > 0)) return data.slice();
  const scale = maxIn / maxTanh;
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(scale * out[i]!);
  return out;
}

/**
 * gain x full x (I / full)^gamma, with full the largest value of the bit depth (as
 * skimage's adjust_gamma on integer images; 1 for float images); negative values give 0.
 */
export function gammaCorrection(data: Float32Array, gamma: number, gain: number, full: number): Float32Array {
  const out = new Float32Array(data.length);
  const k = gain * full;
  const atZero = gamma === 0 ? k : 0; // 0^0 = 1
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    out[i] = v > 0 ? k * Math.pow(v / full, gamma) : atZero;
  }
  return out;
}

/** B1 + alpha (B1 - B2), B1 = gaussian(I, sigma1), B2 = gaussian(B1, sigma2). */
export function sharpen(im: Img, sigma1: number, sigma2: number, alpha: number): Float32Array {
  const b1 = gaussianFilter(im, sigma1);
  const b2 = gaussianFilter({ width: im.width, height: im.height, data: b1 }, sigma2);
  const out = new Float32Array(b1.length);
  for (let i = 0; i < out.length; i++) out[i] = b1[i]! + alpha * (b1[i]! - b2[i]!);
  return out;
}
