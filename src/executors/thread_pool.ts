/**
 * A pool of worker threads for work that runs in JavaScript (preprocessing, surface
 * tracking): each thread builds its work once from `workerData` and computes one task at a
 * time; tasks beyond the idle threads wait in a queue. A thread that dies (out of memory,
 * ...) fails its task only. The thread's script calls {@link serveTasks}.
 */
import { parentPort, Worker } from 'node:worker_threads';

/** Pool -> thread. */
export interface PoolTask<In> {
  id: number;
  input: In;
}

/** Thread -> pool. */
export type PoolReply<Out> = { id: number; ok: true; output: Out } | { id: number; ok: false; error: string };

export interface ThreadPoolOptions<In> {
  /** The threads' script (it calls serveTasks). */
  script: URL;
  workerData: unknown;
  maxThreads: number;
  /** The pool's name in errors ("preprocessing"). */
  what: string;
  /** Buffers of an input to transfer to its thread (default: none, the input is copied). */
  transfer?: (input: In) => ArrayBuffer[];
  /**
   * true: the threads all start at once, one that dies is replaced at once, and they hold
   * the process open until close(). false (default): threads start when needed and hold the
   * process open only while they compute, so no close() is needed.
   */
  eager?: boolean;
}

interface Pending<In, Out> {
  id: number;
  input: In;
  resolve: (output: Out) => void;
  reject: (e: Error) => void;
}

export class ThreadPool<In, Out> {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending<In, Out>>();
  private readonly queue: Pending<In, Out>[] = [];
  private nextId = 0;
  private closed = false;

  constructor(private readonly options: ThreadPoolOptions<In>) {
    if (options.eager) for (let i = 0; i < options.maxThreads; i++) this.idle.push(this.spawn());
  }

  run(input: In): Promise<Out> {
    if (this.closed) return Promise.reject(new Error(`the ${this.options.what} pool is closed`));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, input, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    for (const task of this.busy.values()) task.reject(new Error(`the ${this.options.what} pool was closed`));
    this.busy.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    const { eager, maxThreads, transfer } = this.options;
    while (this.queue.length > 0) {
      let worker = this.idle.pop();
      if (worker === undefined) {
        if (eager || this.busy.size >= maxThreads) return;
        worker = this.spawn();
      }
      const task = this.queue.shift()!;
      this.busy.set(worker, task);
      if (!eager) worker.ref();
      const message: PoolTask<In> = { id: task.id, input: task.input };
      worker.postMessage(message, transfer?.(task.input) ?? []);
    }
  }

  private spawn(): Worker {
    const worker = new Worker(this.options.script, { workerData: this.options.workerData });
    worker.on('message', (reply: PoolReply<Out>) => {
      const task = this.busy.get(worker);
      this.busy.delete(worker);
      if (!this.options.eager) worker.unref();
      this.idle.push(worker);
      if (task) {
        if (reply.ok) task.resolve(reply.output);
        else task.reject(new Error(reply.error));
      }
      this.dispatch();
    });
    worker.on('error', (e) => this.lost(worker, e));
    worker.on('exit', (code) => {
      if (!this.closed) this.lost(worker, new Error(`${this.options.what} thread exited with code ${code}`));
    });
    return worker;
  }

  /** Fails the task of a thread that died; an eager pool starts another at once. */
  private lost(worker: Worker, e: Error): void {
    const task = this.busy.get(worker);
    const wasKnown = this.busy.delete(worker) || this.idle.includes(worker);
    const k = this.idle.indexOf(worker);
    if (k >= 0) this.idle.splice(k, 1);
    task?.reject(e);
    if (!wasKnown || this.closed) return;
    if (this.options.eager) this.idle.push(this.spawn());
    this.dispatch();
  }
}

/**
 * In a pool's thread: computes each task it is sent and replies with the output, whose
 * `transfer` buffers are moved back rather than copied.
 */
export function serveTasks<In, Out>(what: string, compute: (input: In) => Out, transfer: (output: Out) => ArrayBuffer[]): void {
  const port = parentPort;
  if (port === null) throw new Error(`thread.js runs as a worker thread of the ${what} pool`);
  port.on('message', (task: PoolTask<In>) => {
    let reply: PoolReply<Out>;
    let buffers: ArrayBuffer[] = [];
    try {
      const output = compute(task.input);
      reply = { id: task.id, ok: true, output };
      buffers = transfer(output);
    } catch (e) {
      reply = { id: task.id, ok: false, error: e instanceof Error ? e.message : String(e) };
    }
    port.postMessage(reply, buffers);
  });
}
