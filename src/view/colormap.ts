/**
 * Colour maps as 256-entry lookup tables of packed 0xRRGGBB, built once from a few
 * control points (linear interpolation in sRGB, close enough for display):
 * - viridis (sequential, perceptually ordered): magnitude backgrounds;
 * - coolwarm (diverging, white-ish centre): vorticity and divergence (symmetric range);
 * - bright (the upper part of plasma): arrow colours, light on dark images.
 */
import { rgb } from './canvas.js';

export type ColormapName = 'viridis' | 'coolwarm' | 'plasma' | 'bright' | 'grey';

const STOPS: Record<ColormapName, readonly (readonly [number, number, number])[]> = {
  viridis: [[68, 1, 84], [72, 40, 120], [62, 73, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]],
  coolwarm: [[59, 76, 192], [98, 130, 234], [141, 176, 254], [184, 208, 249], [221, 221, 221], [245, 196, 173], [244, 154, 123], [222, 96, 77], [180, 4, 38]],
  plasma: [[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104], [244, 136, 73], [254, 188, 43], [240, 249, 33]],
  // The upper part of plasma: no dark blue, so arrows read on dark PIV images.
  bright: [[156, 23, 158], [185, 50, 137], [219, 92, 104], [244, 136, 73], [254, 188, 43], [240, 249, 33]],
  grey: [[0, 0, 0], [255, 255, 255]],
};

const cache = new Map<ColormapName, Int32Array>();

/** The 256-colour table of a map. */
export function colormap(name: ColormapName): Int32Array {
  let lut = cache.get(name);
  if (lut === undefined) {
    const stops = STOPS[name];
    lut = new Int32Array(256);
    for (let i = 0; i < 256; i++) {
      const t = (i / 255) * (stops.length - 1);
      const k = Math.min(stops.length - 2, Math.floor(t));
      const f = t - k;
      const a = stops[k];
      const b = stops[k + 1];
      lut[i] = rgb(Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f));
    }
    cache.set(name, lut);
  }
  return lut;
}
