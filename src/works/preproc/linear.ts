/**
 * Separable linear filters with scipy.ndimage's semantics: gaussian_filter (radius
 * int(4 sigma + 0.5), normalised weights) and uniform_filter (box mean, centre at
 * size // 2), first along y then along x, float64 accumulation, float32 storage.
 */
import { reach, sourceIndex, type Boundary, type Img } from './image.js';

/** scipy's gaussian weights for one axis: radius int(truncate sigma + 0.5), sum 1. */
function gaussianKernel(sigma: number, truncate = 4): Float64Array {
  const radius = Math.floor(truncate * sigma + 0.5);
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let j = -radius; j <= radius; j++) {
    const w = Math.exp((-0.5 * j * j) / (sigma * sigma));
    k[j + radius] = w;
    sum += w;
  }
  for (let j = 0; j < k.length; j++) k[j]! /= sum;
  return k;
}

/**
 * out[y, x] = sum_j kernel[j] in[y - before + j, x] (then the same along x with the same
 * kernel): a correlation, which for symmetric kernels is the convolution.
 */
export function separable(im: Img, kernel: Float64Array, before: number, mode: Boundary): Float32Array {
  return alongX(alongY(im, kernel, before, mode), kernel, before, mode);
}

function alongY(im: Img, kernel: Float64Array, before: number, mode: Boundary): Img {
  const { width: nx, height: ny, data } = im;
  const out = new Float32Array(nx * ny);
  const acc = new Float64Array(nx);
  for (let y = 0; y < ny; y++) {
    acc.fill(0);
    // Whole rows at a time: contiguous memory, one weight per row.
    for (let j = 0; j < kernel.length; j++) {
      const sy = sourceIndex(y - before + j, ny, mode);
      if (sy < 0) continue;
      const w = kernel[j]!;
      const o = sy * nx;
      for (let x = 0; x < nx; x++) acc[x]! += w * data[o + x]!;
    }
    out.set(acc, y * nx);
  }
  return { width: nx, height: ny, data: out };
}

function alongX(im: Img, kernel: Float64Array, before: number, mode: Boundary): Float32Array {
  const { width: nx, height: ny, data } = im;
  const n = kernel.length;
  const after = n - 1 - before;
  const line = new Float64Array(nx + n - 1);
  const cols = new Int32Array(line.length);
  for (let i = 0; i < line.length; i++) cols[i] = sourceIndex(i - before, nx, mode);
  const out = new Float32Array(nx * ny);
  for (let y = 0; y < ny; y++) {
    const o = y * nx;
    for (let i = 0; i < before; i++) line[i] = cols[i]! < 0 ? 0 : data[o + cols[i]!]!;
    for (let x = 0; x < nx; x++) line[before + x] = data[o + x]!;
    for (let i = before + nx; i < before + nx + after; i++) line[i] = cols[i]! < 0 ? 0 : data[o + cols[i]!]!;
    for (let x = 0; x < nx; x++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += kernel[j]! * line[x + j]!;
      out[o + x] = s;
    }
  }
  return out;
}

/** scipy.ndimage.gaussian_filter (same sigma on both axes). */
export function gaussianFilter(im: Img, sigma: number, mode: Boundary = 'reflect'): Float32Array {
  const k = gaussianKernel(sigma);
  return separable(im, k, (k.length - 1) / 2, mode);
}

/** scipy.ndimage.uniform_filter: mean over a size x size box. */
export function uniformFilter(im: Img, size: number, mode: Boundary = 'reflect'): Float32Array {
  return separable(im, new Float64Array(size).fill(1 / size), reach(size)[0], mode);
}
