/**
 * Named synthetic cases (used by `fluidimage synth`, the tests and the benchmarks):
 * each is a displacement field plus image settings.
 */
import type { FieldSpec } from './fields.js';

export interface SynthCase {
  field: FieldSpec;
  bitDepth: 8 | 16;
  noise: number;
  doc: string;
}

export const SYNTH_CASES: Record<string, SynthCase> = {
  uniform: { field: { kind: 'uniform', dx: 3.3, dy: -1.7 }, bitDepth: 8, noise: 0.01, doc: 'uniform sub-pixel shift (3.3, -1.7) px' },
  vortex: { field: { kind: 'vortex', peak: 6 }, bitDepth: 8, noise: 0.01, doc: 'Lamb-Oseen vortex, 6 px peak displacement' },
  shear128: { field: { kind: 'shear', amplitude: 4, wavelength: 128 }, bitDepth: 8, noise: 0.01, doc: 'sinusoidal shear, 4 px amplitude, 128 px wavelength' },
  shear64: { field: { kind: 'shear', amplitude: 4, wavelength: 64 }, bitDepth: 8, noise: 0.01, doc: 'sinusoidal shear, 4 px amplitude, 64 px wavelength' },
  'shift-vortex': { field: { kind: 'uniform+vortex', dx: 14, dy: 0, peak: 1 }, bitDepth: 8, noise: 0.01, doc: 'uniform 14 px shift plus a weak vortex (needs several passes)' },
  noisy16: { field: { kind: 'uniform', dx: 3.3, dy: -1.7 }, bitDepth: 16, noise: 0.05, doc: 'uniform shift on noisy 16-bit images' },
};

export const SYNTH_CASE_NAMES = Object.keys(SYNTH_CASES);
