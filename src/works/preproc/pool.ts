/**
 * Preprocessing runs in JavaScript: to use several cores, items are computed in a pool
 * of worker threads (one item per thread at a time). With one thread the work runs
 * inline, on the main thread. Results are identical either way (same code, same order
 * of operations).
 */
import { Worker } from 'node:worker_threads';
import type { ParamTree } from '../piv/types.js';
import { WorkPreproc, type PreprocInput } from './work.js';

export interface TaskMessage {
  id: number;
  input: PreprocInput;
}

export type ReplyMessage = { id: number; ok: true; images: Float32Array[] } | { id: number; ok: false; error: string };

/** Computes items: `run` resolves to the images to write. */
export interface PreprocCompute {
  run(input: PreprocInput): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** On the calling thread. */
export function inlineCompute(tools: ParamTree): PreprocCompute {
  const work = new WorkPreproc(tools);
  return {
    run: async (input) => work.calcul(input),
    close: async () => {},
  };
}

interface Pending {
  id: number;
  input: PreprocInput;
  resolve: (images: Float32Array[]) => void;
  reject: (e: Error) => void;
}

/** `size` worker threads; tasks beyond that wait in a queue. */
export class ThreadPool implements PreprocCompute {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;

  constructor(size: number, private readonly tools: ParamTree) {
    for (let i = 0; i < size; i++) this.idle.push(this.spawn());
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./thread.js', import.meta.url), { workerData: this.tools });
    worker.on('message', (reply: ReplyMessage) => {
      const task = this.busy.get(worker);
      this.busy.delete(worker);
      this.idle.push(worker);
      if (task) {
        if (reply.ok) task.resolve(reply.images);
        else task.reject(new Error(reply.error));
      }
      this.dispatch();
    });
    // A thread that dies (out of memory, ...) fails its item only; a new one replaces it.
    worker.on('error', (e) => this.lost(worker, e));
    worker.on('exit', (code) => {
      if (!this.closed) this.lost(worker, new Error(`preprocessing thread exited with code ${code}`));
    });
    return worker;
  }

  private lost(worker: Worker, e: Error): void {
    const task = this.busy.get(worker);
    const wasKnown = this.busy.delete(worker) || this.idle.includes(worker);
    const k = this.idle.indexOf(worker);
    if (k >= 0) this.idle.splice(k, 1);
    task?.reject(e);
    if (wasKnown && !this.closed) {
      this.idle.push(this.spawn());
      this.dispatch();
    }
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const task = this.queue.shift()!;
      this.busy.set(worker, task);
      const message: TaskMessage = { id: task.id, input: task.input };
      worker.postMessage(message, task.input.images.map((im) => im.buffer as ArrayBuffer));
    }
  }

  run(input: PreprocInput): Promise<Float32Array[]> {
    if (this.closed) return Promise.reject(new Error('the preprocessing pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, input, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    for (const task of this.busy.values()) task.reject(new Error('the preprocessing pool was closed'));
    this.busy.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** A pool of `threads` threads, or inline work for one. */
export function makeCompute(tools: ParamTree, threads: number): PreprocCompute {
  return threads > 1 ? new ThreadPool(threads, tools) : inlineCompute(tools);
}
