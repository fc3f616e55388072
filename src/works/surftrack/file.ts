/**
 * One HDF5 file per frame, `surf_<index>.h5`, written atomically:
 *
 * - root attributes: `class_name="SurfaceTrackingResult"`, `module_name`, `program`,
 *   `program_version`, `name` and `path` of the image, `k_x`, `k_y` (carrier, periods over
 *   the crop), `wave_proj` (m), `anchor` ([row, column] in the image), `anchor_phase` (median
 *   phase difference to the reference there, in (-pi, pi]), `nb_refs`, `valid_fraction`;
 * - datasets: `height` [ny, nx] float32 (m, NaN without fringes), `phase` [ny, nx] float32
 *   (rad, unwrapped, relative to the reference), `x` [nx] and `y` [ny] (m: image column and
 *   row times pix_size, origin at the centre of the top-left pixel, y downwards), `ix`, `iy`
 *   (the same in pixels);
 * - `/params`: the full resolved parameters.
 */
import { writeAtomic } from '../../io/atomic.js';
import {
  getDataset, readFloat32, readNumberAttr, readStringAttr, withH5File, writeFloat32,
  writeParamAttr, writeParamTree, writeStringAttr, type H5Group,
} from '../../io/h5.js';
import type { ParamTree } from '../../params/tree.js';
import type { SurfResult, SurfSetup } from './work.js';

export const SURF_CLASS_NAME = 'SurfaceTrackingResult';
const MODULE_NAME = 'fluidimage.works.surface_tracking';

export interface SurfFileMeta {
  program: string;
  version: string;
  /** The image (name and path). */
  name: string;
  path: string;
  params: ParamTree;
}

/** A 2D float32 dataset [ny, nx]. */
function writeField(parent: H5Group, name: string, data: Float32Array, ny: number, nx: number): void {
  parent.create_dataset({ name, data, shape: [ny, nx], dtype: '<f' });
}

export async function writeSurfFile(path: string, r: SurfResult, setup: SurfSetup, meta: SurfFileMeta): Promise<void> {
  await writeAtomic(path, (tmp) => withH5File(tmp, 'w', (file) => {
    writeStringAttr(file, 'class_name', SURF_CLASS_NAME);
    writeStringAttr(file, 'module_name', MODULE_NAME);
    writeStringAttr(file, 'program', meta.program);
    writeStringAttr(file, 'program_version', meta.version);
    writeStringAttr(file, 'name', meta.name);
    writeStringAttr(file, 'path', meta.path);
    writeParamAttr(file, 'k_x', setup.carrier.kx);
    writeParamAttr(file, 'k_y', setup.carrier.ky);
    writeParamAttr(file, 'wave_proj', setup.geometry.waveProj);
    writeParamAttr(file, 'anchor', r.anchor);
    writeParamAttr(file, 'anchor_phase', r.anchorPhase);
    writeParamAttr(file, 'nb_refs', setup.nbRefs);
    writeParamAttr(file, 'valid_fraction', r.validFraction);
    writeStringAttr(file, 'height_units', 'm');
    writeField(file, 'height', r.height, r.ny, r.nx);
    writeField(file, 'phase', r.phase, r.ny, r.nx);
    writeFloat32(file, 'x', r.ix.map((v) => v * setup.pixSize));
    writeFloat32(file, 'y', r.iy.map((v) => v * setup.pixSize));
    writeFloat32(file, 'ix', r.ix);
    writeFloat32(file, 'iy', r.iy);
    writeParamTree(file, 'params', meta.params);
  }));
}

/** What a surf file holds (for tests and tools). */
export interface SurfFile {
  name: string;
  ny: number;
  nx: number;
  height: Float32Array;
  phase: Float32Array;
  x: Float32Array;
  y: Float32Array;
  ix: Float32Array;
  iy: Float32Array;
  anchorPhase: number;
  waveProj: number;
  kx: number;
  ky: number;
}

export function readSurfFile(path: string): Promise<SurfFile> {
  return withH5File(path, 'r', (file) => {
    if (readStringAttr(file, 'class_name') !== SURF_CLASS_NAME) throw new Error(`${path}: not a surface tracking result`);
    const shape = getDataset(file, 'height')?.shape ?? [];
    const need = (name: string): Float32Array => {
      const v = readFloat32(file, name);
      if (v === undefined) throw new Error(`${path}: no dataset ${name}`);
      return v;
    };
    return {
      name: readStringAttr(file, 'name') ?? '',
      ny: Number(shape[0]),
      nx: Number(shape[1]),
      height: need('height'),
      phase: need('phase'),
      x: need('x'),
      y: need('y'),
      ix: need('ix'),
      iy: need('iy'),
      anchorPhase: readNumberAttr(file, 'anchor_phase') ?? Number.NaN,
      waveProj: readNumberAttr(file, 'wave_proj') ?? Number.NaN,
      kx: readNumberAttr(file, 'k_x') ?? Number.NaN,
      ky: readNumberAttr(file, 'k_y') ?? Number.NaN,
    };
  });
}
