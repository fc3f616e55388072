/** One result file to one exported file, in any of the formats. */
import { writeFile } from 'node:fs/promises';
import { writeAtomic } from '../io/atomic.js';
import { readPivFile } from '../io/pivfile.js';
import { writeMat } from './mat.js';
import { writeNetcdf } from './netcdf.js';
import { exportField, type FieldChoice } from './table.js';
import { formatDelimited } from './text.js';
import { formatVtk } from './vtk.js';

export const EXPORT_FORMATS = ['csv', 'tsv', 'vtk', 'mat', 'netcdf'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const EXTENSIONS: Record<ExportFormat, string> = { csv: '.csv', tsv: '.tsv', vtk: '.vtk', mat: '.mat', netcdf: '.nc' };

/** Exports `resultPath` to `outPath` (written atomically). */
export async function exportFile(resultPath: string, outPath: string, format: ExportFormat, choice: FieldChoice = {}): Promise<void> {
  const result = await readPivFile(resultPath);
  if (format === 'netcdf') {
    // UVmat keeps pixels and applies its own calibration: only dt is stored.
    if (choice.final) throw Object.assign(new Error('--final is not available for netcdf (UVmat civdata holds the vectors of a pass)'), { code: 'ERR_USAGE' });
    await writeNetcdf(outPath, exportField(result, resultPath, { pass: choice.pass }), choice.calibration?.dt);
    return;
  }
  const field = exportField(result, resultPath, choice);
  if (format === 'mat') {
    await writeMat(outPath, field);
    return;
  }
  const text = format === 'vtk' ? formatVtk(field) : formatDelimited(field, format === 'csv' ? ',' : '\t');
  await writeAtomic(outPath, (tmp) => writeFile(tmp, text));
}
