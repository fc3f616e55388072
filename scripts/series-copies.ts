/**
 * A series for the benchmarks: one pair written as PNG files, copied under `count` pair
 * names in `<dir>/series` (the work per pair is the same; the files are really read).
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeImage } from '../io/images.js';

/** Returns the series directory. */
export async function writeSeriesOfCopies(dir: string, width: number, height: number,
  im0: Uint8Array | Uint16Array, im1: Uint8Array | Uint16Array, count: number): Promise<string> {
  const a = join(dir, 'source_a.png');
  const b = join(dir, 'source_b.png');
  await writeImage(a, width, height, im0);
  await writeImage(b, width, height, im1);
  const series = join(dir, 'series');
  await mkdir(series, { recursive: true });
  for (let i = 1; i <= count; i++) {
    const base = join(series, `im${String(i).padStart(5, '0')}`);
    await copyFile(a, `${base}a.png`);
    await copyFile(b, `${base}b.png`);
  }
  return series;
}
