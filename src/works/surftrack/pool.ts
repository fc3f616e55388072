/**
 * Surface tracking computes in JavaScript: to use several cores on one machine, frames are
 * computed in worker threads, started when needed (at most `maxThreads`: the executor keeps
 * no more frames in flight than its workers) and each built once from the setup. A thread
 * holds the process open only while it computes, so no explicit shutdown is needed. Under
 * MPI a rank has one frame in flight: one thread, which also keeps the rank's event loop
 * free to answer the other ranks. Results are identical inline or in threads.
 */
import { Worker } from 'node:worker_threads';
import { WorkSurfaceTracking, type Frame, type SurfResult, type SurfSetup } from './work.js';

export interface TaskMessage {
  id: number;
  frame: Frame;
}

export type ReplyMessage = { id: number; ok: true; result: SurfResult } | { id: number; ok: false; error: string };

export interface SurfCompute {
  run(frame: Frame): Promise<SurfResult>;
}

interface Task {
  id: number;
  frame: Frame;
  resolve: (r: SurfResult) => void;
  reject: (e: Error) => void;
}

class SurfThreadPool implements SurfCompute {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task>();
  private readonly queue: Task[] = [];
  private nextId = 0;

  constructor(private readonly setup: SurfSetup, private readonly maxThreads: number) {}

  run(frame: Frame): Promise<SurfResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, frame, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let worker = this.idle.pop();
      if (worker === undefined) {
        if (this.busy.size >= this.maxThreads) return;
        worker = this.spawn();
      }
      const task = this.queue.shift()!;
      this.busy.set(worker, task);
      worker.ref();
      // The image is copied (structured clone), not transferred: its buffer may be shared.
      const message: TaskMessage = { id: task.id, frame: task.frame };
      worker.postMessage(message);
    }
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./thread.js', import.meta.url), { workerData: this.setup });
    worker.on('message', (reply: ReplyMessage) => {
      const task = this.busy.get(worker);
      this.busy.delete(worker);
      worker.unref();
      this.idle.push(worker);
      if (task) {
        if (reply.ok) task.resolve(reply.result);
        else task.reject(new Error(reply.error));
      }
      this.dispatch();
    });
    // A thread that dies (out of memory, ...) fails its frame only; another one is started when needed.
    const lost = (e: Error) => {
      const task = this.busy.get(worker);
      this.busy.delete(worker);
      const k = this.idle.indexOf(worker);
      if (k >= 0) this.idle.splice(k, 1);
      task?.reject(e);
      this.dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`surface tracking thread exited with code ${code}`)));
    return worker;
  }
}

/** On the calling thread (maxThreads 0) or in up to maxThreads worker threads. */
export function makeSurfCompute(setup: SurfSetup, maxThreads: number): SurfCompute {
  if (maxThreads <= 0) {
    const work = new WorkSurfaceTracking(setup);
    return { run: async (frame) => work.calcul(frame) };
  }
  return new SurfThreadPool(setup, maxThreads);
}
