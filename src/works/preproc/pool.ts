/**
 * Preprocessing runs in JavaScript: to use several cores, items are computed in a pool
 * of worker threads (executors/thread_pool.ts; one item per thread at a time, images
 * transferred, never copied). With one thread the work runs inline, on the main thread.
 * Results are identical either way (same code, same order of operations).
 */
import { ThreadPool } from '../../executors/thread_pool.js';
import type { ParamTree } from '../../params/tree.js';
import { WorkPreproc, type PreprocInput } from './work.js';

/** Computes items: `run` resolves to the images to write. */
export interface PreprocCompute {
  run(input: PreprocInput): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** On the calling thread. */
function inlineCompute(tools: ParamTree): PreprocCompute {
  const work = new WorkPreproc(tools);
  return {
    run: async (input) => work.calcul(input),
    close: async () => {},
  };
}

/** `size` worker threads, started at once, until close(). */
export function preprocPool(size: number, tools: ParamTree): PreprocCompute {
  return new ThreadPool<PreprocInput, Float32Array[]>({
    script: new URL('./thread.js', import.meta.url), workerData: tools, maxThreads: size, what: 'preprocessing', eager: true,
    transfer: (input) => input.images.map((im) => im.buffer as ArrayBuffer),
  });
}

/** A pool of `threads` threads, or inline work for one. */
export function makeCompute(tools: ParamTree, threads: number): PreprocCompute {
  return threads > 1 ? preprocPool(threads, tools) : inlineCompute(tools);
}
