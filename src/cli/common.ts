/** What the commands share: params from -c/--set/PATH, error reporting, exit codes. */

import { EXIT_USAGE } from '../engine/exit_codes.js';

export { EXIT_ITEMS_FAILED, EXIT_OK, EXIT_STOPPED, EXIT_USAGE } from '../engine/exit_codes.js';
export { resolveParams, type ParamOptions } from '../params/resolve.js';

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
