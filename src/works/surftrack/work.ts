/**
 * The surface tracking work (Fourier-transform profilometry), as Fluidimage's
 * WorkSurfaceTracking, made of independent items:
 *
 * 1. once: the mean of the normalised reference crops (flat surface) gives the carrier
 *    (measured to 1/sur of a Fourier bin unless k_x, k_y are given) and the reference
 *    analytic field A_ref;
 * 2. per frame: normalised crop -> analytic field A (carrier removed, band-passed) ->
 *    wrapped phase difference arg(A conj(A_ref)) -> 2D unwrapping -> the 2 pi ambiguity
 *    fixed at the anchor -> height (geometry), optional parallax correction, offset.
 *
 * Fluidimage fixes the 2 pi ambiguity of frame n by comparing its phase at one point with
 * that of frame n - 1 (a chain through the whole series). Here each frame is compared with
 * the reference instead: the median phase difference around the anchor is brought within
 * (-pi, pi]. Frames therefore stay independent (any executor, any order, resumable), and a
 * bad frame cannot shift all the following ones; the condition is that the surface near
 * the anchor stays within half a fringe shift of its rest position, the same condition as
 * Fluidimage's between consecutive frames when the anchor sits on a still part of the surface.
 */
import { ParamError, typedTree, type Defaults } from '../../params/schema.js';
import { surftrackSchema } from '../../params/surftrack.js';
import type { ParamTree } from '../../params/tree.js';
import { bandFilter, demodulate, measureCarrier, normalizeCrop, type Carrier, type ComplexField, type Crop } from './carrier.js';
import { correctPositions, phaseToHeight, type Geometry } from './height.js';
import { unwrap, type UnwrapMethod } from './unwrap.js';

/** One grey image, as read (any bit depth). */
export interface Frame {
  data: ArrayLike<number>;
  width: number;
  height: number;
}

/** Everything a frame's computation needs; plain data (sent to compute threads as is). */
export interface SurfSetup {
  width: number;
  height: number;
  crop: Crop;
  carrier: Carrier;
  /** True when the carrier was measured on the reference (not given). */
  carrierMeasured: boolean;
  geometry: Geometry;
  pixSize: number;
  slicer: number;
  red: number;
  unwrap: UnwrapMethod;
  /** [fy, fx] fractions of the crop. */
  anchor: [number, number];
  modulationMin: number;
  correctPos: boolean;
  offset: number;
  /** Reference analytic field, subsampled by red. */
  ref: ComplexField;
  /** Median of |A_ref|. */
  refModulationMedian: number;
  /** Number of reference images averaged. */
  nbRefs: number;
}

/** The height field of one frame on the (subsampled) crop grid [ny, nx]. */
export interface SurfResult {
  ny: number;
  nx: number;
  /** Height, m; NaN where there are no fringes. */
  height: Float32Array;
  /** Unwrapped phase difference to the reference, rad; NaN where there are no fringes. */
  phase: Float32Array;
  /** Image column / row of the grid points (pixels). */
  ix: Float32Array;
  iy: Float32Array;
  /** Median phase difference to the reference around the anchor, in (-pi, pi] (near +-pi: the 2 pi choice is fragile). */
  anchorPhase: number;
  /** Grid point [row, column] (pixels in the image) at the centre of the anchor region. */
  anchor: [number, number];
  /** Fraction of the grid with a finite height. */
  validFraction: number;
}

const TWO_PI = 2 * Math.PI;

type SurfaceTrackingParams = Defaults<typeof surftrackSchema>['surface_tracking'];

/** The crop of the surface_tracking parameters on an image of this size; errors name the key. */
function resolveCrop(st: SurfaceTrackingParams, width: number, height: number): Crop {
  const crop: Crop = { xmin: st.xmin, xmax: st.xmax ?? width, ymin: st.ymin, ymax: st.ymax ?? height };
  const check = (key: string, ok: boolean, what: string) => {
    if (!ok) throw new ParamError(`surface_tracking.${key}`, `surface_tracking.${key}: ${what} (images are ${width}x${height}, crop x ${crop.xmin}:${crop.xmax}, y ${crop.ymin}:${crop.ymax})`);
  };
  check('xmax', crop.xmax <= width, 'the crop goes past the right edge of the images');
  check('ymax', crop.ymax <= height, 'the crop goes past the bottom of the images');
  check('xmin', crop.xmax - crop.xmin >= 8, 'the crop must be at least 8 pixels wide (xmax - xmin)');
  check('ymin', crop.ymax - crop.ymin >= 8, 'the crop must be at least 8 pixels high (ymax - ymin)');
  return crop;
}

/**
 * The setup from the parameters and the reference images (at least one, all of the same
 * size): mean normalised reference, carrier, wavelength, reference analytic field.
 */
export function prepareSetup(params: ParamTree, refs: readonly Frame[]): SurfSetup {
  const st = typedTree(surftrackSchema, params).surface_tracking;
  if (refs.length === 0) throw new ParamError('images.path_ref', 'No reference image selected (images.path_ref, images.str_slice_ref, surface_tracking.startref_frame/lastref_frame)');
  const { width, height } = refs[0];
  const crop = resolveCrop(st, width, height);
  const nx = crop.xmax - crop.xmin;
  const ny = crop.ymax - crop.ymin;
  const mean = new Float64Array(nx * ny);
  for (const ref of refs) {
    if (ref.width !== width || ref.height !== height) {
      throw new ParamError('images.path_ref', `The reference images differ in size (${width}x${height} and ${ref.width}x${ref.height})`);
    }
    const f = normalizeCrop(ref.data, width, crop);
    for (let k = 0; k < f.length; k++) mean[k] += f[k] / refs.length;
  }
  const givenX = st.k_x;
  const givenY = st.k_y;
  const measured = givenX === null || givenY === null ? measureCarrier(mean, ny, nx, st.sur) : undefined;
  const carrier: Carrier = { kx: givenX ?? measured!.kx, ky: givenY ?? measured!.ky };
  const cyclesPerPixel = Math.hypot(carrier.kx / nx, carrier.ky / ny);
  if (!(cyclesPerPixel > 0) || cyclesPerPixel >= 0.5) {
    throw new ParamError('surface_tracking.k_x', `The carrier (k_x=${carrier.kx}, k_y=${carrier.ky} periods over ${nx}x${ny} pixels) must be non-zero and below the Nyquist frequency`);
  }
  const pixSize = st.pix_size;
  const geometry: Geometry = {
    distanceObject: st.distance_object,
    distanceLens: st.distance_lens,
    waveProj: st.wave_proj ?? pixSize / cyclesPerPixel,
  };
  const slicer = st.slicer;
  const red = st.red_factor;
  const ref = demodulate(mean, ny, nx, carrier, bandFilter(ny, nx, carrier, slicer), red);
  const refModulationMedian = median(modulus(ref));
  if (!(refModulationMedian > 0)) throw new ParamError('images.path_ref', 'The mean reference image has no fringes in the crop');
  return {
    width, height, crop, carrier, carrierMeasured: measured !== undefined, geometry, pixSize, slicer, red,
    unwrap: st.unwrap, anchor: st.anchor as [number, number], modulationMin: st.modulation_min,
    correctPos: st.correct_pos, offset: st.offset, ref, refModulationMedian, nbRefs: refs.length,
  };
}

/** Computes height fields; holds the band-pass filter, built once. */
export class WorkSurfaceTracking {
  private readonly filter: Float64Array;

  constructor(readonly setup: SurfSetup) {
    const { crop } = setup;
    this.filter = bandFilter(crop.ymax - crop.ymin, crop.xmax - crop.xmin, setup.carrier, setup.slicer);
  }

  calcul(frame: Frame): SurfResult {
    const s = this.setup;
    if (frame.width !== s.width || frame.height !== s.height) {
      throw new Error(`the image is ${frame.width}x${frame.height} but the reference images are ${s.width}x${s.height}`);
    }
    const { crop } = s;
    const a = demodulate(normalizeCrop(frame.data, frame.width, crop), crop.ymax - crop.ymin, crop.xmax - crop.xmin,
      s.carrier, this.filter, s.red);
    const { ny, nx } = a;
    const ref = s.ref;
    // Wrapped phase difference to the reference, and where both have fringes.
    const psi = new Float64Array(ny * nx);
    const mod = modulus(a);
    const minFrame = s.modulationMin * median(mod);
    const minRef = s.modulationMin * s.refModulationMedian;
    const valid = new Uint8Array(ny * nx);
    for (let k = 0; k < psi.length; k++) {
      const re = a.re[k] * ref.re[k] + a.im[k] * ref.im[k];
      const im = a.im[k] * ref.re[k] - a.re[k] * ref.im[k];
      psi[k] = Math.atan2(im, re);
      const refMod = Math.hypot(ref.re[k], ref.im[k]);
      valid[k] = mod[k] >= minFrame && refMod >= minRef && mod[k] > 0 && refMod > 0 ? 1 : 0;
    }
    const phase = unwrap(psi, ny, nx, s.unwrap);
    const { jumps, center, median: anchorMedian } = anchorJumps(phase, valid, ny, nx, s.anchor);
    let h: Float64Array = new Float64Array(ny * nx);
    for (let k = 0; k < h.length; k++) {
      phase[k] -= TWO_PI * jumps;
      h[k] = valid[k] ? phaseToHeight(phase[k], s.geometry) : Number.NaN;
    }
    if (s.correctPos) h = correctPositions(h, ny, nx, s.geometry.distanceObject);
    const height = new Float32Array(ny * nx);
    const phase32 = new Float32Array(ny * nx);
    let finite = 0;
    for (let k = 0; k < h.length; k++) {
      height[k] = h[k] + s.offset;
      phase32[k] = valid[k] ? phase[k] : Number.NaN;
      if (Number.isFinite(height[k])) finite++;
    }
    const ix = Float32Array.from({ length: nx }, (_, i) => crop.xmin + i * s.red);
    const iy = Float32Array.from({ length: ny }, (_, j) => crop.ymin + j * s.red);
    return {
      ny, nx, height, phase: phase32, ix, iy, anchorPhase: anchorMedian - TWO_PI * jumps,
      anchor: [iy[center[0]], ix[center[1]]], validFraction: finite / (ny * nx),
    };
  }
}

/**
 * The multiple of 2 pi that brings the median phase m around the anchor within (-pi, pi]:
 * a box of half-size 2% of the grid (at least 2 points) around [fy, fx], grown until it
 * holds valid points.
 */
function anchorJumps(phase: Float64Array, valid: Uint8Array, ny: number, nx: number, at: [number, number]): { jumps: number; center: [number, number]; median: number } {
  const cy = Math.round(at[0] * (ny - 1));
  const cx = Math.round(at[1] * (nx - 1));
  for (let r = Math.max(2, Math.round(0.02 * Math.min(ny, nx))); ; r *= 2) {
    const values: number[] = [];
    for (let y = Math.max(0, cy - r); y <= Math.min(ny - 1, cy + r); y++) {
      for (let x = Math.max(0, cx - r); x <= Math.min(nx - 1, cx + r); x++) {
        if (valid[y * nx + x]) values.push(phase[y * nx + x]);
      }
    }
    if (values.length > 0) {
      // n with m - 2 pi n in (-pi, pi] (the unwrapped field's own constant is arbitrary).
      const m = median(values);
      return { jumps: -Math.floor((Math.PI - m) / TWO_PI), center: [cy, cx], median: m };
    }
    if (r > ny + nx) throw new Error('no fringes in this image (the fringe amplitude is below surface_tracking.modulation_min everywhere)');
  }
}

/** |z| of a complex field. */
function modulus(f: ComplexField): Float64Array {
  const out = new Float64Array(f.re.length);
  for (let k = 0; k < out.length; k++) out[k] = Math.hypot(f.re[k], f.im[k]);
  return out;
}

function median(values: ArrayLike<number>): number {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}
