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

/** Median of the finite values of `data` (null when there is none). */
export function median(data: ArrayLike<number>): number | null {
  const finite: number[] = [];
  for (let i = 0; i < data.length; i++) if (Number.isFinite(data[i])) finite.push(data[i]);
  if (finite.length === 0) return null;
  finite.sort((a, b) => a - b);
  const m = finite.length >> 1;
  return finite.length % 2 === 1 ? finite[m] : (finite[m - 1] + finite[m]) / 2;
}
