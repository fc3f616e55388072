/** `fluidimage info FILE.h5`: what a result file holds. */
import { readPivSummary, type Stats } from '../io/pivfile.js';
import { describeResultFile, formatFileSummary } from '../io/kinds.js';

const fmt = (s: Stats) => (s.count === 0 ? 'no valid vector' :
  `mean ${s.mean!.toFixed(3)}, min ${s.min!.toFixed(3)}, max ${s.max!.toFixed(3)}`);

export async function runInfo(path: string, json: boolean): Promise<number> {
  const unreadable = (e: unknown) => {
    throw Object.assign(new Error(`Cannot read result file ${path}: ${(e as Error).message.replace(/^cannot open HDF5 file \S+ for reading: /, '')}`),
      { code: 'ERR_RESULT_READ' });
  };
  const s = await readPivSummary(path).catch((e: unknown) => {
    if ((e as { code?: unknown }).code === 'ERR_NOT_PIV') return undefined;
    return unreadable(e);
  });
  if (!s) {
    // Mean fields, surface tracking, mean images: their attributes and datasets.
    const d = await describeResultFile(path).catch(unreadable);
    process.stdout.write(json ? JSON.stringify(d, null, 2) + '\n' : formatFileSummary(d).join('\n') + '\n');
    return 0;
  }
  if (json) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return 0;
  }
  const lines = [
    `${path}`,
    s.ensemble
      ? `  ensemble correlation of ${s.ensemble.nb_pairs} pairs (${s.ensemble.first.join(' + ')} ... ${s.ensemble.last.join(' + ')}` +
        `${s.ensemble.nb_failed > 0 ? `; ${s.ensemble.nb_failed} left out` : ''}), ${s.shape_images[0]} x ${s.shape_images[1]} pixels (rows x columns)`
      : `  images: ${s.names.join(' + ')} (${s.shape_images[0]} x ${s.shape_images[1]} pixels, rows x columns)`,
    `  passes: ${s.nb_passes}`,
  ];
  for (const p of s.passes) {
    const pct = p.nb_vectors ? ((100 * p.nb_rejected) / p.nb_vectors).toFixed(1) : '0';
    lines.push(`  piv${p.index}: grid ${p.shape_grid[0]} x ${p.shape_grid[1]}, ${p.nb_vectors} vectors, ` +
      `${p.nb_rejected} rejected (${pct}%)${p.has_final ? ', final field' : ''}`);
    lines.push(`    dx: ${fmt(p.deltaxs)}`);
    lines.push(`    dy: ${fmt(p.deltays)}`);
    if (p.uncertainty) {
      const u = p.uncertainty;
      const f = (v: number | null) => (v === null ? 'none' : v.toFixed(4));
      lines.push(`    uncertainty (px, 1 sigma): median x ${f(u.median_x)}, y ${f(u.median_y)}; final grid: median x ${f(u.median_x_final)}, y ${f(u.median_y_final)}`);
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
