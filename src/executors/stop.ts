/**
 * Graceful stop: on SIGUSR1, SIGUSR2 or SIGTERM (Slurm's warning before the walltime,
 * `scancel`), or a first Ctrl-C, executors hand out no new item; items already started
 * finish and are written, the summary is written, and the program exits. A second
 * SIGINT/SIGTERM exits at once (atomic writes leave no partial result either way).
 */
export class StopRequest {
  /** The signal that asked for the stop, once asked (or 'a full disk': engine/job_start.ts). */
  signal: NodeJS.Signals | 'a full disk' | undefined;

  get requested(): boolean {
    return this.signal !== undefined;
  }

  request(signal: NodeJS.Signals | 'a full disk'): void {
    this.signal ??= signal;
  }
}

const GRACEFUL: NodeJS.Signals[] = ['SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGINT'];

/** Signals received before the real handlers were installed (see catchEarlySignals). */
const early: NodeJS.Signals[] = [];
const earlyListener = (signal: NodeJS.Signals) => {
  early.push(signal);
};

/**
 * Called first thing by the entry point: remembers stop signals that arrive during
 * start-up (loading modules, MPI initialisation) so that none is lost, and keeps Node
 * from opening its debugger on SIGUSR1.
 */
export function catchEarlySignals(): void {
  for (const s of ['SIGUSR1', 'SIGUSR2'] as NodeJS.Signals[]) process.on(s, earlyListener);
}

/** Installs the handlers; returns a function that removes them. */
export function installStopSignals(stop: StopRequest, log: (message: string) => void): () => void {
  const handler = (signal: NodeJS.Signals) => {
    if (stop.requested && (signal === 'SIGINT' || signal === 'SIGTERM')) {
      log(`received ${signal} again: exiting now (results already written are complete)`);
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    if (!stop.requested) {
      log(`received ${signal}: no new item will start; items in progress finish and are written ` +
        '(send SIGINT/SIGTERM again to exit at once)');
    }
    stop.request(signal);
  };
  for (const s of GRACEFUL) process.on(s, handler);
  for (const s of GRACEFUL) process.off(s, earlyListener);
  for (const s of early.splice(0)) handler(s);
  return () => {
    for (const s of GRACEFUL) process.off(s, handler);
  };
}
