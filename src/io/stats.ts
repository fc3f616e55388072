/** Statistics of the finite values of an array (for `fluidimage info`). */

/** Count, mean, min and max of the finite values (null when there is none). */
export interface Stats {
  count: number;
  mean: number | null;
  min: number | null;
  max: number | null;
}

/** Statistics of the finite values of `data`. */
export function stats(data: ArrayLike<number>): Stats {
  let count = 0;
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) continue;
    count++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return count === 0 ? { count, mean: null, min: null, max: null } : { count, mean: sum / count, min, max };
}
