/**
 * Where the shared sample images are: `shared/` beside the repository (as CI lays it out),
 * else /work/shared. Tests that need them skip when neither exists.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is dist/test/helpers/shared.js once compiled). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function findShared(): string {
  const beside = join(ROOT, '..', 'shared');
  if (existsSync(join(beside, 'image_samples'))) return beside;
  return '/work/shared';
}

export const SHARED = findShared();
export const SHARED_IMAGE_SAMPLES = join(SHARED, 'image_samples');
