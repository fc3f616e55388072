/** What the commands share: params from -c/--set/PATH, error reporting, exit codes. */
import { resolve } from 'node:path';
import { applySets, loadParamsFile } from '../params/load.js';
import { defaults, setAt, type Group } from '../params/schema.js';
import type { ParamTree } from '../works/piv/types.js';

export const EXIT_OK = 0;
/** Some items failed (the others were processed). */
export const EXIT_ITEMS_FAILED = 1;
/** Bad command line, parameters or input: nothing was processed. */
export const EXIT_USAGE = 2;
/** Stopped by a signal before the end (what was started is complete; rerun to finish). */
export const EXIT_STOPPED = 3;

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

/** Errors the user can fix carry a `code`; they are printed without a stack trace. */
export function reportError(e: unknown): number {
  const err = e as { code?: unknown; message?: string; stack?: string };
  if (err && typeof err.code === 'string' && err.code.startsWith('ERR_')) {
    process.stderr.write(`fluidimage: error: ${err.message}\n`);
  } else {
    process.stderr.write(`fluidimage: unexpected error: ${err?.stack ?? String(e)}\n`);
  }
  return EXIT_USAGE;
}
