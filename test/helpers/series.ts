/** Series of synthetic PNG pairs for executor tests: pair k is shifted uniformly by shifts[k]. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeImage } from '../../io/images.js';
import { makeField } from '../../works/synth/fields.js';
import { renderPair } from '../../works/synth/particles.js';

/** Writes im{k}a.png / im{k}b.png in `dir` (created), n x n pixels, 8-bit. */
export async function writeShiftedSeries(dir: string, n: number, shifts: readonly [number, number][]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [k, [dx, dy]] of shifts.entries()) {
    const p = renderPair(makeField({ kind: 'uniform', dx, dy }, [n, n]),
      { shape: [n, n], density: 0.04, diameter: 2.5, bitDepth: 8, noise: 0, seed: 10 + k });
    await writeImage(join(dir, `im${k}a.png`), n, n, p.im0);
    await writeImage(join(dir, `im${k}b.png`), n, n, p.im1);
  }
}

/** Mean of the non-NaN values. */
export function nanMean(v: ArrayLike<number>): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < v.length; i++) if (!Number.isNaN(v[i])) [s, c] = [s + v[i], c + 1];
  return s / c;
}
