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
  /** Windows with a smaller fraction of valid pixels (inside the image, not NaN) are rejected (default 0.5). */
  minValidFraction?: number;
  /** Peaks searched per window, the first included (1-8, default 1). */
  nbPeaks?: number;
  /** Half-size of the square around a found peak where the next one may not be (default 3). */
  particleRadius?: number;
  /** Gaussian weighting of the windows: standard deviation as a fraction of the window size; 0: uniform (default). */
  windowSigma?: number;
  /** Time the phases of the pass (PassOut.phases); a few clock reads per window. */
  profile?: boolean;
  /** Also return PassOut.peakToMean (one more pass over each correlation plane). */
  peakToMean?: boolean;
  /**
   * Ensemble correlation: each window's normalised correlation plane (max(h0,h1) x
   * max(w0,w1) values, zero lag first, lags wrapped) is added to its place in `planes`
   * and `planeCounts` (one per window) is incremented; windows not correlated add nothing.
   */
  planes?: Float32Array;
  planeCounts?: Float32Array;
}

/** The peaks of planes summed over pairs (`correlatePass`'s `planes`): the pass's geometry without images. */
export type PlanesArgs = Omit<PassArgs, 'im0' | 'im1' | 'profile' | 'planes' | 'planeCounts'> & { planes: Float32Array; planeCounts: Float32Array };

/** Seconds in each phase of a pass, summed over its threads. */
export interface PassPhases {
  /** Loading windows (masks, weights included). */
  load: number;
  fft: number;
  /** Cross-spectra, (de)interleaving. */
  spectra: number;
  /** Peak search and sub-pixel fits. */
  peaks: number;
}

/** Per-window results (same order as the windows). */
export interface PassOut {
  dx: Float32Array;
  dy: Float32Array;
  correl: Float32Array;
  code: Uint8Array;
  /**
   * Secondary peaks, (nbPeaks - 1) per window, NaN where none was found; a peak on the
   * border of the searched region keeps its height (correl2) with NaN displacements.
   */
  dx2: Float32Array;
  dy2: Float32Array;
  correl2: Float32Array;
  /**
   * With `peakToMean`: the first peak over the mean of |correlation| over the searched
   * region, NaN where no peak (absent when the addon predates it).
   */
  peakToMean?: Float32Array;
  /** With `profile`. */
  phases?: PassPhases;
}

/**
 * Per-vector uncertainty from correlation statistics (Wieneke 2015): windows of the same
 * shape in two images that match (deformed by the measured displacement), the displacement
 * left between them per window.
 */
export interface UncertaintyArgs {
  im0: Float32Array;
  im1: Float32Array;
  height: number;
  width: number;
  /** Window shape (both images). */
  h: number;
  w: number;
  /** (row, col) of each window's top-left corner in image 0 and image 1, interleaved. */
  starts0: Int32Array;
  starts1: Int32Array;
  /** Displacement left between the windows (pixels), one per window; NaN: no vector (NaN out). */
  rx: Float32Array;
  ry: Float32Array;
  /** Half-size of the neighbourhood whose products of contributions' deviations are summed too (0-4, default 0: independent). */
  neighbourhood?: number;
  /** Windows with a smaller fraction of usable pixels give NaN (default 0.5). */
  minValidFraction?: number;
}

/** One standard deviation of dx and dy per window (pixels), NaN where unknown. */
export interface UncertaintyOut {
  sigmaX: Float32Array;
  sigmaY: Float32Array;
  /**
   * Where the 3-point Gaussian fit of the windows' correlation puts the peak, minus the
   * displacement given (rx, ry): what the windows still disagree on; NaN where the fit fails.
   */
  offsetX: Float32Array;
  offsetY: Float32Array;
}

/** A displacement field on a rectilinear grid, to deform a pair of images with. */
/** B-spline degree of the deformation's image interpolation (3: predictor passes). */
export type SplineDegree = 3 | 5 | 7;

/** B-spline coefficients of both images of a pair (`splinePair`), reused by every deformation. */
export interface SplineImages {
  coef0: Float32Array;
  coef1: Float32Array;
  /** 1 where the source pixel is valid; null when the image had no NaN (masked) pixel. */
  valid0: Uint8Array | null;
  valid1: Uint8Array | null;
  degree: SplineDegree;
  height: number;
  width: number;
}

interface DeformGrid {
  height: number;
  width: number;
  /** Grid axes (strictly increasing), pixels. */
  xs: Float32Array;
  ys: Float32Array;
  /** Displacement on the grid, ys.length * xs.length, x fastest, no NaN. */
  dx: Float32Array;
  dy: Float32Array;
}

/**
 * The images as pixels (prefiltered in the call) or as coefficients from `splinePair`;
 * `out0`/`out1`: arrays to fill (reused buffers; new ones when absent).
 */
export type DeformArgs = DeformGrid & { out0?: Float32Array; out1?: Float32Array }
  & ({ im0: Float32Array; im1: Float32Array; degree?: SplineDegree } | { spline: SplineImages });

// ---- MPI (native/mpi.cc): types of the raw binding; src/mpi/comm.ts is the API ----------

/** Typed arrays MPI can move (all but Uint8ClampedArray can also be reduced). */
export type MpiBuffer =
  | Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array
  | Float32Array | Float64Array | BigInt64Array | BigUint64Array;
export type MpiReduceOp = 'sum' | 'min' | 'max';
export type MpiThreadLevel = 'single' | 'funneled' | 'serialized' | 'multiple';

export interface MpiInitInfo {
  rank: number;
  size: number;
  /** Thread support MPI granted (MPI_THREAD_MULTIPLE is requested). */
  threadLevel: MpiThreadLevel;
  /** Largest valid tag (MPI_TAG_UB). */
  tagUb: number;
  /** The MPI library file, found with dladdr, and whether re-opening it RTLD_GLOBAL worked. */
  libraryPath: string;
  libraryGlobal: boolean;
}

/** A completed receive: actual source and tag, count in elements of the receiving array. */
export interface MpiStatus {
  source: number;
  tag: number;
  count: number;
}
/** A completed receive of a message of unknown size (count in bytes). */
export interface MpiBytesStatus extends MpiStatus {
  data: Uint8Array;
}
export interface MpiProbeStatus {
  source: number;
  tag: number;
  bytes: number;
}

declare const mpiRequestBrand: unique symbol;
/** Opaque handle of a pending nonblocking operation (a tagged napi external). */
export interface MpiRequestHandle {
  readonly [mpiRequestBrand]: true;
}

/** A scattered field to smooth with thin-plate splines (Fluidimage's subdomain method). */
export interface TpsArgs {
  x: Float64Array;
  y: Float64Array;
  u: Float64Array;
  v: Float64Array;
  /** Where to evaluate the smoothed field. */
  xNew: Float64Array;
  yNew: Float64Array;
  subdomSize: number;
  smoothingCoef: number;
  /** Values farther than this (pixels) from the smoothed field are replaced and the spline solved again. */
  threshold: number;
  /** Evaluate at the input points too (uSmooth/vSmooth; default true; NaN when false). */
  smoothAtPoints?: boolean;
}

export interface TpsOut {
  uNew: Float64Array;
  vNew: Float64Array;
  /** Smoothed values at the input points. */
  uSmooth: Float64Array;
  vSmooth: Float64Array;
  replaced: number;
  singularBoxes: number;
}

export interface NativeCore {
  /** Correlates all windows on libuv's thread pool; `threads` splits the pass further. */
  correlatePass(args: PassArgs, threads?: number): Promise<PassOut>;
  /** Per-vector uncertainty of all windows of a pass (correlation statistics), on libuv's pool. */
  correlationUncertainty(args: UncertaintyArgs, threads?: number): Promise<UncertaintyOut>;
  /**
   * Peaks and sub-pixel fits on summed correlation planes, as correlatePass finds them on
   * one pair's (`correl`: the mean normalised peak); a window no pair correlated is noTexture.
   */
  peaksOnPlanes(args: PlanesArgs, threads?: number): Promise<PassOut>;
  /**
   * Resamples image 0 at x - d(x)/2 and image 1 at x + d(x)/2 (B-splines of degree 3, 5 or 7,
   * d interpolated bilinearly from the grid; NaN outside the image and on NaN pixels):
   * correlating the results measures the residual displacement.
   */
  deformPair(args: DeformArgs, threads?: number): Promise<{ im0: Float32Array; im1: Float32Array }>;
  /** B-spline coefficients of a pair, for several `deformPair` calls (degree 5 by default). */
  splinePair(args: { im0: Float32Array; im1: Float32Array; height: number; width: number; degree?: SplineDegree;
    /** Arrays to fill (reused buffers); new ones when absent. */
    coef0?: Float32Array; coef1?: Float32Array }, threads?: number): Promise<SplineImages>;
  /** Resampling kernel in use: "avx2" or "generic" (FLUIDIMAGE_SIMD=generic forces it). */
  deformKernel: 'avx2' | 'generic';
  /**
   * Size and depth when `head` (the first 33 bytes or more of a file) starts a grey 8/16-bit
   * non-interlaced PNG, the images the PNG fast path decodes; null otherwise, and always
   * null when the addon was built without an inflate library.
   */
  pngHeader(head: Uint8Array): { width: number; height: number; bitDepth: 8 | 16 } | null;
  /**
   * Decodes such a PNG (the whole file's bytes) into `out` on libuv's pool: width*height
   * values as stored (Uint8Array for 8-bit, Uint16Array for 16-bit) or as float32. Resolves
   * "" when done, else why it declined (an unknown chunk, a bad CRC, damaged data): the
   * caller then reads the file with sharp.
   */
  decodeGreyPng(file: Uint8Array, out: Uint8Array | Uint16Array | Float32Array): Promise<string>;
  /** Inflate library of the PNG fast path ("libdeflate 1.14", "zlib 1.2.13"), "" when none. */
  pngInflate: string;
  /**
   * Normalised median residual (Westerweel & Scarano 2005) of every vector of a ny x nx
   * grid (x fastest): NaN where the vector is NaN or has fewer than 3 valid neighbours.
   * Border vectors see ghost cells extrapolated linearly. Synchronous (~1 ms for 16k vectors).
   */
  medianResiduals(args: { dx: Float32Array; dy: Float32Array; ny: number; nx: number; epsilon: number }): Float64Array;
  /** Thin-plate-spline smoothing with subdomains; `threads` solves boxes in parallel. */
  tpsSmooth(args: TpsArgs, threads?: number): Promise<TpsOut>;
  /**
   * Seconds for the transforms of `count` windows of one shape as correlatePass does them:
   * one complex forward FFT per window (both images in it), one inverse per two windows.
   */
  timeFftOnly(height: number, width: number, count: number): number;
  setPlannerEffort(effort: 'estimate' | 'measure' | 'patient'): void;
  /** mallopt(M_ARENA_MAX, n) on glibc (false elsewhere): fewer arenas, less memory per rank. */
  limitMallocArenas(arenas: number): boolean;
  /** mallopt(M_MMAP_THRESHOLD, bytes) on glibc (false elsewhere): big blocks go back to the system when freed. */
  setMallocMmapThreshold(bytes: number): boolean;
  getPlannerEffort(): string;
  planCount(): number;
  importWisdom(path: string): boolean;
  exportWisdom(path: string): boolean;
  fftwVersion: string;

  // ---- MPI (native/mpi.cc) ----------------------------------------------------------------
  // Raw binding, all on the JS thread; use src/mpi/comm.ts. Ranks and tags are ints, -1 is
  // "any source" / "any tag". Ranges of ranks and tags are checked by comm.ts, not here.
  // Collectives on typed arrays first agree across ranks on types, lengths and root, so a
  // mismatch throws ERR_MPI_MISMATCH on every rank instead of hanging. MPI failures throw
  // Error { code: 'ERR_MPI', mpiErrorClass, mpiOperation }. Built without MPI, every
  // function but mpiAvailable/mpiIsInitialized/mpiIsFinalized/mpiFinalize throws
  // ERR_MPI_UNAVAILABLE.
  mpiAvailable(): boolean;
  /** MPI_Get_library_version; needs no initialisation. */
  mpiLibraryVersion(): string;
  /** Re-opens libmpi RTLD_GLOBAL, then MPI_Init_thread(MULTIPLE) unless already initialised. */
  mpiInit(): MpiInitInfo;
  mpiIsInitialized(): boolean;
  mpiIsFinalized(): boolean;
  /** MPI_Finalize; false (and nothing done) when not initialised or already finalised. */
  mpiFinalize(): boolean;
  /** Prints `message` to stderr, then MPI_Abort (or exits when MPI is not live). */
  mpiAbort(code: number, message: string): never;
  /**
   * Arms (seconds > 0) or disarms (0) a deadline watched by a native thread: when it passes,
   * prints `message` and aborts the job with `code` (for blocking collectives and
   * MPI_Finalize, during which the JS thread cannot notice a silent rank).
   */
  mpiDeadline(seconds: number, code: number, message: string): void;
  mpiBarrier(): void;
  /** In place; every rank passes an array of the root's type and length. */
  mpiBcast<T extends MpiBuffer>(buffer: T, root: number): T;
  /** Any lengths, same type; the root gets all arrays concatenated in rank order. */
  mpiGatherv<T extends MpiBuffer>(data: T, root: number): { data: T; counts: Int32Array } | undefined;
  /** `out` may be `data` itself (MPI_IN_PLACE). */
  mpiAllreduce<T extends MpiBuffer>(data: T, out: T, op: MpiReduceOp): T;
  /** `out` is used (and returned) on the root only. */
  mpiReduce<T extends MpiBuffer>(data: T, out: T | undefined, op: MpiReduceOp, root: number): T | undefined;
  mpiSend(buffer: MpiBuffer, dest: number, tag: number): void;
  /** Receives into `buffer` (zero copy); MPI_ERR_TRUNCATE if the message is longer. */
  mpiRecv(buffer: MpiBuffer, source: number, tag: number): MpiStatus;
  /** A message of any size into a new Uint8Array (MPI_Mprobe + MPI_Mrecv). */
  mpiRecvBytes(source: number, tag: number): MpiBytesStatus;
  /** Nonblocking; the buffer is pinned until mpiTest reports completion. */
  mpiIsend(buffer: MpiBuffer, dest: number, tag: number): MpiRequestHandle;
  /** Nonblocking; the message is matched (MPI_Improbe) by the first mpiTest that sees it. */
  mpiIrecv(buffer: MpiBuffer, source: number, tag: number): MpiRequestHandle;
  mpiIrecvBytes(source: number, tag: number): MpiRequestHandle;
  /** undefined while pending; the status once complete (then the handle is spent). */
  mpiTest(request: MpiRequestHandle): MpiStatus | MpiBytesStatus | undefined;
  mpiIprobe(source: number, tag: number): MpiProbeStatus | undefined;
  // ---- end of MPI ---------------------------------------------------------------------------
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
  // FLUIDIMAGE_NATIVE: another build of the addon (e.g. with AddressSanitizer, scripts/fuzz-asan).
  const candidates = [...(process.env.FLUIDIMAGE_NATIVE ? [process.env.FLUIDIMAGE_NATIVE] : []),
    join(here, '..', 'build', 'Release', 'fluidimage_native.node'),
    join(here, '..', '..', 'build', 'Release', 'fluidimage_native.node')];
  const file = candidates.find((p) => existsSync(p));
  if (!file) {
    throw new NativeLoadError(`The native core is not built (looked for ${join(here, '..', 'build', 'Release', 'fluidimage_native.node')}). ` +
      'Installed from npm: build it with `npx fluidimage-build` (npm install runs it unless install scripts were skipped); ' +
      "in a source checkout: 'bash scripts/setup' or 'npm run build:native'.");
  }
  const require = createRequire(import.meta.url);
  try {
    cached = require(file) as NativeCore;
  } catch (e) {
    throw new NativeLoadError(`Cannot load the native core ${file}: ${(e as Error).message}. ` +
      "Rebuild it with `npx fluidimage-build` (source checkout: 'npm run build:native'); FFTW's float library libfftw3f must be installed.");
  }
  return cached;
}
