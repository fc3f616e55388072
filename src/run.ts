#!/usr/bin/env node
/**
 * Entry point (`fluidimage` / `node dist/run.js`). Sizes libuv's thread pool before
 * anything uses it (the native correlation and image decoding run there), then hands
 * over to the command line.
 */
import { availableParallelism } from 'node:os';

function workersFromArgv(argv: readonly string[]): number | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = a.startsWith('--workers=') ? a.slice(10) : a === '--workers' ? argv[i + 1] : undefined;
    if (v !== undefined && /^\d+$/.test(v)) return Number(v);
  }
  return undefined;
}

if (!process.env.UV_THREADPOOL_SIZE) {
  const workers = workersFromArgv(process.argv) ?? availableParallelism();
  // One slot per pair in flight plus room for file IO and image decoding.
  process.env.UV_THREADPOOL_SIZE = String(Math.max(4, workers + 2));
}

const { main } = await import('./cli/main.js');
process.exitCode = await main(process.argv.slice(2));
