/** Output directory and the `saving.how` modes shared by all topologies. */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cleanStaleTemps } from '../io/atomic.js';

export type HowMode = 'complete' | 'recompute' | 'new_dir';

/**
 * Chooses and creates the output directory. `new_dir` takes `<dir>` if it does not
 * exist yet, else the first free `<dir>0`, `<dir>1`, ... (as Fluidimage).
 */
export async function prepareOutputDir(dir: string, how: HowMode): Promise<string> {
  let out = dir;
  if (how === 'new_dir' && existsSync(dir)) {
    for (let k = 0; ; k++) {
      if (!existsSync(`${dir}${k}`)) {
        out = `${dir}${k}`;
        break;
      }
    }
  }
  await mkdir(out, { recursive: true });
  // Leftovers of killed runs: temp files of atomic writes never become results.
  await cleanStaleTemps(out);
  return out;
}
