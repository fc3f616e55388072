/**
 * Parameters of the PIV topology, with Fluidimage's names and defaults. This is the
 * single source of truth: `fluidimage params piv` prints it, params files and `--set`
 * are checked against it.
 */
import {
  type Defaults,
  bool, custom, group, invalid, modulePath, num, numOrNull, str, strOrNull,
} from './schema.js';
import { seriesGroup } from './series.js';

/** A window shape: one size (square) or [ny, nx]. */
function shape(v: unknown, key: string, nullable: boolean): number | number[] | null {
  if (v === null && nullable) return null;
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 4 && n <= 4096;
  if (ok(v)) return v;
  if (Array.isArray(v) && v.length === 2 && v.every(ok)) return [v[0] as number, v[1] as number];
  throw invalid(key, `an integer window size between 4 and 4096 or a pair [ny, nx]${nullable ? ' (or null)' : ''}`, v);
}

/** Pixels (number > 0), a percentage of the window size ("30%"), or null (no limit). */
export function displacementMax(v: unknown, key: string): number | string | null {
  if (v === null) return null;
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
  if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v);
    if (m && Number(m[1]) > 0 && Number(m[1]) <= 100) return `${Number(m[1])}%`;
  }
  throw invalid(key, 'a displacement in pixels (> 0), a percentage of the window size such as "30%", or null', v);
}

function coeffZoom(v: unknown, key: string): number | number[] {
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 8;
  if (ok(v)) return v;
  if (Array.isArray(v) && v.length >= 1 && v.every(ok)) return v as number[];
  throw invalid(key, 'an integer between 1 and 8, or a list of them (one per pass after the first)', v);
}

function useTps(v: unknown, key: string): boolean | string {
  if (v === true || v === false || v === 'last') return v;
  throw invalid(key, 'true, false or "last"', v);
}

/** A global range of one displacement component: [min, max] in pixels, or null (off). */
function range(v: unknown, key: string): number[] | null {
  if (v === null) return null;
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) && v[0] <= v[1]) {
    return [v[0] as number, v[1] as number];
  }
  throw invalid(key, 'a range [min, max] in pixels (min <= max), or null', v);
}

/** Polygons in pixels: a list of polygons, each a list of at least 3 vertices [x, y]; null: none. */
function polygons(v: unknown, key: string): number[][][] | null {
  if (v === null) return null;
  const vertex = (p: unknown) => Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (Array.isArray(v) && v.every((poly) => Array.isArray(poly) && poly.length >= 3 && poly.every(vertex))) {
    return (v as number[][][]).map((poly) => poly.map(([x, y]) => [x, y]));
  }
  throw invalid(key, 'a list of polygons, each a list of at least 3 vertices [x, y] in pixels (or null)', v);
}

const SUBPIX_METHODS = ['2d_gaussian2', '2d_gaussian', 'centroid', 'no_subpix'] as const;

export const pivSchema = group('Parameters of the PIV topology', {
  series: seriesGroup('Which images and which pairs', 'pairs',
    'Which images form one item: "pairs", "i:i+2", "i:i+4:2", "i,0:2" (frames a,b of index i), ...'),
  piv0: group('First pass', {
    shape_crop_im0: custom<number | number[]>(48, 'Interrogation window size in image 0 (pixels, or [ny, nx])', (v, k) => shape(v, k, false) as number | number[]),
    shape_crop_im1: custom<number | number[] | null>(null, 'Window size in image 1 (null: same as image 0); with multipass.deform, first pass only (deformed passes correlate windows of one size)', (v, k) => shape(v, k, true)),
    displacement_max: custom<number | string | null>(null, 'Largest displacement searched in the first pass: pixels, "NN%" of the window size, or null (half the window)', displacementMax),
    method_correl: str('fftw', 'Correlation method (FFTW, normalised, mean removed)', ['fftw'] as const),
    method_subpix: str('2d_gaussian2', 'Sub-pixel peak fit (2d_gaussian2 falls back to centroid where the fit is impossible)', SUBPIX_METHODS),
    nsubpix: numOrNull(null, "Half-size of the neighbourhood used by the centroid fit (null: 1)", { integer: true, min: 1, max: 8 }),
    nb_peaks_to_search: num(1, 'Correlation peaks searched per window: with 2 or more, a rejected vector is replaced by the secondary peak closest to its neighbours when that one passes the tests', { integer: true, min: 1, max: 8 }),
    particle_radius: num(3, 'Half-size (pixels) of the square around a peak where the next peak may not be', { integer: true, min: 0, max: 64 }),
    window_sigma: numOrNull(null, 'Gaussian weighting of the interrogation windows: its standard deviation as a fraction of the window size (e.g. 0.4); null: uniform weights, as Fluidimage', { above: 0, max: 10 }),
    uncertainty: bool(false, 'Per-vector uncertainty of the last pass from correlation statistics (Wieneke 2015): datasets uncertainty_x, uncertainty_y (px, 1 sigma) and uncertainty_x_final, uncertainty_y_final in the last piv group (off by default: about a quarter more time per pair with 3 passes)'),
    min_valid_fraction: num(0.75, 'Windows with a smaller fraction of pixels inside the image (and the mask) give no vector (error code 6)', { min: 0, max: 1 }),
    grid: group('Grid of interrogation windows', {
      overlap: num(0.5, 'Overlap of neighbouring windows, fraction of the window size', { min: 0, max: 0.95 }),
    }),
  }),
  mask: group('Region of interest', {
    strcrop: strOrNull(null, 'Rectangular region "y0:y1, x0:x1" (Python slice syntax, ends excluded, may be empty)'),
    image: strOrNull(null, 'Static mask image, same size as the images: non-zero where there is flow; masked pixels are ignored by the correlations, windows mostly masked give no vector (code 6) and the final field is NaN there'),
    folder: strOrNull(null, 'Folder of masks that move: one mask image per image, with the image\'s file name (the mask of a pair is that of its first image), same size as the images, non-zero where there is flow; used as mask.image'),
    module: modulePath('JavaScript module (path, or path#export) making the mask of each pair: a function (image, name) => mask or a class with calcul(image, name), given the first image of the pair (after preproc.im2im); the mask is {data, width, height} or an array of width*height values, non-zero where there is flow; used as mask.image'),
    polygons: custom<number[][][] | null>(null, 'Polygons masked out (no flow inside): a list of polygons, each a list of vertices [x, y] in pixels (x: column, y: row; a pixel is inside when its centre is); used as mask.image', polygons),
  }),
  fix: group('Rejection of spurious vectors after each pass', {
    correl_min: num(0.2, 'Reject vectors whose normalised correlation peak is below this', { min: 0, max: 1 }),
    threshold_diff_neighbour: numOrNull(10, 'Reject vectors differing from the mean of their neighbours by more than this (pixels; null: off)', { above: 0 }),
    displacement_max: custom<number | string | null>(null, 'Reject displacements larger than this (pixels or "NN%" of the window; null: off)', displacementMax),
    threshold_median: numOrNull(5, 'Normalised median test (Westerweel & Scarano 2005): reject vectors whose normalised residual exceeds this (2-3 usual; null: off)', { above: 0 }),
    median_epsilon: num(0.1, 'Noise level of the median test, pixels', { above: 0 }),
    s2n_peak_ratio_min: numOrNull(null, 'Signal-to-noise, peak ratio: reject vectors whose correlation peak is lower than this times the second highest peak (outside piv0.particle_radius of the first; e.g. 1.2 to 1.5; null: off; code 7)', { above: 0 }),
    s2n_peak_to_mean_min: numOrNull(null, 'Signal-to-noise, peak to mean: reject vectors whose correlation peak is lower than this times the mean of |correlation| over the searched region (e.g. 3 to 10; null: off; code 8)', { above: 0 }),
    global_range: group('Global range filter: reject vectors outside fixed bounds (code 9)', {
      u: custom<number[] | null>(null, 'Range [min, max] of the displacement along x (pixels; null: off)', range),
      v: custom<number[] | null>(null, 'Range [min, max] of the displacement along y (pixels; null: off)', range),
    }),
    global_std_factor: numOrNull(null, 'Global standard deviation filter: reject vectors whose u or v differs from the mean of the valid vectors of the pass by more than this many standard deviations (e.g. 3; null: off; code 10)', { above: 0 }),
  }),
  multipass: group('Refinement passes', {
    number: num(1, 'Number of passes', { integer: true, min: 1, max: 8 }),
    coeff_zoom: custom<number | number[]>(2, 'Window size divisor from one pass to the next (an integer or one per pass)', coeffZoom),
    use_tps: custom<boolean | string>('last', 'Thin-plate-spline smoothing with subdomains (Fluidimage, UVmat): "last" for the final field, true also between passes, false never (linear interpolation)', useTps),
    subdom_size: num(200, 'TPS subdomain size (vectors)', { integer: true, min: 10 }),
    smoothing_coef: num(5.0, 'TPS smoothing coefficient', { min: 0 }),
    threshold_tps: num(1.5, 'TPS: replace vectors differing from the smoothed field by more than this (pixels)', { above: 0 }),
    deform: bool(true, 'Passes after the first deform both images along the previous field (B-spline interpolation) and measure the residual; false: whole-pixel window shift as Fluidimage'),
    spline_degree: custom<number>(7, 'Degree of the B-splines that resample the images in the deformation of the last pass (the passes before it: predictor_spline_degree): 7 (8x8 taps, least bias) or 5 (6x6 taps)', (v, k) => {
      if (v === 5 || v === 7) return v;
      throw invalid(k, '5 or 7', v);
    }),
    predictor_spline_degree: custom<number | null>(3, 'Degree of the B-splines that deform the images for the passes whose field is only the next pass\'s predictor (all but the last): 3 (4x4 taps, a cheaper prefilter; the last pass measures, and removes, what it leaves: same accuracy in bench:accuracy), 5 or 7; null: spline_degree (one prefilter for all passes)', (v, k) => {
      if (v === null || v === 3 || v === 5 || v === 7) return v;
      throw invalid(k, '3, 5, 7 or null', v);
    }),
    smooth_predictor: bool(true, 'Deform with the previous field smoothed by a 3x3 binomial filter (the residual is measured against that same field): noise is not fed back into the images'),
    iterations_last: num(0, 'Extra deformation iterations at the final window size (each one more pass in the results)', { integer: true, min: 0, max: 5 }),
  }),
  preproc: group('Image-to-image function applied to both images of each pair before PIV', {
    im2im: modulePath('JavaScript module (path, or path#export): a function (image, name) => image or a class with calcul(image, name); null: none'),
    args_init: custom<number[] | string[]>([], 'Arguments given to the class constructor of im2im', (v, k) => {
      if (Array.isArray(v) && (v.every((x) => typeof x === 'number') || v.every((x) => typeof x === 'string'))) return v as number[] | string[];
      throw invalid(k, 'a list of numbers or a list of strings', v);
    }),
  }),
  saving: group('Where and how results are written', {
    path: strOrNull(null, 'Output directory (null: "<input dir>.<postfix>")'),
    how: str('complete', 'complete: only missing results; recompute: all; new_dir: a fresh directory', ['complete', 'recompute', 'new_dir'] as const),
    postfix: str('piv', 'Suffix of the default output directory and prefix of result names'),
  }),
  compute: group('Execution', {
    fftw_planner: str('estimate', 'FFTW planner effort, once per window shape: estimate gives the same plans, hence bit-identical results, in every run and process; measure/patient can be faster for windows >= 48 px but results may differ in the last bits between runs', ['estimate', 'measure', 'patient'] as const),
    fftw_wisdom: strOrNull(null, 'File to load FFTW wisdom from and save it to (null: none)'),
    verbose: bool(false, 'Print one line per pair'),
  }),
});

/** The PIV parameter tree, typed from the schema. */
export type PivParams = Defaults<typeof pivSchema>;
