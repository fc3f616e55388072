/** Reading params files (YAML or JSON), `--set KEY=VALUE` overrides, printing as a file. */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { ParamTree } from './tree.js';
import { moduleKeys, resolveModules, valueAt } from './modules.js';
import { defaults, leafAt, merge, ParamError, setAt, type Group, type Node } from './schema.js';

/**
 * Loads a params file; errors name the file and, for bad values, the key. Module paths
 * in it are relative to its folder (as a script's imports).
 */
export async function loadParamsFile(schema: Group, path: string, base?: ParamTree): Promise<ParamTree> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ParamError('-c', `Cannot read params file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let data: unknown;
  try {
    data = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ParamError('-c', `Cannot parse params file ${path}: ${(e as Error).message}`);
  }
  if (data === null || data === undefined) return base ?? defaults(schema);
  let tree: ParamTree;
  try {
    tree = merge(schema, base ?? defaults(schema), data);
  } catch (e) {
    if (e instanceof ParamError) throw new ParamError(e.key, `${e.message} (in ${path})`);
    throw e;
  }
  const file = resolve(path);
  const given = moduleKeys(schema).filter((key) => valueAt(data, key) !== undefined);
  return resolveModules(schema, tree, given, dirname(file), `from params file ${file}`);
}

/**
 * Applies `KEY=VALUE` overrides; values are parsed as YAML scalars ("32", "true", "null",
 * "[64, 32]"). Module paths are relative to the current directory.
 */
export function applySets(schema: Group, tree: ParamTree, sets: readonly string[]): ParamTree {
  let out = tree;
  const keys: string[] = [];
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ParamError(s, `Expected KEY=VALUE for --set but received ${JSON.stringify(s)}`);
    const key = s.slice(0, eq).trim();
    const raw = s.slice(eq + 1);
    leafAt(schema, key); // unknown keys fail before the value is parsed
    keys.push(key);
    let value: unknown;
    try {
      value = parseYaml(raw);
    } catch {
      value = raw;
    }
    if (value === undefined) value = null;
    try {
      out = setAt(schema, out, key, value);
    } catch (e) {
      // Text that YAML reads as something else ("10:200, :" is a mapping) is kept as
      // the plain string when the parameter takes strings.
      if (typeof value === 'string') throw e;
      try {
        out = setAt(schema, out, key, raw);
      } catch {
        throw e;
      }
    }
  }
  return resolveModules(schema, out, keys, process.cwd(), 'from --set');
}

function commentedYaml(node: Group, tree: ParamTree, indent: string): string {
  let out = '';
  for (const [name, child] of Object.entries(node.children) as [string, Node][]) {
    out += `${indent}# ${child.doc}\n`;
    if (child.kind === 'group') {
      out += `${indent}${name}:\n${commentedYaml(child, tree[name] as ParamTree, indent + '  ')}`;
    } else {
      const value = toYaml({ [name]: tree[name] }, { flow: false }).trimEnd();
      out += value.split('\n').map((l) => indent + l).join('\n') + '\n';
    }
  }
  return out;
}

/** A valid params file: YAML with one comment per parameter, or JSON. */
export function formatParams(schema: Group, tree: ParamTree, format: 'yaml' | 'json'): string {
  if (format === 'json') return JSON.stringify(tree, null, 2) + '\n';
  return `# ${schema.doc} (fluidimage). Load with -c FILE; override with --set key=value.\n` +
    commentedYaml(schema, tree, '');
}
