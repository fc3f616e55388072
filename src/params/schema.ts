/**
 * Typed parameter trees: one declaration per parameter gives its default, its doc line
 * and its validation. Defaults, printed params files, loading and `--set` all derive
 * from the same declaration.
 */
import type { ParamTree, ParamValue } from './tree.js';

/** Error on a user-supplied parameter; the message names the dotted key. */
export class ParamError extends Error {
  readonly code = 'ERR_PARAM';
  constructor(readonly key: string, message: string) {
    super(message);
  }
}

export interface Leaf<T extends ParamValue = ParamValue> {
  kind: 'leaf';
  default: T;
  doc: string;
  /** Returns the validated value or throws a ParamError naming `key`. */
  check: (value: unknown, key: string) => T;
  /** The value names a JavaScript module that will be loaded, i.e. code that will run (see modules.ts). */
  module?: true;
}

/** A group of parameters; `C` keeps each child's type, so that `Defaults` types the tree. */
export interface Group<C extends Record<string, Node> = Record<string, Node>> {
  kind: 'group';
  doc: string;
  children: C;
}

export type Node = Leaf | Group;

export const group = <C extends Record<string, Node>>(doc: string, children: C): Group<C> => ({ kind: 'group', doc, children });

/** The value of a node: a leaf's type, or a group's tree. */
type NodeValue<N> = N extends Leaf<infer T> ? T : N extends Group<infer C> ? { [K in keyof C]: NodeValue<C[K]> } : never;

/**
 * The parameter tree of a schema, typed from its declaration: `Defaults<typeof pivSchema>`
 * is what `defaults(pivSchema)` returns (a key that is not declared is a compile error).
 */
export type Defaults<G extends Group> = NodeValue<G>;

/**
 * A resolved tree seen with its schema's types: resolveParams built it from that schema
 * (defaults, then checked values), so the shape holds and later code needs no casts.
 */
export function typedTree<G extends Group>(_schema: G, tree: ParamTree): Defaults<G> {
  return tree as unknown as Defaults<G>;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** The one wording for invalid values. */
export function invalid(key: string, what: string, value: unknown): ParamError {
  return new ParamError(key, `Expected ${what} for ${key} but received ${show(value)}`);
}

interface NumOpts {
  min?: number;
  max?: number;
  /** Exclusive lower bound. */
  above?: number;
  integer?: boolean;
  nullable?: boolean;
}

function describeNum(o: NumOpts): string {
  const kind = o.integer ? 'an integer' : 'a number';
  if (o.min !== undefined && o.max !== undefined && o.above === undefined) {
    return `${kind} between ${o.min} and ${o.max}${o.nullable ? ' (or null)' : ''}`;
  }
  const parts = [kind];
  if (o.min !== undefined) parts.push(`>= ${o.min}`);
  if (o.above !== undefined) parts.push(`> ${o.above}`);
  if (o.max !== undefined) parts.push(`<= ${o.max}`);
  return parts.join(' ') + (o.nullable ? ' (or null)' : '');
}

function checkNum(v: unknown, key: string, o: NumOpts): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (o.integer && !Number.isInteger(v)) ||
    (o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max) ||
    (o.above !== undefined && v <= o.above)) {
    throw invalid(key, describeNum(o), v);
  }
  return v;
}

export function num(def: number, doc: string, o: NumOpts = {}): Leaf<number> {
  return { kind: 'leaf', default: def, doc, check: (v, k) => checkNum(v, k, o) };
}

export function numOrNull(def: number | null, doc: string, o: NumOpts = {}): Leaf<number | null> {
  return {
    kind: 'leaf', default: def, doc,
    check: (v, k) => (v === null ? null : checkNum(v, k, { ...o, nullable: true })),
  };
}

export function str(def: string, doc: string): Leaf<string>;
export function str<T extends string>(def: T, doc: string, choices: readonly T[]): Leaf<T>;
export function str<T extends string>(def: T, doc: string, choices?: readonly T[]): Leaf<T> {
  return {
    kind: 'leaf', default: def, doc,
    check: (v, k) => {
      if (typeof v !== 'string') throw invalid(k, choices ? `one of ${choices.map(show).join(', ')}` : 'a string', v);
      if (choices && !choices.includes(v as T)) throw invalid(k, `one of ${choices.map(show).join(', ')}`, v);
      return v as T;
    },
  };
}

export function strOrNull(def: string | null, doc: string): Leaf<string | null> {
  return {
    kind: 'leaf', default: def, doc,
    check: (v, k) => {
      if (v === null || typeof v === 'string') return v;
      throw invalid(k, 'a string (or null)', v);
    },
  };
}

/**
 * A JavaScript module to load (path, or path#export; null: none). Its path is made
 * absolute where it is given: against the params file's folder, or the current directory
 * for --set.
 */
export function modulePath(doc: string): Leaf<string | null> {
  return { ...strOrNull(null, doc), module: true };
}

export function bool(def: boolean, doc: string): Leaf<boolean> {
  return {
    kind: 'leaf', default: def, doc,
    check: (v, k) => {
      if (typeof v !== 'boolean') throw invalid(k, 'true or false', v);
      return v;
    },
  };
}

/** A leaf with a custom check (for unions such as number | "NN%" | null). */
export function custom<T extends ParamValue>(def: T, doc: string, check: (v: unknown, key: string) => T): Leaf<T> {
  return { kind: 'leaf', default: def, doc, check };
}

/** The default values of a tree, as a plain object. */
export function defaults(node: Group): ParamTree {
  const out: ParamTree = {};
  for (const [name, child] of Object.entries(node.children)) {
    out[name] = child.kind === 'leaf' ? structuredClone(child.default) : defaults(child);
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Merges `partial` (e.g. a loaded params file) into `base`, validating every value.
 * Unknown keys are errors that name the key and list the known ones.
 */
export function merge(schema: Group, base: ParamTree, partial: unknown, prefix = ''): ParamTree {
  if (!isPlainObject(partial)) throw invalid(prefix || 'the parameters', 'a mapping of parameters', partial);
  const out: ParamTree = { ...base };
  for (const [name, value] of Object.entries(partial)) {
    const key = prefix ? `${prefix}.${name}` : name;
    const child = schema.children[name];
    if (!child) {
      throw new ParamError(key, `Unknown parameter ${key}; known ${prefix ? `under ${prefix}` : 'at the top level'}: ` +
        Object.keys(schema.children).join(', '));
    }
    if (child.kind === 'leaf') out[name] = child.check(value, key);
    else out[name] = merge(child, base[name] as ParamTree, value, key);
  }
  return out;
}

/** Finds the leaf for a dotted key, or throws a ParamError naming it. */
export function leafAt(schema: Group, key: string): Leaf {
  let node: Node = schema;
  const parts = key.split('.');
  for (let i = 0; i < parts.length; i++) {
    if (node.kind !== 'group') break;
    const next: Node | undefined = node.children[parts[i]];
    if (!next) {
      const at = parts.slice(0, i).join('.');
      throw new ParamError(key, `Unknown parameter ${key}; known ${at ? `under ${at}` : 'at the top level'}: ` +
        Object.keys(node.children).join(', '));
    }
    node = next;
  }
  if (node.kind !== 'leaf') {
    throw new ParamError(key, `${key} is a group of parameters (${Object.keys(node.children).join(', ')}), not a value`);
  }
  return node;
}

/** Sets one dotted key in a tree (a copy is returned), validating the value. */
export function setAt(schema: Group, tree: ParamTree, key: string, value: unknown): ParamTree {
  const leaf = leafAt(schema, key);
  const checked = leaf.check(value, key);
  const out = structuredClone(tree);
  const parts = key.split('.');
  let t = out;
  for (const p of parts.slice(0, -1)) t = t[p] as ParamTree;
  t[parts[parts.length - 1]] = checked;
  return out;
}

/** Iterates over the leaves with their dotted keys (for docs and printing). */
export function* leaves(node: Group, prefix = ''): Generator<[string, Leaf]> {
  for (const [name, child] of Object.entries(node.children)) {
    const key = prefix ? `${prefix}.${name}` : name;
    if (child.kind === 'leaf') yield [key, child];
    else yield* leaves(child, key);
  }
}

/** A copy of a group with some leaves replaced (dotted keys relative to the group; same value types). */
export function withLeaves<G extends Group>(g: G, replace: Record<string, Node>, prefix = ''): G {
  const children: Record<string, Node> = {};
  for (const [name, child] of Object.entries(g.children)) {
    const key = prefix ? `${prefix}.${name}` : name;
    children[name] = replace[key] ?? (child.kind === 'group' ? withLeaves(child, replace, key) : child);
  }
  return group(g.doc, children) as Group as G;
}
