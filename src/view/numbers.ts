/** Number formatting and "nice" steps for axes, colour bars and scale arrows. */

/** A step among 1, 2, 5 x 10^k, the smallest not below `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw * (1 - 1e-9)) return m * p;
  return 10 * p;
}

/** A value among 1, 2, 5 x 10^k, the largest not above `raw` (for scale arrows). */
export function niceBelow(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [5, 2, 1]) if (m * p <= raw * (1 + 1e-9)) return m * p;
  return p;
}

/** Tick positions k * step inside [min, max]. */
export function ticks(min: number, max: number, step: number): number[] {
  const out: number[] = [];
  const first = Math.ceil(min / step - 1e-9);
  for (let k = first; k * step <= max + 1e-9 * step; k++) out.push(roundTo(k * step, step));
  return out;
}

/** Removes float noise (0.30000000000000004) by rounding to the decimals of `step`. */
function roundTo(value: number, step: number): number {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(value.toFixed(Math.min(12, decimals)));
}

/** Short text of a number: 3 significant digits, exponent form when very large or small. */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) {
    const [mantissa, exponent] = value.toExponential(2).split('e');
    return `${String(Number(mantissa))}e${exponent.replace('+', '')}`;
  }
  return String(Number(value.toPrecision(3)));
}
