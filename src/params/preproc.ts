/**
 * Parameters of the preprocessing topology, with Fluidimage's names: `preproc.tools.sequence`
 * gives the order, `preproc.tools.<tool>.enable` switches each tool on, the other keys of a
 * tool are the arguments of Fluidimage's function of the same name (python backend).
 */
import { bool, custom, group, invalid, num, numOrNull, str, strOrNull } from './schema.js';
import { seriesGroup } from './series.js';

/** Every tool, in Fluidimage's order (the order applied when `sequence` is null). */
export const PREPROC_TOOLS = [
  'sliding_median', 'sliding_minima', 'sliding_percentile',
  'temporal_median', 'temporal_minima', 'temporal_percentile',
  'global_threshold', 'adaptive_threshold',
  'rescale_intensity', 'equalize_hist_global', 'equalize_hist_local', 'equalize_hist_adapt',
  'gamma_correction', 'sharpen', 'rescale_intensity_tanh',
] as const;
export type PreprocToolName = (typeof PREPROC_TOOLS)[number];

export const BOUNDARY_MODES = ['reflect', 'mirror', 'nearest', 'wrap', 'constant'] as const;

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** A window: one size (square) or [ny, nx]. */
function windowSize(v: unknown, key: string): number | number[] {
  if (isInt(v, 1, 1001)) return v;
  if (Array.isArray(v) && v.length === 2 && v.every((n) => isInt(n, 1, 1001))) return [v[0] as number, v[1] as number];
  throw invalid(key, 'a window size (an integer between 1 and 1001) or a pair [ny, nx]', v);
}

/** Temporal window: null (one pixel) or a spatial extent [ny, nx]; time is always the whole item. */
function temporalWindow(v: unknown, key: string): number[] | null {
  if (v === null) return null;
  if (Array.isArray(v) && v.length === 2 && v.every((n) => isInt(n, 1, 101))) return [v[0] as number, v[1] as number];
  throw invalid(key, 'null or a spatial window [ny, nx] (integers between 1 and 101; the time extent is the whole item, see series.str_subset)', v);
}

function tileShape(v: unknown, key: string): number[] {
  if (Array.isArray(v) && v.length === 2 && v.every((n) => isInt(n, 2, 100000))) return [v[0] as number, v[1] as number];
  if (isInt(v, 2, 100000)) return [v, v];
  throw invalid(key, 'a tile shape [ny, nx] in pixels (integers >= 2)', v);
}

function oddSize(v: unknown, key: string): number {
  if (isInt(v, 3, 1001) && v % 2 === 1) return v;
  throw invalid(key, 'an odd integer between 3 and 1001', v);
}

function sequence(v: unknown, key: string): string[] | null {
  if (v === null) return null;
  const known = PREPROC_TOOLS as readonly string[];
  if (Array.isArray(v) && v.every((t) => typeof t === 'string')) {
    const unknown = v.find((t) => !known.includes(t as string));
    if (unknown === undefined) return v as string[];
    throw invalid(key, `a list of tool names among ${PREPROC_TOOLS.join(', ')} (unknown: ${JSON.stringify(unknown)})`, v);
  }
  throw invalid(key, `null (all tools in the default order) or a list of tool names among ${PREPROC_TOOLS.join(', ')}`, v);
}

const enable = () => bool(false, 'Apply this tool');
const weight = () => num(1.0, 'Fraction of the filtered image subtracted from each pixel', { min: 0 });
const boundary = () => str('reflect', 'Border handling (as scipy.ndimage): reflect (d c b a | a b c d), mirror (d c b | a b c d), nearest, wrap, constant (zeros)', BOUNDARY_MODES);
const slidingWindow = () => custom<number | number[]>(30, 'Sliding window size in pixels: N or [ny, nx] (even sizes: the centre is the pixel after the middle, as scipy)', windowSize);
const temporalShape = () => custom<number[] | null>(null, 'null: statistic over the images of the item at each pixel; [ny, nx]: over the images and a spatial window', temporalWindow);
const percentile = () => num(10.0, 'Percentile (50: median)', { min: 0, max: 100 });

export const preprocSchema = group('Parameters of the preprocessing topology', {
  series: seriesGroup('Which images; one item = the images preprocessed together', 'all1by1',
    'Images of one item: "all1by1" (each image alone), or e.g. "i-2:i+3" (5 images around i, for the temporal tools): the middle image is written (and, at the two ends of the series, the images before/after it)'),
  preproc: group('The preprocessing', {
    tools: group('Tools, applied in the order of `sequence` when enabled (float32 processing)', {
      sequence: custom<string[] | null>(null, 'Order of the tools (null: the order below); only enabled tools run', sequence),
      sliding_median: group('Subtract weight x the median of a sliding window (negative values set to 0)', {
        enable: enable(), weight: weight(), window_size: slidingWindow(), boundary_condition: boundary(),
      }),
      sliding_minima: group('Subtract weight x the minimum of a sliding window (negative values set to 0)', {
        enable: enable(), weight: weight(), window_size: slidingWindow(), boundary_condition: boundary(),
      }),
      sliding_percentile: group('Subtract weight x a percentile of a sliding window (negative values set to 0); low percentiles suit dense images', {
        enable: enable(), percentile: percentile(), weight: weight(), window_size: slidingWindow(), boundary_condition: boundary(),
      }),
      temporal_median: group('Subtract weight x the median over the images of the item (see series.str_subset)', {
        enable: enable(), weight: weight(), window_shape: temporalShape(),
      }),
      temporal_minima: group('Subtract weight x the minimum over the images of the item', {
        enable: enable(), weight: weight(), window_shape: temporalShape(),
      }),
      temporal_percentile: group('Subtract weight x a percentile over the images of the item', {
        enable: enable(), percentile: percentile(), weight: weight(), window_shape: temporalShape(),
      }),
      global_threshold: group('Clip the intensities to [minima, maxima]', {
        enable: enable(),
        minima: num(0.0, 'Lower bound'),
        maxima: num(65535.0, 'Upper bound'),
      }),
      adaptive_threshold: group('Keep the pixels above a local threshold (local mean - offset), set the others to 0', {
        enable: enable(),
        window_size: custom<number>(5, 'Odd size of the neighbourhood of the local threshold', oddSize),
        offset: num(0, 'Subtracted from the local mean'),
        method: str('gaussian', 'Local mean: gaussian (sigma = (window_size - 1) / 6, as skimage) or mean (box)', ['gaussian', 'mean'] as const),
      }),
      rescale_intensity: group('Rescale linearly from [image min, image max] to [minima, maxima]', {
        enable: enable(),
        minima: num(0.0, 'Output minimum'),
        maxima: num(4096, 'Output maximum'),
      }),
      equalize_hist_global: group('Global histogram equalisation (output rescaled to the input range)', {
        enable: enable(),
        nbins: num(256, 'Number of histogram bins', { integer: true, min: 2, max: 65536 }),
      }),
      equalize_hist_local: group('Local histogram equalisation over a disk (rank of each pixel in its neighbourhood; output rescaled to the input range)', {
        enable: enable(),
        radius: num(10, 'Radius of the disk, pixels', { integer: true, min: 1, max: 500 }),
        nbins: num(256, 'Number of grey levels', { integer: true, min: 2, max: 4096 }),
      }),
      equalize_hist_adapt: group('Contrast limited adaptive histogram equalisation (CLAHE): one clipped histogram per tile, mappings interpolated bilinearly between tile centres; output rescaled to the input range', {
        enable: enable(),
        window_shape: custom<number[]>([10, 10], 'Tile shape [ny, nx], pixels', tileShape),
        nbins: num(256, 'Number of histogram bins', { integer: true, min: 2, max: 65536 }),
        clip_limit: num(0.01, 'Clip limit, fraction of the pixels of a tile per bin (as skimage; 1: no clipping)', { min: 0, max: 1 }),
      }),
      gamma_correction: group('Power law: gain x full_scale x (I / full_scale)^gamma, full_scale = 2^bit_depth - 1', {
        enable: enable(),
        gamma: num(1.0, 'Exponent (> 1 darker, < 1 lighter)', { min: 0 }),
        gain: num(1.0, 'Multiplying factor', { min: 0 }),
      }),
      sharpen: group('Sharpen: B1 + alpha (B1 - B2), B1 = gaussian(I, sigma1), B2 = gaussian(B1, sigma2)', {
        enable: enable(),
        sigma1: num(3.0, 'Standard deviation of the first gaussian, pixels', { above: 0, max: 100 }),
        sigma2: num(1.0, 'Standard deviation of the second gaussian, pixels', { above: 0, max: 100 }),
        alpha: num(30.0, 'Sharpening factor'),
      }),
      rescale_intensity_tanh: group('Soft saturation: floor(max(I) tanh(I / threshold) / max(tanh(I / threshold)))', {
        enable: enable(),
        threshold: numOrNull(null, 'Intensity scale (null: 2 sqrt(mean(I^2)))', { above: 0 }),
      }),
    }),
  }),
  saving: group('Where and how results are written', {
    path: strOrNull(null, 'Output directory (null: "<input dir>.<postfix>")'),
    how: str('complete', 'complete: only missing results; recompute: all; new_dir: a fresh directory', ['complete', 'recompute', 'new_dir'] as const),
    postfix: str('pre', 'Suffix of the default output directory'),
    format: str('img', 'img: same name, format and bit depth as the input (rounded, clipped to the range); hdf5: float32 values in <name>.h5', ['img', 'hdf5'] as const),
  }),
});
