/**
 * The PIV work: one image pair in, one multipass result out. Knows nothing of files,
 * series or executors: images arrive as Float32Array, the result is a PivResult.
 */
import { native, SUBPIX_CODES, VEC_CODES, type PassOut, type PassPhases, type SplineDegree, type SplineImages } from '../../native.js';
import { ParamError, typedTree } from '../../params/schema.js';
import { pivSchema, type PivParams } from '../../params/piv.js';
import type { PassResult, PivResult } from '../../results/piv_result.js';
import type { ParamTree } from '../../params/tree.js';
import { ERROR_CODES, ERROR_MESSAGES, VectorErrors } from './errors.js';
import { applyFix, replaceBySecondaryPeaks, type FixParams } from './fix.js';
import { combineMasks, polygonMask, type ImageMask } from './masks.js';
import { makeGrid, parseStrcrop, roundHalfEven, type Grid } from './grid.js';
import { fillNaN, interpToGrid, smooth3 } from './interp.js';
import { finalUncertainty, vectorUncertainty } from './uncertainty.js';

export type { ImageMask } from './masks.js';

/** Two images of one pair, as float32 (exact values of 8/16-bit data). */
export interface PairImages {
  im0: Float32Array;
  im1: Float32Array;
  height: number;
  width: number;
  names: [string, string];
  paths: [string, string];
  /** The pair's own masks (mask.folder, mask.module), on top of the work's static ones. */
  masks?: ImageMask[];
  /**
   * The arrays belong to this computation alone (read for it, shared with nothing): the
   * work may overwrite them (spline coefficients in place, one image pair less in memory).
   */
  owned?: boolean;
}

/** Full-size buffers of one pair's computation, reused by the next pair (no garbage per pass). */
interface Scratch {
  size: number;
  /** Spline coefficients, when the images cannot take them in place. */
  coef0?: Float32Array;
  coef1?: Float32Array;
  /** Deformed images. */
  out0: Float32Array;
  out1: Float32Array;
}

/** Copies of the images with NaN on masked pixels (the correlation ignores NaN). */
function applyMask(pair: PairImages, mask: ImageMask): PairImages {
  const im0 = Float32Array.from(pair.im0);
  const im1 = Float32Array.from(pair.im1);
  for (let i = 0; i < im0.length; i++) {
    if (mask.data[i] === 0) im0[i] = im1[i] = Number.NaN;
  }
  return { ...pair, im0, im1, owned: true };
}

/** A displacement field on the grid of a pass: the predictor of the next pass, or the final field. */
export interface Field {
  grid: Grid;
  dx: Float32Array;
  dy: Float32Array;
}

/** Correlation planes summed over pairs (ensemble correlation): planeLayout's sizes. */
export interface EnsemblePlanes {
  sum: Float32Array;
  count: Float32Array;
}

interface PassConfig {
  /** Deform the images along the previous pass's field (passes after the first). */
  deform: boolean;
  shape0: [number, number];
  shape1: [number, number];
  /** Peak search radius around the predicted displacement (pixels), 0 = whole map. */
  searchMax: number;
  /** fix.displacement_max resolved for this window, Infinity = off. */
  fixDisplacementMax: number;
}

type Shape = number | number[];
const asShape = (s: Shape): [number, number] => (Array.isArray(s) ? [s[0], s[1]] : [s, s]);

/** Pixels from a displacement_max value (number, "NN%" of the larger window side, or null). */
function resolveDisplacement(v: unknown, window: [number, number]): number {
  if (v === null || v === undefined) return Number.POSITIVE_INFINITY;
  if (typeof v === 'number') return v;
  return (parseFloat(String(v)) / 100) * Math.max(window[0], window[1]);
}

/**
 * Offset of window 0 (start `start`, size `size`) for a whole-pixel shift `shift`
 * between the two windows: -floor(shift/2) when both windows stay inside [0, len),
 * else the nearest offset that keeps them inside (when one exists).
 */
export function shiftOffset(start: number, size: number, shift: number, len: number): number {
  const ideal = -Math.floor(shift / 2);
  const lo = Math.max(-start, -start - shift);
  const hi = Math.min(len - size - start, len - size - start - shift);
  if (lo > hi) return ideal;
  return Math.min(hi, Math.max(lo, ideal));
}

/** Wall seconds spent in each stage of the PIV work (for benchmarks; sums over calls). */
export interface StageSeconds {
  correlation: number;
  deformation: number;
  tps: number;
  validation: number;
  /** Per-vector uncertainty of the last pass (piv0.uncertainty). */
  uncertainty: number;
  total: number;
}

/** The PIV computation configured by a resolved parameter tree (params/piv.ts). */
export class WorkPIV {
  readonly params: ParamTree;
  private readonly passes: PassConfig[];
  private readonly overlap: number;
  private readonly subpix: number;
  private readonly nsubpix: number;
  private readonly correlMin: number;
  private readonly thresholdDiff: number;
  private readonly thresholdMedian: number;
  private readonly medianEpsilon: number;
  /** The tests of the fix step that do not depend on the pass (fix.*). */
  private readonly fixTests: Required<Omit<FixParams, 'displacementMax'>>;
  /** Peaks the native pass searches: piv0.nb_peaks_to_search, at least 2 for the peak ratio. */
  private readonly nativePeaks: number;
  private readonly polygons: number[][][] | null;
  /** The rasterised polygons of the last image size. */
  private polygonCache?: ImageMask;
  private readonly minValidFraction: number;
  private readonly nbPeaks: number;
  private readonly particleRadius: number;
  private readonly windowSigma: number;
  private readonly smoothPredictor: boolean;
  private readonly splineDegree: SplineDegree;
  /** Spline degree of the predictor passes (all but the last; multipass.predictor_spline_degree). */
  private readonly predictorDegree: SplineDegree;
  /** Time per stage over all calls of this work (correlation, deformation, TPS, validation; the rest is JS glue). */
  readonly stages: StageSeconds = { correlation: 0, deformation: 0, tps: 0, validation: 0, uncertainty: 0, total: 0 };
  /**
   * Set to time the phases of the correlation (benchmarks): `correlationPhases` then sums
   * them over the calls (thread seconds).
   */
  profile = false;
  readonly correlationPhases: PassPhases = { load: 0, fft: 0, spectra: 0, peaks: 0 };
  /** Buffers of finished pairs, for the next ones (at most one set per pair computed at once). */
  private readonly spare: Scratch[] = [];
  private readonly useTps: boolean | string;
  private readonly tpsParams: { subdomSize: number; smoothingCoef: number; threshold: number };
  private readonly strcrop: string | null;
  /** piv0.uncertainty (absent from trees written before it: off). */
  private readonly withUncertainty: boolean;

  /**
   * `threads` > 1 splits each pass over several native threads (one pair at a time);
   * `mask` (non-zero = flow, the images' shape) excludes pixels from every correlation.
   */
  constructor(params: ParamTree, private readonly threads = 1, private readonly mask?: ImageMask) {
    this.params = params;
    // Trees written before some keys (older params files) lack them: Partial, absent is off.
    const p = typedTree(pivSchema, params);
    const piv0 = p.piv0 as Partial<PivParams['piv0']> & Pick<PivParams['piv0'], 'shape_crop_im0' | 'shape_crop_im1' | 'displacement_max' | 'grid' |
      'method_subpix' | 'nsubpix' | 'min_valid_fraction' | 'nb_peaks_to_search' | 'particle_radius' | 'window_sigma'>;
    const fix = p.fix as Partial<PivParams['fix']> & Pick<PivParams['fix'], 'correl_min' | 'threshold_diff_neighbour' | 'displacement_max' |
      'threshold_median' | 'median_epsilon'>;
    const mp = p.multipass;
    const first0 = asShape(piv0.shape_crop_im0);
    const first1 = piv0.shape_crop_im1 === null ? first0 : asShape(piv0.shape_crop_im1);
    const number = mp.number;
    const zooms = Array.isArray(mp.coeff_zoom) ? mp.coeff_zoom : [mp.coeff_zoom];
    if (Array.isArray(mp.coeff_zoom) && zooms.length !== number - 1) {
      throw new ParamError('multipass.coeff_zoom', `Expected an integer or a list of multipass.number - 1 = ${number - 1} integers for multipass.coeff_zoom but received ${JSON.stringify(mp.coeff_zoom)}`);
    }
    this.passes = [];
    // Sizes divide cumulatively and are truncated afterwards (48 -> 24 -> 12; 32/3 -> 10).
    let f0: [number, number] = [...first0];
    let f1: [number, number] = [...first1];
    const deform = mp.deform;
    const total = number + (number > 1 || deform ? mp.iterations_last : 0);
    for (let k = 0; k < total; k++) {
      if (k > 0 && k < number) {
        const z = zooms[Math.min(k - 1, zooms.length - 1)];
        f0 = [f0[0] / z, f0[1] / z];
        f1 = [f1[0] / z, f1[1] / z];
      }
      const s0: [number, number] = [Math.trunc(f0[0]), Math.trunc(f0[1])];
      // Deformed passes correlate windows of one size: the images are already moved by the
      // predictor, and a larger window 1 would only add particles without partners.
      const s1: [number, number] = k > 0 && deform ? [...s0] : [Math.trunc(f1[0]), Math.trunc(f1[1])];
      if (Math.min(...s0, ...s1) < 4) {
        throw new ParamError('multipass.coeff_zoom', `Expected windows of at least 4 pixels, but pass ${k} would use ${s0.join('x')} (piv0.shape_crop_im0 ${first0.join('x')}, multipass.number ${number}, multipass.coeff_zoom ${JSON.stringify(mp.coeff_zoom)})`);
      }
      const search = resolveDisplacement(piv0.displacement_max, s0);
      this.passes.push({
        deform: k > 0 && deform,
        shape0: s0,
        shape1: s1,
        searchMax: Number.isFinite(search) ? search : 0,
        fixDisplacementMax: resolveDisplacement(fix.displacement_max, s0),
      });
    }
    this.overlap = piv0.grid.overlap;
    this.subpix = SUBPIX_CODES[piv0.method_subpix];
    this.nsubpix = piv0.nsubpix ?? 1;
    this.correlMin = fix.correl_min;
    this.thresholdDiff = fix.threshold_diff_neighbour ?? Number.POSITIVE_INFINITY;
    this.strcrop = p.mask.strcrop;
    this.thresholdMedian = fix.threshold_median ?? Number.POSITIVE_INFINITY;
    this.medianEpsilon = fix.median_epsilon;
    this.minValidFraction = piv0.min_valid_fraction;
    this.nbPeaks = piv0.nb_peaks_to_search;
    // A tree written before these keys (an older params file) lacks them: absent is off.
    const range: Partial<PivParams['fix']['global_range']> = fix.global_range ?? {};
    this.fixTests = {
      correlMin: this.correlMin,
      thresholdDiffNeighbour: this.thresholdDiff,
      thresholdMedian: this.thresholdMedian,
      medianEpsilon: this.medianEpsilon,
      peakRatioMin: fix.s2n_peak_ratio_min ?? 0,
      peakToMeanMin: fix.s2n_peak_to_mean_min ?? 0,
      rangeX: range.u ?? null,
      rangeY: range.v ?? null,
      globalStdFactor: fix.global_std_factor ?? Number.POSITIVE_INFINITY,
    };
    this.nativePeaks = Math.max(this.nbPeaks, this.fixTests.peakRatioMin > 0 ? 2 : 1);
    this.polygons = (p.mask as Partial<PivParams['mask']>).polygons ?? null;
    this.particleRadius = Math.round(piv0.particle_radius);
    this.windowSigma = piv0.window_sigma ?? 0;
    this.smoothPredictor = mp.smooth_predictor;
    this.splineDegree = mp.spline_degree as SplineDegree;
    // Trees written before the key (older params files): every pass with spline_degree.
    this.predictorDegree = ((mp as Partial<PivParams['multipass']>).predictor_spline_degree ?? this.splineDegree) as SplineDegree;
    this.useTps = mp.use_tps;
    this.withUncertainty = piv0.uncertainty ?? false;
    this.tpsParams = {
      subdomSize: mp.subdom_size, smoothingCoef: mp.smoothing_coef, threshold: mp.threshold_tps,
    };
  }

  /**
   * At planning: refuses, naming the parameter, what would fail on every pair of images of
   * this size (windows larger than the images or the crop, a mask of another size).
   */
  checkGeometry(height: number, width: number, what: string): void {
    if (this.mask) combineMasks([this.mask], height, width, `(${what})`);
    let region;
    try {
      region = parseStrcrop(this.strcrop, [height, width]);
    } catch (e) {
      throw new ParamError('mask.strcrop', `${(e as Error).message} (${what})`);
    }
    const rh = region.y1 - region.y0;
    const rw = region.x1 - region.x0;
    const p = typedTree(pivSchema, this.params);
    const area = this.strcrop ? `the ${rh}x${rw} region of mask.strcrop ${JSON.stringify(this.strcrop)} in the ${height}x${width} images (${what})` : `the ${height}x${width} images (${what})`;
    for (const [k, pass] of this.passes.entries()) {
      const fits = (shape: [number, number], h: number, w: number) => shape[0] <= h && shape[1] <= w;
      const key = k === 0 ? 'piv0.shape_crop_im0' : 'multipass.coeff_zoom';
      if (!fits(pass.shape0, rh, rw)) {
        throw new ParamError(key, `The interrogation windows of pass ${k} (${pass.shape0.join('x')}, from ${key} ${JSON.stringify(k === 0 ? p.piv0.shape_crop_im0 : p.multipass.coeff_zoom)}) are larger than ${area}: no vector; use smaller windows${this.strcrop ? ' or a larger crop' : ''}`);
      }
      if (k === 0 && !fits(pass.shape1, height, width)) {
        throw new ParamError('piv0.shape_crop_im1', `The windows of the second image (${pass.shape1.join('x')}, piv0.shape_crop_im1 ${JSON.stringify(p.piv0.shape_crop_im1)}) are larger than the ${height}x${width} images (${what})`);
      }
    }
  }

  /** Window shapes of the passes, e.g. for benchmarks and reports. */
  get passShapes(): [number, number][] {
    return this.passes.map((p) => p.shape0);
  }

  async calcul(input: PairImages): Promise<PivResult> {
    const t0 = performance.now();
    try {
      return await this.calculStages(input);
    } finally {
      this.stages.total += (performance.now() - t0) / 1000;
    }
  }

  /** Runs `f` and adds its wall time to a stage. */
  private async timed<T>(stage: Exclude<keyof StageSeconds, 'total'>, f: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.stages[stage] += (performance.now() - t0) / 1000;
    }
  }

  private async calculStages(input: PairImages): Promise<PivResult> {
    const { height, width } = input;
    if (input.im0.length !== height * width || input.im1.length !== height * width) {
      throw new Error(`Images of one pair must have the same size (${input.names[0]} and ${input.names[1]})`);
    }
    const mask = this.maskOf(input);
    const pair = mask ? applyMask(input, mask) : input;
    const region = parseStrcrop(this.strcrop, [height, width]);
    const results: PassResult[] = [];
    let prev: Field | undefined;
    // Spline coefficients of the pair: computed at the first deformation, reused by the next.
    const splines: { value?: SplineImages; predictor?: SplineImages; scratch?: Scratch } = {};
    try {
      for (const [k, pass] of this.passes.entries()) {
        const grid = makeGrid(region, pass.shape0, this.overlap);
        const r = await this.onePass(pair, pass, grid, prev, splines, { isLast: k === this.passes.length - 1 });
        results.push(r.result);
        prev = await this.passField(k, r, grid);
      }
    } finally {
      if (splines.scratch) this.spare.push(splines.scratch);
    }
    return this.withFinalField({ names: pair.names, paths: pair.paths, shape_images: [height, width], passes: results, params: this.params },
      prev!, mask);
  }

  /**
   * The field a pass hands on (predictor of the next pass, or the final one): its vectors
   * with holes filled, smoothed by thin-plate splines for the next pass (use_tps true) or
   * the final field (true or "last"); the smoothed values are stored with the last pass.
   */
  private async passField(k: number, r: { result: PassResult; filledDx: Float32Array; filledDy: Float32Array }, grid: Grid): Promise<Field> {
    const isLast = k === this.passes.length - 1;
    if (this.useTps === true || (this.useTps === 'last' && isLast)) {
      const smooth = await this.timed('tps', () => this.tps(r.result, grid, r.filledDx, r.filledDy));
      if (smooth) {
        if (isLast) r.result.extra = { ...r.result.extra, ...smooth.stored };
        return { grid, dx: smooth.gridDx, dy: smooth.gridDy };
      }
    }
    return { grid, dx: r.filledDx, dy: r.filledDy };
  }

  /** The result with its final field: `field` on integer pixel positions, NaN in the masked area. */
  private withFinalField(result: PivResult, field: Field, mask: ImageMask | undefined): PivResult {
    const last = result.passes[result.passes.length - 1];
    const lastGrid = field.grid;
    const [ny, nx] = last.shape_grid;
    // Final grid: integer pixel positions nearest to the window centres.
    const ixs = lastGrid.xs.map(Math.round);
    const iys = lastGrid.ys.map(Math.round);
    const ixvecs = new Float32Array(ny * nx);
    const iyvecs = new Float32Array(ny * nx);
    for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
      ixvecs[j * nx + i] = ixs[i];
      iyvecs[j * nx + i] = iys[j];
    }
    const [finalDx, finalDy] = interpToGrid(lastGrid.xs, lastGrid.ys, [field.dx, field.dy], ixs, iys);
    last.final = {
      ixvecs_final: ixvecs,
      iyvecs_final: iyvecs,
      deltaxs_final: finalDx,
      deltays_final: finalDy,
    };
    if (mask) {
      // No flow there: the final field is NaN at grid points inside the masked area.
      const width = result.shape_images[1];
      for (let k = 0; k < ixvecs.length; k++) {
        if (mask.data[iyvecs[k] * width + ixvecs[k]] === 0) last.final.deltaxs_final[k] = last.final.deltays_final[k] = Number.NaN;
      }
    }
    if (last.extra?.uncertainty_x) {
      Object.assign(last.extra, finalUncertainty(last, lastGrid, field, ixs, iys, this.useTps === false ? Number.POSITIVE_INFINITY : this.tpsParams.threshold));
    }
    return result;
  }

  /** Number of passes (ensemble correlation runs one sweep over the series per pass). */
  get passCount(): number {
    return this.passes.length;
  }

  /** The windows of pass k for images of this size: their count and the size of one correlation plane. */
  planeLayout(k: number, height: number, width: number): { windows: number; planeSize: number } {
    const pass = this.passes[k];
    const grid = makeGrid(parseStrcrop(this.strcrop, [height, width]), pass.shape0, this.overlap);
    return {
      windows: grid.ys.length * grid.xs.length,
      planeSize: Math.max(pass.shape0[0], pass.shape1[0]) * Math.max(pass.shape0[1], pass.shape1[1]),
    };
  }

  /**
   * Ensemble correlation, one pair: pass k with the ensemble's field of the previous pass
   * as predictor (`field`, undefined for the first pass); each window's correlation plane
   * is added to `planes` (planeLayout's sizes) instead of giving a vector.
   */
  async accumulatePlanes(input: PairImages, k: number, field: Field | undefined, planes: EnsemblePlanes): Promise<void> {
    const { height, width } = input;
    if (input.im0.length !== height * width || input.im1.length !== height * width) {
      throw new Error(`Images of one pair must have the same size (${input.names[0]} and ${input.names[1]})`);
    }
    const mask = this.maskOf(input);
    const pair = mask ? applyMask(input, mask) : input;
    const pass = this.passes[k];
    const grid = makeGrid(parseStrcrop(this.strcrop, [height, width]), pass.shape0, this.overlap);
    const splines: { value?: SplineImages; predictor?: SplineImages; scratch?: Scratch } = {};
    try {
      await this.onePass(pair, pass, grid, field, splines, { planes, isLast: k === this.passes.length - 1 });
    } finally {
      if (splines.scratch) this.spare.push(splines.scratch);
    }
  }

  /**
   * Ensemble correlation, after the sweep of pass k: the vectors from the planes summed
   * over the pairs (peaks, sub-pixel fit, validation, secondary peaks as for one pair) and
   * the field handed to the next pass (filled, smoothed as `multipass.use_tps` says).
   */
  async passFromPlanes(k: number, height: number, width: number, field: Field | undefined, planes: EnsemblePlanes): Promise<{ result: PassResult; field: Field }> {
    const pass = this.passes[k];
    const grid = makeGrid(parseStrcrop(this.strcrop, [height, width]), pass.shape0, this.overlap);
    const placed = this.placeWindows(pass, grid, field, height, width);
    const [h0, w0] = pass.shape0;
    const [h1, w1] = pass.shape1;
    const out = await this.timed('correlation', () => native().peaksOnPlanes({
      height, width, h0, w0, h1, w1, starts0: placed.starts0, starts1: placed.starts1,
      displacementMax: pass.searchMax, subpix: this.subpix, nsubpix: this.nsubpix, minValidFraction: this.minValidFraction,
      nbPeaks: this.nativePeaks, particleRadius: this.particleRadius, windowSigma: this.windowSigma,
      planes: planes.sum, planeCounts: planes.count,
      ...(this.fixTests.peakToMeanMin > 0 ? { peakToMean: true } : {}),
    }, this.threads));
    const r = this.vectorsOfPass(out, pass, placed);
    return { result: r.result, field: await this.passField(k, r, grid) };
  }

  /** The field of pass k given its values on the pass's grid (e.g. received from another process). */
  fieldOf(k: number, height: number, width: number, dx: Float32Array, dy: Float32Array): Field {
    return { grid: makeGrid(parseStrcrop(this.strcrop, [height, width]), this.passes[k].shape0, this.overlap), dx, dy };
  }

  /** Ensemble correlation: the result of the passes from planes, with the final field (static masks NaN). */
  ensembleResult(passes: PassResult[], field: Field, height: number, width: number, names: [string, string], paths: [string, string]): PivResult {
    const masks = [...(this.mask ? [this.mask] : [])];
    if (this.polygons && this.polygons.length > 0) masks.push(polygonMask(this.polygons, height, width));
    const mask = combineMasks(masks, height, width, 'the ensemble');
    return this.withFinalField({ names, paths, shape_images: [height, width], passes, params: this.params }, field, mask);
  }

  /** The mask of a pair: the static one, the pair's own, the polygons (undefined: none). */
  private maskOf(pair: PairImages): ImageMask | undefined {
    const { height, width } = pair;
    const masks = [...(this.mask ? [this.mask] : []), ...(pair.masks ?? [])];
    if (this.polygons && this.polygons.length > 0) {
      const cached = this.polygonCache;
      this.polygonCache = cached && cached.height === height && cached.width === width ? cached : polygonMask(this.polygons, height, width);
      masks.push(this.polygonCache);
    }
    return combineMasks(masks, height, width, pair.names.join(', '));
  }

  /**
   * Smooths the valid vectors of a pass with thin-plate splines (subdomains) and
   * evaluates them on the pass's grid. Points no box covers (or a field with too few
   * vectors) keep the linear fill (`filledU`, `filledV`: the pass's field with its holes
   * filled). Returns undefined when nothing could be smoothed.
   */
  private async tps(pass: PassResult, grid: Grid, filledU: Float32Array, filledV: Float32Array) {
    const n = pass.deltaxs.length;
    const valid = new Int32Array(n);
    let nValid = 0;
    for (let k = 0; k < n; k++) if (!Number.isNaN(pass.deltaxs[k])) valid[nValid++] = k;
    if (nValid < 10) return undefined;
    const pickInto = <T extends Float32Array | Float64Array>(out: T, a: ArrayLike<number>): T => {
      for (let q = 0; q < nValid; q++) out[q] = a[valid[q]];
      return out;
    };
    const [ny, nx] = pass.shape_grid;
    const gx = new Float64Array(ny * nx);
    const gy = new Float64Array(ny * nx);
    for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
      gx[j * nx + i] = grid.xs[i];
      gy[j * nx + i] = grid.ys[j];
    }
    // With deformation the vectors sit on the grid points: one evaluation serves both, and
    // the spline takes the whole grid, rejected vectors filled from their neighbours: every
    // subdomain then has the same layout and the native core factorises one system for all.
    let onGrid = true;
    for (let q = 0; q < nValid && onGrid; q++) onGrid = pass.xs[valid[q]] === gx[valid[q]] && pass.ys[valid[q]] === gy[valid[q]];
    // The filled field is the spline's input on the grid, and the value wherever no box gives one.
    const data = onGrid
      ? { x: gx, y: gy, u: new Float64Array(filledU), v: new Float64Array(filledV) }
      : {
        x: pickInto(new Float64Array(nValid), pass.xs), y: pickInto(new Float64Array(nValid), pass.ys),
        u: pickInto(new Float64Array(nValid), pass.deltaxs), v: pickInto(new Float64Array(nValid), pass.deltays),
      };
    const out = await native().tpsSmooth({
      ...data, xNew: gx, yNew: gy,
      subdomSize: this.tpsParams.subdomSize, smoothingCoef: this.tpsParams.smoothingCoef, threshold: this.tpsParams.threshold,
      smoothAtPoints: !onGrid,
    }, this.threads);
    const fill = (values: Float64Array, filled: Float32Array) => {
      const f = new Float32Array(values.length);
      for (let k = 0; k < f.length; k++) f[k] = Number.isNaN(values[k]) ? filled[k] : values[k];
      return f;
    };
    return {
      gridDx: fill(out.uNew, filledU),
      gridDy: fill(out.vNew, filledV),
      stored: {
        xs_smooth: pickInto(new Float32Array(nValid), pass.xs),
        ys_smooth: pickInto(new Float32Array(nValid), pass.ys),
        deltaxs_smooth: onGrid ? pickInto(new Float32Array(nValid), out.uNew) : new Float32Array(out.uSmooth),
        deltays_smooth: onGrid ? pickInto(new Float32Array(nValid), out.vNew) : new Float32Array(out.vSmooth),
      },
    };
  }


  /** A set of buffers for `npix` pixels: a spare one of that size, or new ones. */
  private takeScratch(npix: number): Scratch {
    const i = this.spare.findIndex((s) => s.size === npix);
    if (i >= 0) return this.spare.splice(i, 1)[0];
    // Sizes changed (another image size): the old buffers go.
    this.spare.length = 0;
    return { size: npix, out0: new Float32Array(npix), out1: new Float32Array(npix) };
  }

  /**
   * Where the windows of a pass go: their corners in both images, the vector positions,
   * and the predictor at the window centres (interpolated from `prev`, smoothed first when
   * multipass.smooth_predictor), which is also the field the images are deformed with.
   */
  private placeWindows(pass: PassConfig, grid: Grid, prev: Field | undefined, height: number, width: number) {
    const ny = grid.ys.length;
    const nx = grid.xs.length;
    const n = ny * nx;
    const xs = new Float32Array(n);
    const ys = new Float32Array(n);
    if (pass.deform && prev && this.smoothPredictor) {
      // Deform with a smoothed predictor, and measure the residual against that same field.
      const [pny, pnx] = [prev.grid.ys.length, prev.grid.xs.length];
      prev = { grid: prev.grid, dx: smooth3(prev.dx, pny, pnx), dy: smooth3(prev.dy, pny, pnx) };
    }
    // Displacement predicted by the previous pass at the new window centres.
    const [predX, predY] = prev ? interpToGrid(prev.grid.xs, prev.grid.ys, [prev.dx, prev.dy], grid.xs, grid.ys) : [undefined, undefined];
    const starts0 = new Int32Array(2 * n);
    const starts1 = new Int32Array(2 * n);
    const [h0, w0] = pass.shape0;
    const [h1, w1] = pass.shape1;
    const padY = Math.floor((h1 - h0) / 2);
    const padX = Math.floor((w1 - w0) / 2);
    const deformed = pass.deform && prev !== undefined;
    // Without a whole-pixel shift (first pass, deformed passes) a window's offsets depend on
    // its row or its column only: computed once per row and per column.
    const shifted = predX !== undefined && predY !== undefined && !deformed;
    const rowOff = shifted ? undefined : Int32Array.from(grid.startsY, (y) => shiftOffset(y, h0, 0, height));
    const colOff = shifted ? undefined : Int32Array.from(grid.startsX, (x) => shiftOffset(x, w0, 0, width));
    for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
      const k = j * nx + i;
      const sy = shifted ? roundHalfEven(predY[k]) : 0;
      const sx = shifted ? roundHalfEven(predX[k]) : 0;
      // Window 0 moves back by floor(s/2), window 1 forward by the rest, unless that
      // pushes a window out of the image: then both slide (as Fluidimage) so that they
      // stay inside. The vector is located midway between the two window centres.
      const offY0 = rowOff ? rowOff[j] : shiftOffset(grid.startsY[j], h0, sy, height);
      const offX0 = colOff ? colOff[i] : shiftOffset(grid.startsX[i], w0, sx, width);
      starts0[2 * k] = grid.startsY[j] + offY0;
      starts0[2 * k + 1] = grid.startsX[i] + offX0;
      starts1[2 * k] = grid.startsY[j] - padY + offY0 + sy;
      starts1[2 * k + 1] = grid.startsX[i] - padX + offX0 + sx;
      ys[k] = grid.ys[j] + offY0 + sy / 2;
      xs[k] = grid.xs[i] + offX0 + sx / 2;
    }
    return { ny, nx, n, xs, ys, starts0, starts1, predX, predY, field: deformed ? prev : undefined };
  }

  private async onePass(pair: PairImages, pass: PassConfig, grid: Grid, prev: Field | undefined,
    splines: { value?: SplineImages; predictor?: SplineImages; scratch?: Scratch }, opts: { isLast?: boolean; planes?: EnsemblePlanes } = {}) {
    const { planes } = opts;
    const placed = this.placeWindows(pass, grid, prev, pair.height, pair.width);
    const [h0, w0] = pass.shape0;
    const [h1, w1] = pass.shape1;
    let images = { im0: pair.im0, im1: pair.im1 };
    if (placed.field) {
      // Both images deformed half-way each: windows stay centred on the grid and the
      // correlation measures what the previous field did not explain.
      const field = placed.field;
      images = await this.timed('deformation', async () => {
        const npix = pair.height * pair.width;
        const scratch = splines.scratch ??= this.takeScratch(npix);
        const grid = { xs: Float32Array.from(field.grid.xs), ys: Float32Array.from(field.grid.ys), dx: field.dx, dy: field.dy };
        if (!opts.isLast && this.predictorDegree !== this.splineDegree) {
          // A predictor pass: its field only places the next pass's windows, which measure
          // (and remove) what a cheaper spline leaves. Its coefficients go to the scratch
          // buffers: the images stay for the last pass's (which may take them in place).
          splines.predictor ??= await native().splinePair({
            im0: pair.im0, im1: pair.im1, height: pair.height, width: pair.width, degree: this.predictorDegree,
            coef0: scratch.coef0 ??= new Float32Array(npix), coef1: scratch.coef1 ??= new Float32Array(npix),
          }, this.threads);
          return native().deformPair({
            spline: splines.predictor, height: pair.height, width: pair.width, out0: scratch.out0, out1: scratch.out1, ...grid,
          }, this.threads);
        }
        if (!splines.value) {
          // Images that are ours take their coefficients in place (they are not read again:
          // later passes correlate deformed images).
          const coef0 = pair.owned ? pair.im0 : (scratch.coef0 ??= new Float32Array(npix));
          const coef1 = pair.owned ? pair.im1 : (scratch.coef1 ??= new Float32Array(npix));
          splines.value = await native().splinePair({
            im0: pair.im0, im1: pair.im1, height: pair.height, width: pair.width, degree: this.splineDegree, coef0, coef1,
          }, this.threads);
        }
        return native().deformPair({
          spline: splines.value, height: pair.height, width: pair.width, out0: scratch.out0, out1: scratch.out1, ...grid,
        }, this.threads);
      });
    }
    const out = await this.timed('correlation', () => native().correlatePass({
      im0: images.im0, im1: images.im1, height: pair.height, width: pair.width,
      h0, w0, h1, w1, starts0: placed.starts0, starts1: placed.starts1,
      displacementMax: pass.searchMax, subpix: this.subpix, nsubpix: this.nsubpix, minValidFraction: this.minValidFraction,
      nbPeaks: this.nativePeaks, particleRadius: this.particleRadius, windowSigma: this.windowSigma, profile: this.profile,
      ...(this.fixTests.peakToMeanMin > 0 ? { peakToMean: true } : {}),
      ...(planes ? { planes: planes.sum, planeCounts: planes.count } : {}),
    }, this.threads));
    if (out.phases) for (const k of ['load', 'fft', 'spectra', 'peaks'] as const) this.correlationPhases[k] += out.phases[k];
    const r = this.vectorsOfPass(out, pass, placed);
    if (opts.isLast && this.withUncertainty) {
      // Per-vector uncertainty from the windows just correlated (uncertainty.ts).
      const padY = Math.floor((h1 - h0) / 2);
      const padX = Math.floor((w1 - w0) / 2);
      const { starts0, starts1, predX, predY } = placed;
      const u = await this.timed('uncertainty', () => vectorUncertainty({ ...images, height: pair.height, width: pair.width,
        starts0, starts1, h0, w0, padY, padX }, r.result, pass.deform && predX && predY ? [predX, predY] : undefined, this.minValidFraction, this.threads));
      r.result.extra = { ...r.result.extra, ...u };
    }
    return r;
  }

  /**
   * The vectors of a pass from its peaks: the predictor added back (deformed passes), the
   * error codes, the validation (fix.*) and secondary peaks, and the field with holes filled.
   */
  private vectorsOfPass(out: PassOut, pass: PassConfig, placed: ReturnType<WorkPIV['placeWindows']>) {
    const { ny, nx, n, xs, ys, predX, predY } = placed;
    if (this.fixTests.peakToMeanMin > 0 && !out.peakToMean) {
      throw new ParamError('fix.s2n_peak_to_mean_min', 'fix.s2n_peak_to_mean_min needs the peak-to-mean ratios of the native addon, which this build does not return: rebuild it (bash scripts/setup --force)');
    }
    const extraPeaks = this.nativePeaks - 1;
    if (pass.deform && predX && predY) {
      for (let k = 0; k < n; k++) {
        out.dx[k] += predX[k];
        out.dy[k] += predY[k];
        for (let q = 0; q < extraPeaks; q++) {
          out.dx2[k * extraPeaks + q] += predX[k];
          out.dy2[k * extraPeaks + q] += predY[k];
        }
      }
    }
    const errors = new VectorErrors(n);
    for (let k = 0; k < n; k++) {
      const c = out.code[k];
      if (c === VEC_CODES.peakOnBorder) errors.add(k, ERROR_CODES.peakOnBorder, ERROR_MESSAGES.peakOnBorder);
      else if (c === VEC_CODES.noTexture) errors.add(k, ERROR_CODES.other, ERROR_MESSAGES.noTexture);
      else if (c === VEC_CODES.outside) errors.add(k, ERROR_CODES.outside, ERROR_MESSAGES.outside);
    }
    const tFix = performance.now();
    const fixParams: FixParams = { ...this.fixTests, displacementMax: pass.fixDisplacementMax };
    // The second highest peak of each window, for the peak ratio.
    const second = this.fixTests.peakRatioMin > 0 ? new Float32Array(n) : undefined;
    if (second) for (let k = 0; k < n; k++) second[k] = out.correl2[k * extraPeaks];
    applyFix(out.dx, out.dy, out.correl, errors, ny, nx, fixParams, { second, peakToMean: out.peakToMean });
    if (this.nbPeaks > 1) {
      replaceBySecondaryPeaks(out.dx, out.dy, out.correl, errors, { count: extraPeaks, dx: out.dx2, dy: out.dy2, correl: out.correl2 }, ny, nx, {
        ...fixParams, maxDistance: Number.isFinite(this.thresholdDiff) ? Math.min(this.thresholdDiff, 3) : 3,
      });
    }
    const result: PassResult = {
      xs, ys,
      deltaxs: out.dx,
      deltays: out.dy,
      correls_max: out.correl,
      errors: errors.toStored(),
      shape_grid: [ny, nx],
    };
    this.stages.validation += (performance.now() - tFix) / 1000;
    return { result, filledDx: fillNaN(out.dx, ny, nx), filledDy: fillNaN(out.dy, ny, nx) };
  }
}
