/** `fluidimage synth CASE -o DIR`: synthetic image pairs with a known displacement. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeImage } from '../io/images.js';
import { makeField, type FieldSpec } from '../works/synth/fields.js';
import { renderPair } from '../works/synth/particles.js';
import { SYNTH_CASES } from '../works/synth/cases.js';

export interface SynthOptions {
  caseName: string;
  output: string;
  size: number[];
  pairs: number;
  density: number;
  diameter: number;
  bitDepth?: 8 | 16;
  noise?: number;
  seed: number;
  format: 'png' | 'tif' | 'bmp';
  dx?: number;
  dy?: number;
}

/**
 * Writes `im<k>a.<ext>`/`im<k>b.<ext>` (k = 0001...) and `truth.json` describing the
 * field, so that `fluidimage piv DIR` finds a double-frame series.
 */
export async function runSynth(o: SynthOptions): Promise<number> {
  const c = SYNTH_CASES[o.caseName];
  const field: FieldSpec = { ...c.field };
  if (o.dx !== undefined) field.dx = o.dx;
  if (o.dy !== undefined) field.dy = o.dy;
  const shape: [number, number] = o.size.length === 1 ? [o.size[0], o.size[0]] : [o.size[0], o.size[1]];
  const bitDepth = o.bitDepth ?? c.bitDepth;
  if (o.format === 'bmp' && bitDepth !== 8) throw Object.assign(new Error('BMP output is 8-bit only: use --bit-depth 8'), { code: 'ERR_INVALID_ARG_VALUE' });
  const dir = resolve(o.output);
  await mkdir(dir, { recursive: true });
  const f = makeField(field, shape);
  for (let k = 1; k <= o.pairs; k++) {
    const pair = renderPair(f, {
      shape, density: o.density, diameter: o.diameter, bitDepth, noise: o.noise ?? c.noise, seed: o.seed + k,
    });
    const stem = `im${String(k).padStart(4, '0')}`;
    await writeImage(join(dir, `${stem}a.${o.format}`), pair.width, pair.height, pair.im0);
    await writeImage(join(dir, `${stem}b.${o.format}`), pair.width, pair.height, pair.im1);
  }
  const truth = { case: o.caseName, doc: c.doc, field, shape, density: o.density, diameter: o.diameter, bitDepth, pairs: o.pairs };
  await writeFile(join(dir, 'truth.json'), JSON.stringify(truth, null, 2) + '\n');
  process.stderr.write(`synth: ${o.pairs} pair(s) of ${shape[0]}x${shape[1]} ${bitDepth}-bit images (${c.doc}) in ${dir}\n`);
  process.stdout.write(`${dir}\n`);
  return 0;
}
