/**
 * Masks of the PIV work: non-zero where there is flow, zero where pixels are ignored. A
 * pair's mask is the intersection of the static mask (mask.image), the pair's own masks
 * (mask.folder, mask.module) and the polygons of the parameters (mask.polygons).
 */
import { ParamError } from '../../params/schema.js';

/** A mask: non-zero where there is flow, zero where pixels must be ignored. */
export interface ImageMask {
  data: Uint8Array;
  height: number;
  width: number;
  /** Where it came from, for messages. */
  source: string;
  /** The parameter it comes from, for messages (default mask.image). */
  key?: string;
}

/**
 * Rasterises polygons (vertices [x, y] in pixels) on a height x width grid: 0 for the
 * pixels whose centre is inside one of them (even-odd rule per polygon), 1 elsewhere.
 */
export function polygonMask(polygons: number[][][], height: number, width: number): ImageMask {
  const data = new Uint8Array(height * width).fill(1);
  const crossings: number[] = [];
  for (const poly of polygons) {
    for (let y = 0; y < height; y++) {
      crossings.length = 0;
      for (let k = 0; k < poly.length; k++) {
        const [xa, ya] = poly[k];
        const [xb, yb] = poly[(k + 1) % poly.length];
        // Half-open on y: a vertex on the line is counted once.
        if ((ya <= y && yb > y) || (yb <= y && ya > y)) crossings.push(xa + ((y - ya) / (yb - ya)) * (xb - xa));
      }
      crossings.sort((a, b) => a - b);
      for (let c = 0; c + 1 < crossings.length; c += 2) {
        const x0 = Math.max(0, Math.ceil(crossings[c]));
        const x1 = Math.min(width - 1, Math.floor(crossings[c + 1]));
        for (let x = x0; x <= x1; x++) data[y * width + x] = 0;
      }
    }
  }
  return { data, height, width, source: 'mask.polygons', key: 'mask.polygons' };
}

/**
 * The intersection of `masks` for images of height x width (undefined when there is
 * none); a mask of another size is a ParamError naming its parameter and its source.
 */
export function combineMasks(masks: ImageMask[], height: number, width: number, images: string): ImageMask | undefined {
  for (const m of masks) {
    if (m.height !== height || m.width !== width) {
      const key = m.key ?? 'mask.image';
      throw new ParamError(key, `The mask ${m.source} is ${m.width}x${m.height} but the images ${images} are ${width}x${height} (${key})`);
    }
  }
  if (masks.length <= 1) return masks[0];
  const data = Uint8Array.from(masks[0].data);
  for (const m of masks.slice(1)) for (let i = 0; i < data.length; i++) if (m.data[i] === 0) data[i] = 0;
  return { data, height, width, source: masks.map((m) => m.source).join(' + ') };
}

/**
 * A mask from values (an image's pixels, a user module's array): 1 where the value is
 * non-zero (true), 0 where it is zero, false or NaN.
 */
export function maskFromValues(values: ArrayLike<unknown>, height: number, width: number, source: string, key: string): ImageMask {
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = values[i] ? 1 : 0;
  return { data, width, height, source, key };
}
