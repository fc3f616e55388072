/**
 * Parameters that name user JavaScript modules (preproc.im2im, im2im): loading one runs
 * its code, as running a Python script would. Their paths are made absolute where they
 * are given (against the params file's folder, or the current directory for --set), so
 * that the job's saved params.yaml reruns the same module from anywhere; where each came
 * from is remembered, for the line printed when it is loaded.
 */
import { isMainThread } from 'node:worker_threads';
import { resolve } from 'node:path';
import { envLaunch } from '../mpi/launcher.js';
import type { ParamTree } from './tree.js';
import { leaves, setAt, type Group } from './schema.js';

/** "path/to/module.js#name" -> the path and the export (undefined without `#`: the default export). */
export function splitModuleSpec(spec: string): { file: string; exportName?: string } {
  const hash = spec.lastIndexOf('#');
  return hash > 0 ? { file: spec.slice(0, hash), exportName: spec.slice(hash + 1) } : { file: spec };
}

/** The dotted keys of the module parameters of a schema. */
export function moduleKeys(schema: Group): string[] {
  return [...leaves(schema)].filter(([, leaf]) => leaf.module === true).map(([key]) => key);
}

/** Where each module value came from, by `key=spec`: "from --set", "from params file ...". */
const origins = new Map<string, string>();

/**
 * The module parameters among `keys` made absolute against `dir` (values of other
 * parameters, and nulls, are left alone); their origin is remembered.
 */
export function resolveModules(schema: Group, tree: ParamTree, keys: readonly string[], dir: string, origin: string): ParamTree {
  let out = tree;
  const modules = new Set(moduleKeys(schema));
  for (const key of keys) {
    const spec = valueAt(out, key);
    if (!modules.has(key) || typeof spec !== 'string' || spec === '') continue;
    const { file, exportName } = splitModuleSpec(spec);
    const absolute = resolve(dir, file) + (exportName === undefined ? '' : `#${exportName}`);
    out = setAt(schema, out, key, absolute);
    origins.set(`${key}=${absolute}`, origin);
  }
  return out;
}

/** The value at a dotted key of a tree (or a parsed params file), undefined when absent. */
export function valueAt(tree: unknown, key: string): unknown {
  let t = tree;
  for (const part of key.split('.')) {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) return undefined;
    t = (t as Record<string, unknown>)[part];
  }
  return t;
}

/**
 * One line on stderr before the module `file` of parameter `key` is imported: its code
 * is about to run. Once per job: not from worker threads nor MPI ranks other than 0,
 * which load the same module after the main thread of rank 0.
 */
export function announceModule(key: string, spec: string, file: string): void {
  if (!isMainThread || (envLaunch()?.rank ?? 0) > 0) return;
  const origin = origins.get(`${key}=${spec}`);
  process.stderr.write(`fluidimage: loading user module ${file} (${key}${origin === undefined ? '' : `, ${origin}`})\n`);
}
