/**
 * Python literals of str tuples, as Fluidimage writes couple/names and couple/paths (it
 * reads them back with eval): repr() to write them, a parser (no eval) to read them.
 */

/** repr() of a Python str (quotes and escapes as Python 3 chooses them). */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\' || ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || (code >= 0x7f && code <= 0xa0)) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** repr() of a Python tuple of str. */
export function pyTupleRepr(items: readonly string[]): string {
  const inner = items.map(pyStrRepr).join(', ');
  return items.length === 1 ? `(${inner},)` : `(${inner})`;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\', "'": "'", '"': '"', n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '',
};

/**
 * Parse a Python tuple or list of string literals (`('a', "b")`, Python 2's `(u'a', u'b')`).
 * Undefined when `text` is not such a literal.
 */
export function parsePyStrings(text: string): string[] | undefined {
  const t = text.trim();
  const close = t.startsWith('(') ? ')' : t.startsWith('[') ? ']' : undefined;
  if (close === undefined || !t.endsWith(close)) return undefined;
  const items: string[] = [];
  let i = 1;
  const end = t.length - 1;
  while (i < end) {
    while (i < end && (t[i] === ' ' || t[i] === ',' || t[i] === '\n')) i++;
    if (i >= end) break;
    let raw = false;
    while (i < end && /[uUbBrR]/.test(t[i])) raw ||= t[i++].toLowerCase() === 'r';
    const quote = t[i];
    if (quote !== "'" && quote !== '"') return undefined;
    i++;
    let s = '';
    while (i < end && t[i] !== quote) {
      if (t[i] !== '\\' || raw) {
        s += t[i++];
        continue;
      }
      const next = t[i + 1] ?? '';
      const hexLength = next === 'x' ? 2 : next === 'u' ? 4 : next === 'U' ? 8 : 0;
      if (hexLength > 0 && /^[0-9a-fA-F]+$/.test(t.slice(i + 2, i + 2 + hexLength))) {
        s += String.fromCodePoint(parseInt(t.slice(i + 2, i + 2 + hexLength), 16));
        i += 2 + hexLength;
      } else if (/[0-7]/.test(next)) {
        const octal = /^[0-7]{1,3}/.exec(t.slice(i + 1))?.[0] ?? '0';
        s += String.fromCodePoint(parseInt(octal, 8));
        i += 1 + octal.length;
      } else if (next in SIMPLE_ESCAPES) {
        s += SIMPLE_ESCAPES[next];
        i += 2;
      } else {
        s += `\\${next}`;
        i += 2;
      }
    }
    if (t[i] !== quote) return undefined;
    i++;
    items.push(s);
  }
  return items;
}
