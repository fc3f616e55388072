/**
 * Rendering of synthetic particle images: Gaussian particles integrated exactly over
 * each pixel (separable erf differences), which avoids the sampling bias that point
 * sampling gives at small diameters.
 */
import type { DisplacementField } from './fields.js';

export interface SynthOptions {
  shape: [number, number];
  /** Particles per pixel. */
  density: number;
  /** e^-2 diameter of the particle image, pixels. */
  diameter: number;
  bitDepth: 8 | 16;
  /** Standard deviation of additive Gaussian noise, as a fraction of full scale. */
  noise: number;
  seed: number;
  /** Peak intensity of a particle, as a fraction of full scale (default 0.7). */
  intensity?: number;
}

export interface SynthPair {
  width: number;
  height: number;
  bitDepth: 8 | 16;
  im0: Uint8Array | Uint16Array;
  im1: Uint8Array | Uint16Array;
}

/** Small, fast, seeded generator (mulberry32): tests must be reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal deviate from a uniform generator (Box-Muller). */
function gauss(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit). */
function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

/** Adds one particle centred at (x, y) (pixel centres at integers) into acc. */
function splat(acc: Float32Array, nx: number, ny: number, x: number, y: number, sigma: number, amp: number,
  wx: Float64Array, wy: Float64Array): void {
  const reach = Math.ceil(3 * sigma + 1);
  const c = 1 / (Math.SQRT2 * sigma);
  const x0 = Math.max(0, Math.floor(x) - reach + 1);
  const x1 = Math.min(nx - 1, Math.floor(x) + reach);
  const y0 = Math.max(0, Math.floor(y) - reach + 1);
  const y1 = Math.min(ny - 1, Math.floor(y) + reach);
  if (x0 > x1 || y0 > y1) return;
  // Pixel i covers [i - 0.5, i + 0.5]: integral of the 1D Gaussian over it.
  for (let i = x0; i <= x1; i++) wx[i - x0] = 0.5 * (erf((i + 0.5 - x) * c) - erf((i - 0.5 - x) * c));
  for (let j = y0; j <= y1; j++) wy[j - y0] = 0.5 * (erf((j + 0.5 - y) * c) - erf((j - 0.5 - y) * c));
  // Normalise so that a particle centred on a pixel has that pixel at amp * (peak of the integral).
  for (let j = y0; j <= y1; j++) {
    const a = amp * wy[j - y0];
    const row = j * nx;
    for (let i = x0; i <= x1; i++) acc[row + i] += a * wx[i - x0];
  }
}

/**
 * Renders a pair: particle p at position q (uniform random, mid-time) appears at
 * q - d(q)/2 in image 0 and q + d(q)/2 in image 1, with d the displacement field.
 */
export function renderPair(field: DisplacementField, opts: SynthOptions): SynthPair {
  const [ny, nx] = opts.shape;
  const rand = rng(opts.seed);
  const sigma = opts.diameter / 4;
  // Margin so that particles entering or leaving the field of view are present.
  const margin = 20;
  const area = (nx + 2 * margin) * (ny + 2 * margin);
  const count = Math.round(opts.density * area);
  const full = opts.bitDepth === 16 ? 65535 : 255;
  // Amplitude so that the peak pixel of a centred particle reaches `intensity` of full scale.
  const centre = erf(0.5 / (Math.SQRT2 * sigma)) ** 2;
  const acc0 = new Float32Array(nx * ny);
  const acc1 = new Float32Array(nx * ny);
  const wx = new Float64Array(64 + Math.ceil(8 * sigma));
  const wy = new Float64Array(64 + Math.ceil(8 * sigma));
  for (let p = 0; p < count; p++) {
    const qx = rand() * (nx + 2 * margin) - margin;
    const qy = rand() * (ny + 2 * margin) - margin;
    // Particles of varying brightness, as in real recordings.
    const amp = ((opts.intensity ?? 0.7) * full * (0.6 + 0.8 * rand())) / centre;
    const [dx, dy] = field(qx, qy);
    splat(acc0, nx, ny, qx - dx / 2, qy - dy / 2, sigma, amp, wx, wy);
    splat(acc1, nx, ny, qx + dx / 2, qy + dy / 2, sigma, amp, wx, wy);
  }
  const quantise = (acc: Float32Array): Uint8Array | Uint16Array => {
    const out = opts.bitDepth === 16 ? new Uint16Array(nx * ny) : new Uint8Array(nx * ny);
    const noise = opts.noise * full;
    const background = 0.02 * full;
    for (let i = 0; i < acc.length; i++) {
      const v = background + acc[i] + (noise > 0 ? noise * gauss(rand) : 0);
      out[i] = Math.min(full, Math.max(0, Math.round(v)));
    }
    return out;
  };
  return { width: nx, height: ny, bitDepth: opts.bitDepth, im0: quantise(acc0), im1: quantise(acc1) };
}
