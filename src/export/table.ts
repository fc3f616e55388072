/**
 * The data every exporter writes: the vectors of one pass (or the final grid) with
 * positions and vectors converted by an optional calibration, and the text that documents
 * their meaning and units (put in each format's header or attributes).
 */
import { basename } from 'node:path';
import { finalGrid } from '../post/grid.js';
import type { PivResult } from '../results/piv_result.js';

/** Pixels per metre and time between the two images. Either may be given alone. */
export interface Calibration {
  pxPerM?: number;
  dt?: number;
}

export interface ExportField {
  source: string;
  /** 'pass' (the vectors of one pass, NaN where rejected) or 'final' (interpolated grid). */
  kind: 'pass' | 'final';
  passIndex: number;
  nbPasses: number;
  /** Grid shape [ny, nx] (x fastest); [1, n] for scattered vectors. */
  shape: [number, number];
  /** Image size [ny, nx] in pixels. */
  shapeImages: [number, number];
  x: Float32Array;
  y: Float32Array;
  u: Float32Array;
  v: Float32Array;
  /** 1 measured, 0 rejected (pass only). */
  valid?: Uint8Array;
  /** Normalised correlation peak (pass only). */
  correl?: Float32Array;
  /** Error code of the first reason of rejection, 0 when none (pass only). */
  code?: Int32Array;
  /** Per-vector uncertainty of u and v (1 sigma, in the vectors' unit), when the result holds it. */
  sigmaX?: Float32Array;
  sigmaY?: Float32Array;
  /** Names of the vector components: dx, dy (displacements) or u, v (velocities, with dt). */
  uName: 'dx' | 'u';
  vName: 'dy' | 'v';
  positionUnit: 'px' | 'm';
  vectorUnit: 'px' | 'm' | 'px/s' | 'm/s';
  calibration: Calibration;
  names: [string, string];
  /** Lines that say what the columns are (without comment markers). */
  description: string[];
}

export interface FieldChoice {
  /** The final grid instead of the pass's vectors. */
  final?: boolean;
  /** Pass index (default: the last). */
  pass?: number;
  calibration?: Calibration;
}

const exportError = (message: string): Error => Object.assign(new Error(message), { code: 'ERR_USAGE' });

/** The field to export from `result` (read from `source`). */
export function exportField(result: PivResult, source: string, choice: FieldChoice = {}): ExportField {
  const calibration = checkCalibration(choice.calibration ?? {});
  const nbPasses = result.passes.length;
  const passIndex = choice.pass ?? nbPasses - 1;
  if (!(Number.isInteger(passIndex) && passIndex >= 0 && passIndex < nbPasses)) {
    throw exportError(`--pass ${passIndex} is out of range: the file has ${nbPasses} pass(es) (0 to ${nbPasses - 1})`);
  }
  const pass = result.passes[passIndex];
  let x: Float32Array;
  let y: Float32Array;
  let dx: Float32Array;
  let dy: Float32Array;
  let shape: [number, number];
  let extra: Pick<ExportField, 'valid' | 'correl' | 'code'> = {};
  let sigmas: [Float32Array | undefined, Float32Array | undefined];
  if (choice.final) {
    if (choice.pass !== undefined && passIndex !== nbPasses - 1) throw exportError('--final is the field of the last pass: do not give --pass');
    const grid = finalGrid(result);
    const final = pass.final;
    if (grid === undefined || final === undefined) throw exportError(`${basename(source)} has no final grid (ixvecs_final, ...)`);
    ({ ixvecs_final: x, iyvecs_final: y, deltaxs_final: dx, deltays_final: dy } = final);
    shape = [grid.ny, grid.nx];
    sigmas = [pass.extra?.uncertainty_x_final, pass.extra?.uncertainty_y_final];
  } else {
    sigmas = [pass.extra?.uncertainty_x, pass.extra?.uncertainty_y];
    ({ xs: x, ys: y, deltaxs: dx, deltays: dy } = pass);
    shape = pass.shape_grid;
    const n = x.length;
    const valid = new Uint8Array(n);
    for (let i = 0; i < n; i++) valid[i] = Number.isNaN(dx[i]) || Number.isNaN(dy[i]) ? 0 : 1;
    const code = new Int32Array(n);
    // errors/ keys are in the order of the reasons found: keep the first one per vector.
    for (let k = pass.errors.keys.length - 1; k >= 0; k--) code[pass.errors.keys[k]] = pass.errors.codes[k];
    extra = { valid, correl: pass.correls_max, code };
  }
  const lengthFactor = calibration.pxPerM === undefined ? 1 : 1 / calibration.pxPerM;
  const vectorFactor = lengthFactor / (calibration.dt ?? 1);
  const field: ExportField = {
    source,
    kind: choice.final ? 'final' : 'pass',
    passIndex,
    nbPasses,
    shape,
    shapeImages: result.shape_images,
    x: scaled(x, lengthFactor),
    y: scaled(y, lengthFactor),
    u: scaled(dx, vectorFactor),
    v: scaled(dy, vectorFactor),
    ...extra,
    ...(sigmas[0]?.length === x.length && sigmas[1]?.length === x.length
      ? { sigmaX: scaled(sigmas[0], vectorFactor), sigmaY: scaled(sigmas[1], vectorFactor) } : {}),
    uName: calibration.dt === undefined ? 'dx' : 'u',
    vName: calibration.dt === undefined ? 'dy' : 'v',
    positionUnit: calibration.pxPerM === undefined ? 'px' : 'm',
    vectorUnit: calibration.pxPerM === undefined ? (calibration.dt === undefined ? 'px' : 'px/s') : calibration.dt === undefined ? 'm' : 'm/s',
    calibration,
    names: result.names,
    description: [],
  };
  field.description = describe(field);
  return field;
}

function checkCalibration(c: Calibration): Calibration {
  if (c.pxPerM !== undefined && !(c.pxPerM > 0 && Number.isFinite(c.pxPerM))) throw exportError(`--scale (pixels per metre) must be > 0, got ${c.pxPerM}`);
  if (c.dt !== undefined && !(c.dt > 0 && Number.isFinite(c.dt))) throw exportError(`--dt (seconds) must be > 0, got ${c.dt}`);
  return c;
}

/** A copy multiplied by `factor`, rounded to float32 (the precision of the results). */
function scaled(data: Float32Array, factor: number): Float32Array {
  if (factor === 1) return data;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] * factor;
  return out;
}

function describe(f: ExportField): string[] {
  const { pxPerM, dt } = f.calibration;
  const [ny, nx] = f.shape;
  const lines = [
    `fluidimage export of ${basename(f.source)} (images ${f.names.join(' + ')}, ${f.shapeImages[0]} x ${f.shapeImages[1]} pixels)`,
    f.kind === 'final'
      ? `final field of pass ${f.passIndex} (/piv${f.passIndex}; passes numbered 0 to ${f.nbPasses - 1}), interpolated on a regular ${ny} x ${nx} grid (rows x columns, x fastest)`
      : `vectors of pass ${f.passIndex} (/piv${f.passIndex}; passes numbered 0 to ${f.nbPasses - 1}), ${ny} x ${nx} grid (rows x columns, x fastest)`,
    `x, y: ${f.kind === 'final' ? 'grid points' : 'window centres'}, column and row of the first image (y downwards), origin at the centre of the top-left pixel, in ${f.positionUnit}` +
      (pxPerM === undefined ? '' : ` (= pixels / ${pxPerM} px/m)`),
    `${f.uName}, ${f.vName}: ${dt === undefined ? 'displacement from the first image to the second' : 'velocity (displacement / dt)'}, in ${f.vectorUnit}` +
      (pxPerM === undefined && dt === undefined ? '' : ` (calibration: ${pxPerM === undefined ? '' : `${pxPerM} px/m`}${pxPerM !== undefined && dt !== undefined ? ', ' : ''}${dt === undefined ? '' : `dt = ${dt} s`})`),
  ];
  if (f.kind === 'pass') {
    lines.push(`valid: 1 for a measured vector, 0 for a rejected one (${f.uName}, ${f.vName} NaN); correl: normalised correlation peak`);
  }
  if (f.sigmaX !== undefined) {
    lines.push(`uncertainty_x, uncertainty_y: uncertainty of ${f.uName}, ${f.vName} (1 sigma, correlation statistics), in ${f.vectorUnit}; NaN where unknown`);
  }
  return lines;
}
