/**
 * The whole native surface, declared in one place. This is the only module that
 * loads the compiled addon (build/Release/fluidimage_native.node).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Sub-pixel methods, numbered as in native/correl.h. */
export const SUBPIX_CODES = { no_subpix: 0, centroid: 1, '2d_gaussian2': 2, '2d_gaussian': 3 } as const;
export type SubpixMethod = keyof typeof SUBPIX_CODES;

/** Per-vector status returned by the correlation (native/correl.h VecCode). */
export const VEC_CODES = {
  ok: 0,
  peakOnBorder: 1,
  subpixFallback: 2,
  noTexture: 3,
  outside: 4,
} as const;

/** One pass of one pair: all windows at once. */
export interface PassArgs {
  im0: Float32Array;
  im1: Float32Array;
  height: number;
  width: number;
  /** Window shape in image 0 and image 1. */
  h0: number;
  w0: number;
  h1: number;
  w1: number;
  /** (row, col) of each window's top-left corner, interleaved. */
  starts0: Int32Array;
  starts1: Int32Array;
  /** Radius of the peak search around zero lag (pixels); 0: whole correlation map. */
  displacementMax?: number;
  subpix?: number;
  nsubpix?: number;
}

/** Per-window results (same order as the windows). */
export interface PassOut {
  dx: Float32Array;
  dy: Float32Array;
  correl: Float32Array;
  code: Uint8Array;
}

/** A displacement field on a rectilinear grid, to deform a pair of images with. */
export interface DeformArgs {
  im0: Float32Array;
  im1: Float32Array;
  height: number;
  width: number;
  /** Grid axes (strictly increasing), pixels. */
  xs: Float32Array;
  ys: Float32Array;
  /** Displacement on the grid, ys.length * xs.length, x fastest, no NaN. */
  dx: Float32Array;
  dy: Float32Array;
}

export interface NativeCore {
  /** Correlates all windows on libuv's thread pool; `threads` splits the pass further. */
  correlatePass(args: PassArgs, threads?: number): Promise<PassOut>;
  /**
   * Resamples image 0 at x - d(x)/2 and image 1 at x + d(x)/2 (cubic B-splines, d
   * interpolated bilinearly from the grid): correlating the results measures the
   * residual displacement.
   */
  deformPair(args: DeformArgs, threads?: number): Promise<{ im0: Float32Array; im1: Float32Array }>;
  /** Seconds for `count` times (2 forward + 1 inverse) FFTs of one window shape. */
  timeFftOnly(height: number, width: number, count: number): number;
  setPlannerEffort(effort: 'estimate' | 'measure' | 'patient'): void;
  getPlannerEffort(): string;
  planCount(): number;
  importWisdom(path: string): boolean;
  exportWisdom(path: string): boolean;
  fftwVersion: string;
}

/** Error thrown when the addon cannot be found or loaded. */
export class NativeLoadError extends Error {
  readonly code = 'ERR_NATIVE_NOT_BUILT';
}

let cached: NativeCore | undefined;

/** Loads the addon once; throws a NativeLoadError saying how to build it. */
export function native(): NativeCore {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/native.js -> ../build/Release; also works from dist/<sub>/ when bundled elsewhere.
  const candidates = [join(here, '..', 'build', 'Release', 'fluidimage_native.node'),
    join(here, '..', '..', 'build', 'Release', 'fluidimage_native.node')];
  const file = candidates.find((p) => existsSync(p));
  if (!file) {
    throw new NativeLoadError(
      `The native core is not built (looked for ${candidates[0]}). Run 'bash scripts/setup' or 'npm run build:native'.`);
  }
  const require = createRequire(import.meta.url);
  try {
    cached = require(file) as NativeCore;
  } catch (e) {
    throw new NativeLoadError(`Cannot load the native core ${file}: ${(e as Error).message}. ` +
      `Rebuild it with 'npm run build:native' (FFTW's float library libfftw3f must be installed).`);
  }
  return cached;
}
