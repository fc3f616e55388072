/**
 * Legacy ASCII VTK (ParaView, VisIt): STRUCTURED_POINTS when the grid is uniform (origin
 * and spacing), else STRUCTURED_GRID with explicit points (z = 0). Point data: the vector
 * field (3 components, z = 0), for a pass `valid` and `correl`, and `uncertainty_x`,
 * `uncertainty_y` when the result holds them (-1 where unknown). VTK's ASCII reader
 * does not accept NaN, so rejected vectors are written as 0 with valid = 0.
 * Coordinates are those of the result (y downwards): ParaView shows the field upside down
 * unless the camera looks from -z.
 */
import { formatFloat32 } from './text.js';
import type { ExportField } from './table.js';

/** Relative tolerance on the grid steps for STRUCTURED_POINTS. */
const UNIFORM_TOLERANCE = 1e-4;

/** Origin and spacing when the points form a uniform x-fastest grid, else undefined. */
export function uniformGrid(x: Float32Array, y: Float32Array, nx: number, ny: number): { origin: [number, number]; spacing: [number, number] } | undefined {
  if (nx * ny !== x.length || x.length === 0) return undefined;
  const sx = nx > 1 ? x[1] - x[0] : 1;
  const sy = ny > 1 ? y[nx] - y[0] : 1;
  if (!(sx > 0 && sy > 0)) return undefined;
  const tolX = UNIFORM_TOLERANCE * Math.max(sx, Math.abs(x[0]), 1);
  const tolY = UNIFORM_TOLERANCE * Math.max(sy, Math.abs(y[0]), 1);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const p = j * nx + i;
      if (Math.abs(x[p] - (x[0] + i * sx)) > tolX || Math.abs(y[p] - (y[0] + j * sy)) > tolY) return undefined;
    }
  }
  return { origin: [x[0], y[0]], spacing: [sx, sy] };
}

const finiteOr0 = (v: number): string => (Number.isFinite(v) ? formatFloat32(v) : '0');

export function formatVtk(field: ExportField): string {
  const [ny, nx] = field.shape;
  const n = field.x.length;
  // The title line is limited to 256 characters.
  const title = `${field.description[0]}; positions in ${field.positionUnit} (y downwards), ${field.uName} ${field.vName} in ${field.vectorUnit}`.slice(0, 255);
  const out: string[] = ['# vtk DataFile Version 3.0', title, 'ASCII'];
  const uniform = uniformGrid(field.x, field.y, nx, ny);
  if (uniform !== undefined) {
    out.push('DATASET STRUCTURED_POINTS', `DIMENSIONS ${nx} ${ny} 1`,
      `ORIGIN ${formatFloat32(uniform.origin[0])} ${formatFloat32(uniform.origin[1])} 0`,
      `SPACING ${formatFloat32(uniform.spacing[0])} ${formatFloat32(uniform.spacing[1])} 1`);
  } else {
    out.push('DATASET STRUCTURED_GRID', `DIMENSIONS ${nx} ${ny} 1`, `POINTS ${n} float`);
    for (let i = 0; i < n; i++) out.push(`${formatFloat32(field.x[i])} ${formatFloat32(field.y[i])} 0`);
  }
  out.push(`POINT_DATA ${n}`, `VECTORS ${field.vectorUnit.includes('/s') ? 'velocity' : 'displacement'} float`);
  for (let i = 0; i < n; i++) out.push(`${finiteOr0(field.u[i])} ${finiteOr0(field.v[i])} 0`);
  if (field.valid !== undefined) {
    out.push('SCALARS valid int 1', 'LOOKUP_TABLE default');
    for (let i = 0; i < n; i++) out.push(String(field.valid[i]));
  }
  if (field.correl !== undefined) {
    out.push('SCALARS correl float 1', 'LOOKUP_TABLE default');
    for (let i = 0; i < n; i++) out.push(finiteOr0(field.correl[i]));
  }
  // Uncertainty: -1 where unknown (VTK's ASCII reader takes no NaN).
  for (const [name, data] of [['uncertainty_x', field.sigmaX], ['uncertainty_y', field.sigmaY]] as const) {
    if (data === undefined) continue;
    out.push(`SCALARS ${name} float 1`, 'LOOKUP_TABLE default');
    for (let i = 0; i < n; i++) out.push(Number.isFinite(data[i]) ? formatFloat32(data[i]) : '-1');
  }
  return `${out.join('\n')}\n`;
}
