/**
 * The integer expressions of the serie index i in series.str_subset (`+ - * // %`,
 * parentheses), compiled by recursive descent into functions of i (no eval), with Python's
 * floor division and modulo.
 */
import { SeriesError } from './types.js';

/** An integer expression of the serie index i. */
export type Expr = (i: number) => number;

/** Tokens of an index expression. */
function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const re = /\s*(\d+|\/\/|[-+*%()i])/y;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new Error(`unexpected "${text.slice(pos).trim()[0]}" in "${text.trim()}"`);
    tokens.push(m[1]!);
    pos = re.lastIndex;
  }
  return tokens;
}

/** Python floor division and modulo, so `//` and `%` match Fluidimage's evaluation. */
function floorDiv(a: number, b: number): number {
  if (b === 0) throw new SeriesError('division by zero in series.str_subset');
  return Math.floor(a / b);
}
function pyMod(a: number, b: number): number {
  if (b === 0) throw new SeriesError('modulo by zero in series.str_subset');
  return a - b * Math.floor(a / b);
}

/** Compile an integer expression of `i` (recursive descent, no eval). */
export function compileIndexExpression(text: string): Expr {
  const tokens = tokenize(text);
  let k = 0;
  const peek = (): string | undefined => tokens[k];
  const expect = (t: string): void => {
    if (tokens[k] !== t) throw new Error(`expected "${t}" in "${text.trim()}"`);
    k++;
  };
  const factor = (): Expr => {
    const t = tokens[k++];
    if (t === undefined) throw new Error(`incomplete expression "${text.trim()}"`);
    if (t === 'i') return (i) => i;
    if (/^\d+$/.test(t)) {
      const v = Number.parseInt(t, 10);
      return () => v;
    }
    if (t === '-' || t === '+') {
      const f = factor();
      return t === '-' ? (i) => -f(i) : f;
    }
    if (t === '(') {
      const e = sum();
      expect(')');
      return e;
    }
    throw new Error(`unexpected "${t}" in "${text.trim()}"`);
  };
  const product = (): Expr => {
    let left = factor();
    for (let op = peek(); op === '*' || op === '//' || op === '%'; op = peek()) {
      k++;
      const l = left;
      const r = factor();
      left = op === '*' ? (i) => l(i) * r(i) : op === '//' ? (i) => floorDiv(l(i), r(i)) : (i) => pyMod(l(i), r(i));
    }
    return left;
  };
  const sum = (): Expr => {
    let left = product();
    for (let op = peek(); op === '+' || op === '-'; op = peek()) {
      k++;
      const l = left;
      const r = product();
      left = op === '+' ? (i) => l(i) + r(i) : (i) => l(i) - r(i);
    }
    return left;
  };
  if (tokens.length === 0) throw new Error('empty expression');
  const expr = sum();
  if (k < tokens.length) throw new Error(`unexpected "${tokens[k]}" in "${text.trim()}"`);
  return expr;
}
