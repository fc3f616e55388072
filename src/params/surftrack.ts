/**
 * Parameters of the surface tracking topology (`fluidimage surftrack`): Fourier-transform
 * profilometry of a fringe pattern projected on a free surface, with Fluidimage's names
 * (`surface_tracking.*`, `images.path_ref`, `images.str_slice_ref`, `saving.*`). Where
 * Fluidimage's default only suits its own experiment (a crop at x 475:640, outside the
 * sample images), the default here is the whole image; new parameters are documented.
 */
import { custom, group, invalid, num, numOrNull, str, strOrNull, bool } from './schema.js';
import { seriesGroup } from './series.js';

/** A Python slice "start:stop[:step]" of integers (each part may be empty), or null. */
export const SLICE_RE = /^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*)?$/;

function slice(v: unknown, key: string): string | null {
  if (v === null) return null;
  if (typeof v === 'string') {
    const m = SLICE_RE.exec(v);
    if (m && (m[3] === undefined || Number(m[3]) !== 0)) return v.trim();
  }
  throw invalid(key, 'a Python slice such as ":3", "0:10:2" (or null)', v);
}

/** [fy, fx], fractions of the crop in [0, 1]. */
function anchor(v: unknown, key: string): number[] {
  if (Array.isArray(v) && v.length === 2 && v.every((f) => typeof f === 'number' && Number.isFinite(f) && f >= 0 && f <= 1)) {
    return [v[0] as number, v[1] as number];
  }
  throw invalid(key, 'a pair [fy, fx] of fractions of the crop between 0 and 1', v);
}

function nonZero(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v !== 0) return v;
  throw invalid(key, 'a non-zero number (metres; negative when the projector is on the other side of the camera)', v);
}

/** The phase unwrapping methods of works/surftrack/unwrap.ts. */
export const UNWRAP_METHODS = ['least_squares', 'rows_columns'] as const;
export type UnwrapMethod = (typeof UNWRAP_METHODS)[number];

export const surftrackSchema = group('Parameters of the surface tracking topology (Fourier-transform profilometry)', {
  series: seriesGroup('Which images: each image of the series is one item (one height field)', 'all1by1',
    'Images of one item: "all1by1" (each image), or an expression of i giving one image ("i")'),
  images: group('The reference images: fringes projected on the flat surface at rest', {
    path_ref: strOrNull(null, 'Directory, file or glob of the reference images (null: the images of series.path, all of them whatever ind_start/ind_stop)'),
    str_slice_ref: custom<string | null>(null, 'Python slice "start:stop[:step]" selecting the reference images among them, sorted (null: startref_frame to lastref_frame)', slice),
  }),
  surface_tracking: group('Fourier-transform profilometry (Fluidimage names)', {
    xmin: num(0, 'First column of the crop im[ymin:ymax, xmin:xmax]', { integer: true, min: 0 }),
    xmax: numOrNull(null, 'Column after the crop, excluded (null: the image width)', { integer: true, min: 1 }),
    ymin: num(0, 'First row of the crop', { integer: true, min: 0 }),
    ymax: numOrNull(null, 'Row after the crop, excluded (null: the image height)', { integer: true, min: 1 }),
    distance_object: num(1.293, 'Distance from the camera (and projector) to the reference surface, m', { above: 0 }),
    distance_lens: custom<number>(0.36, 'Distance between the lenses of the camera and the projector, m (the sign of the heights follows it)', nonZero),
    pix_size: num(2.4e-4, 'Size of one pixel on the reference surface, m', { above: 0 }),
    wave_proj: numOrNull(null, 'Wavelength of the projected fringes on the reference surface, m (null: pix_size / measured carrier frequency, as Fluidimage)', { above: 0 }),
    startref_frame: num(0, 'Index of the first reference image among the sorted reference images (when str_slice_ref is null)', { integer: true, min: 0 }),
    lastref_frame: num(49, 'Index of the last reference image, included (clipped to the images there are)', { integer: true, min: 0 }),
    sur: num(16, 'Oversampling of the spectrum used to measure the carrier: precision 1/sur of a Fourier bin', { integer: true, min: 1, max: 256 }),
    k_x: numOrNull(null, 'Carrier wavenumber along x, periods over the crop width (null: measured on the mean reference image)', {}),
    k_y: numOrNull(null, 'Carrier wavenumber along y, periods over the crop height (null: measured)', {}),
    slicer: num(4, 'Width of the Gaussian band-pass around the carrier: carrier frequency / slicer', { above: 0 }),
    red_factor: num(1, 'Keep one pixel out of red_factor along x and y after the filtering (faster unwrapping, smaller files)', { integer: true, min: 1, max: 64 }),
    unwrap: str('least_squares', 'Phase unwrapping: least_squares (Ghiglia-Romero DCT solver made congruent with the data: errors stay local) or rows_columns (Fluidimage: np.unwrap along rows then columns)', UNWRAP_METHODS),
    anchor: custom<number[]>([0.05, 0.5], 'Where the 2 pi ambiguity of each frame is fixed: [fy, fx] fractions of the crop (Fluidimage: row l_y/20, column l_x/2); the median phase around it is brought within (-pi, pi] of the reference: the surface there must stay within half a fringe shift of its rest position', anchor),
    modulation_min: num(0.1, 'Heights are NaN where the fringe amplitude of the reference or of the frame is below this fraction of its median over the crop (no fringes: shadows, outside the plate; 0: never)', { min: 0, max: 1 }),
    correct_pos: bool(false, 'Move each height to the true horizontal position of its point (parallax of the camera, significant for large heights)'),
    offset: num(0.0, 'Height of the reference surface above the zero level, m (added to every height)'),
  }),
  saving: group('Where and how results are written', {
    path: strOrNull(null, 'Output directory (null: "<input dir>.<postfix>")'),
    how: str('complete', 'complete: only missing results; recompute: all; new_dir: a fresh directory', ['complete', 'recompute', 'new_dir'] as const),
    postfix: str('surf', 'Suffix of the default output directory and prefix of result names (surf_<index>.h5)'),
  }),
});
