/**
 * The tools as steps: each enabled tool of `preproc.tools` becomes a function over a
 * stack of images, built once from its (already validated) parameters.
 */
import { PREPROC_TOOLS, type PreprocToolName } from '../../params/preproc.js';
import type { ParamTree } from '../../params/tree.js';
import { shape2, type Boundary, type Img } from './image.js';
import { clahe } from './clahe.js';
import { equalizeHistGlobal, equalizeHistLocal } from './equalize.js';
import {
  adaptiveThreshold, gammaCorrection, globalThreshold, rescaleIntensity, rescaleIntensityTanh, sharpen,
} from './intensity.js';
import { minimumFilter, percentileRank, rankFilter } from './rank.js';
import { subtractFromAll, temporalStatistic, type TemporalKind } from './temporal.js';

/** What a tool needs besides the pixels. */
export interface ImageContext {
  width: number;
  height: number;
  /** Bit depth of the input images (gamma_correction's full scale). */
  bitDepth: 8 | 16 | 32;
}

/** A tool that works on each image alone. */
export interface SpatialStep {
  name: PreprocToolName;
  temporal: false;
  apply(data: Float32Array, ctx: ImageContext): Float32Array;
}

/** A tool that needs all the images of the item. */
export interface TemporalStep {
  name: PreprocToolName;
  temporal: true;
  apply(stack: readonly Float32Array[], ctx: ImageContext): Float32Array[];
}

export type Step = SpatialStep | TemporalStep;


const img = (data: Float32Array, ctx: ImageContext): Img => ({ width: ctx.width, height: ctx.height, data });

/** data - weight x filtered, negative values set to 0 (Fluidimage's sliding_* tools). */
function subtractClipped(data: Float32Array, filtered: Float32Array, weight: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]! - weight * filtered[i]!;
    out[i] = v > 0 ? v : 0;
  }
  return out;
}

function spatial(name: PreprocToolName, apply: SpatialStep['apply']): SpatialStep {
  return { name, temporal: false, apply };
}

function temporal(name: PreprocToolName, kind: TemporalKind, p: ParamTree): TemporalStep {
  const weight = p.weight as number;
  const percentile = (p.percentile as number | undefined) ?? 50;
  const window = p.window_shape === null ? null : shape2(p.window_shape as number[]);
  return {
    name, temporal: true,
    apply: (stack, ctx) => {
      if (stack.length < 2) throw new Error(`${name} needs more than one image per item (series.str_subset such as "i-2:i+3")`);
      const stat = temporalStatistic(stack, ctx.width, ctx.height, kind, percentile, window);
      return subtractFromAll(stack, stat, weight);
    },
  };
}

/** The step of one tool from its parameters. */
export function makeStep(name: PreprocToolName, p: ParamTree): Step {
  switch (name) {
    case 'sliding_median':
    case 'sliding_percentile': {
      const size = shape2(p.window_size as number | number[]);
      const mode = p.boundary_condition as Boundary;
      const area = size[0] * size[1];
      const k = name === 'sliding_median' ? area >> 1 : percentileRank(area, p.percentile as number);
      const weight = p.weight as number;
      return spatial(name, (d, ctx) => subtractClipped(d, rankFilter(img(d, ctx), size, k, mode), weight));
    }
    case 'sliding_minima': {
      const size = shape2(p.window_size as number | number[]);
      const mode = p.boundary_condition as Boundary;
      const weight = p.weight as number;
      return spatial(name, (d, ctx) => subtractClipped(d, minimumFilter(img(d, ctx), size, mode), weight));
    }
    case 'temporal_median':
      return temporal(name, 'median', p);
    case 'temporal_minima':
      return temporal(name, 'minima', p);
    case 'temporal_percentile':
      return temporal(name, 'percentile', p);
    case 'global_threshold':
      return spatial(name, (d) => globalThreshold(d, p.minima as number, p.maxima as number));
    case 'adaptive_threshold':
      return spatial(name, (d, ctx) => adaptiveThreshold(img(d, ctx), p.window_size as number, p.offset as number,
        p.method as 'gaussian' | 'mean'));
    case 'rescale_intensity':
      return spatial(name, (d) => rescaleIntensity(d, p.minima as number, p.maxima as number));
    case 'equalize_hist_global':
      return spatial(name, (d) => equalizeHistGlobal(d, p.nbins as number));
    case 'equalize_hist_local':
      return spatial(name, (d, ctx) => equalizeHistLocal(img(d, ctx), p.radius as number, p.nbins as number));
    case 'equalize_hist_adapt':
      return spatial(name, (d, ctx) => clahe(img(d, ctx), shape2(p.window_shape as number[]), p.nbins as number,
        p.clip_limit as number));
    case 'gamma_correction':
      return spatial(name, (d, ctx) => gammaCorrection(d, p.gamma as number, p.gain as number,
        ctx.bitDepth === 32 ? 1 : 2 ** ctx.bitDepth - 1));
    case 'sharpen':
      return spatial(name, (d, ctx) => sharpen(img(d, ctx), p.sigma1 as number, p.sigma2 as number, p.alpha as number));
    case 'rescale_intensity_tanh':
      return spatial(name, (d) => rescaleIntensityTanh(d, p.threshold as number | null));
  }
}

/** The enabled tools of `preproc.tools`, in the order of `sequence` (null: Fluidimage's order). */
export function enabledSteps(tools: ParamTree): Step[] {
  const sequence = (tools.sequence as string[] | null) ?? PREPROC_TOOLS;
  return sequence
    .filter((name) => (tools[name] as ParamTree).enable === true)
    .map((name) => makeStep(name as PreprocToolName, tools[name] as ParamTree));
}
