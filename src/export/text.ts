/**
 * CSV and TSV: '#' comment lines that say what the columns are and their units, then a
 * header line, then one line per vector (x fastest). Numbers are the shortest decimal
 * text that reads back to the same float32; rejected vectors hold NaN.
 * (pandas: read_csv(path, comment='#'); numpy: genfromtxt(path, delimiter=',', names=True).)
 */
import type { ExportField } from './table.js';

/** Shortest decimal text of a float32 value ('NaN', 'Infinity' for the special values). */
export function formatFloat32(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const f = Math.fround(value);
  for (let digits = 1; digits < 9; digits++) {
    const text = f.toPrecision(digits);
    if (Math.fround(Number(text)) === f) return String(Number(text));
  }
  return String(Number(f.toPrecision(9)));
}

export function formatDelimited(field: ExportField, separator: ',' | '\t'): string {
  const columns: [string, ArrayLike<number>, boolean][] = [
    ['x', field.x, false],
    ['y', field.y, false],
    [field.uName, field.u, false],
    [field.vName, field.v, false],
  ];
  if (field.valid !== undefined) columns.push(['valid', field.valid, true]);
  if (field.correl !== undefined) columns.push(['correl', field.correl, false]);
  if (field.sigmaX !== undefined && field.sigmaY !== undefined) columns.push(['uncertainty_x', field.sigmaX, false], ['uncertainty_y', field.sigmaY, false]);
  const lines = field.description.map((line) => `# ${line}`);
  lines.push(columns.map(([name]) => name).join(separator));
  const n = field.x.length;
  const cells = new Array<string>(columns.length);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < columns.length; c++) {
      const [, data, integer] = columns[c];
      cells[c] = integer ? String(data[i]) : formatFloat32(data[i]);
    }
    lines.push(cells.join(separator));
  }
  return `${lines.join('\n')}\n`;
}
