/** One parameter tree from defaults, a params file, --set and the command line's PATH/-o/--how. */
import { resolve } from 'node:path';
import type { ParamTree } from './tree.js';
import { applySets, loadParamsFile } from './load.js';
import { defaults, setAt, type Group } from './schema.js';

export interface ParamOptions {
  config?: string;
  set?: string[];
  path?: string;
  output?: string;
  how?: string;
}

/** Defaults, then the params file, then --set, then PATH/-o/--how (command line wins). */
export async function resolveParams(schema: Group, o: ParamOptions): Promise<ParamTree> {
  let tree = defaults(schema);
  if (o.config) tree = await loadParamsFile(schema, o.config, tree);
  tree = applySets(schema, tree, o.set ?? []);
  if (o.path !== undefined) tree = setAt(schema, tree, 'series.path', resolve(o.path));
  if (o.output !== undefined) tree = setAt(schema, tree, 'saving.path', resolve(o.output));
  if (o.how !== undefined) tree = setAt(schema, tree, 'saving.how', o.how);
  return tree;
}
