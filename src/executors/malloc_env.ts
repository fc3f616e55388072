/**
 * glibc's allocator, tuned for a process that allocates image-sized blocks over and over.
 * Set in the environment of a compute process before it starts (the allocator reads these
 * variables once): setting them later with mallopt works less well, as the heap has
 * already grown by then.
 *
 *  - MALLOC_MMAP_THRESHOLD_=131072: blocks from 128 KiB come from mmap and go back to the
 *    system when freed. The value is glibc's default, but setting it stops its dynamic
 *    growth (to the largest block freed: a 16 MB image), after which every later block
 *    lands in the heap, which rarely shrinks: a worker's resident memory then follows its
 *    high-water mark instead of what it holds.
 *  - MALLOC_ARENA_MAX=4: each thread that allocates (libuv's pool, libvips) would get an
 *    arena of its own, never returned; the native core allocates little per call.
 *
 * Values already in the environment (set by a user or a batch script) are kept.
 */
export const MALLOC_TUNING: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(128 * 1024),
  MALLOC_ARENA_MAX: '4',
};

/** Whether this process lacks some of the tuning (Linux only; other C libraries ignore it). */
export function mallocTuningMissing(env: NodeJS.ProcessEnv = process.env): boolean {
  return process.platform === 'linux' && Object.keys(MALLOC_TUNING).some((k) => env[k] === undefined);
}

/** `env` with the tuning added where absent. */
export function withMallocTuning(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [k, v] of Object.entries(MALLOC_TUNING)) out[k] ??= v;
  return out;
}
