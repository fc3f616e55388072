/**
 * MPI from TypeScript, modelled on mpi4py's COMM_WORLD: typed arrays move without copies
 * (bcast, gather, reduce, send/recv, like mpi4py's upper-case methods), any JSON value
 * with the *Object methods (like its lower-case ones).
 *
 * Nothing happens at import: MPI_Init_thread runs on the first world(). Blocking calls
 * block the JS thread (as in mpi4py); the nonblocking isend/irecv return a Request whose
 * wait() is settled by a poller that calls MPI_Test from the event loop, so the thread
 * never sits inside MPI while work is pending elsewhere.
 *
 * Receives match their message first (probe) and then receive exactly it, also the
 * nonblocking ones (matched when the poller first sees the message): a message longer than
 * the array is MPI_ERR_TRUNCATE, never an overrun (see native/mpi.cc). Consequence: a
 * pending irecv claims its message only once polled, so a blocking recv with an
 * overlapping pattern issued meanwhile may take it first.
 *
 * Process end: MPI_Finalize runs once, from finalize() or on 'exit'. A rank of a parallel
 * job that exits with a non-zero code while MPI is live aborts the whole job instead
 * (MPI_Finalize would wait forever for ranks that wait for it): a program that means to
 * end with a non-zero code after a complete parallel run calls finalize() first.
 */
import {
  native,
  type MpiBuffer,
  type MpiBytesStatus,
  type MpiInitInfo,
  type MpiProbeStatus,
  type MpiReduceOp,
  type MpiRequestHandle,
  type MpiStatus,
  type MpiThreadLevel,
  type NativeCore,
} from '../native.js';
import { decodeObject, encodeForCollective, encodeObject } from './codec.js';
import { checkLaunchEnv } from './launcher.js';

export { ObjectCodecError } from './codec.js';
export { envLaunch, envRankCount, LauncherMismatchError, type LaunchEnv } from './launcher.js';

export type TypedArray = MpiBuffer;
export type ReduceOp = MpiReduceOp;
export type ThreadLevel = MpiThreadLevel;
export type Status = MpiStatus;
export type ProbeStatus = MpiProbeStatus;

/** Wildcards for `source` and `tag` of receives and probes. */
export const ANY_SOURCE = -1;
export const ANY_TAG = -1;

/** A received object with where it came from. */
export interface ObjectMessage<T> {
  /** Parsed JSON, not validated: check its shape. */
  value: T;
  source: number;
  tag: number;
}

export interface GathervResult<T extends TypedArray> {
  /** All ranks' arrays concatenated in rank order. */
  data: T;
  counts: Int32Array;
  displs: Int32Array;
}

/** Errors of MPI calls (thrown by the native core). */
export interface MpiError extends Error {
  code: 'ERR_MPI';
  /** MPI_Error_class of the return code (e.g. 15 = MPI_ERR_TRUNCATE in Open MPI). */
  mpiErrorClass: number;
  /** The MPI function that failed. */
  mpiOperation: string;
}

export function isMpiError(e: unknown): e is MpiError {
  return e instanceof Error && (e as Partial<MpiError>).code === 'ERR_MPI';
}

type CodedError = Error & { code: string };

function coded(Ctor: ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor, code: string, message: string): CodedError {
  return Object.assign(new Ctor(message), { code });
}

// ---- argument checks (messages name the argument) ---------------------------------------

function checkRank(value: unknown, name: string, size: number, any: boolean): number {
  if (any && value === ANY_SOURCE) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= size) {
    const allowed = `an integer rank in [0, ${size})${any ? ' or ANY_SOURCE (-1)' : ''}`;
    const Ctor = typeof value === 'number' ? RangeError : TypeError;
    throw coded(Ctor, Ctor === RangeError ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE',
      `Expected ${allowed} for ${name} but received ${describeValue(value)}`);
  }
  return value;
}

function checkTag(value: unknown, name: string, tagUb: number, any: boolean): number {
  if (any && value === ANY_TAG) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > tagUb) {
    const allowed = `an integer tag in [0, ${tagUb}]${any ? ' or ANY_TAG (-1)' : ''}`;
    const Ctor = typeof value === 'number' ? RangeError : TypeError;
    throw coded(Ctor, Ctor === RangeError ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE',
      `Expected ${allowed} for ${name} but received ${describeValue(value)}`);
  }
  return value;
}

function checkBuffer(value: unknown, name: string): asserts value is TypedArray {
  if (!ArrayBuffer.isView(value) || value instanceof DataView) {
    throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', `Expected a typed array for ${name} but received ${describeValue(value)}`);
  }
}

function describeValue(v: unknown): string {
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'object' && v !== null) return v.constructor?.name ?? 'an object';
  return String(v);
}

function describeError(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  try {
    return `${JSON.stringify(e)}`;
  } catch {
    return String(e);
  }
}

/** A new zeroed array of the same type and length (`a` itself if it is no typed array:
 *  the native agreement step reports that on every rank). */
function like<T extends TypedArray>(a: T): T {
  if (!ArrayBuffer.isView(a)) return a;
  const Ctor = a.constructor as new (length: number) => T;
  return new Ctor(a.length);
}

// ---- nonblocking requests and their poller -----------------------------------------------

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * A pending nonblocking operation. The poller tests every pending request from the event
 * loop, whether or not anyone waits, so buffers are released as soon as MPI is done.
 */
export class Request<T> {
  #handle: MpiRequestHandle | undefined;
  #core: NativeCore;
  #finish: (status: MpiStatus | MpiBytesStatus) => T;
  #outcome: Outcome<T> | undefined;
  #waiters: Array<{ resolve: (v: T) => void; reject: (e: unknown) => void }> = [];
  /** The typed array MPI reads or writes, also pinned natively until completion. */
  readonly buffer: TypedArray | undefined;

  constructor(core: NativeCore, handle: MpiRequestHandle, buffer: TypedArray | undefined,
    finish: (status: MpiStatus | MpiBytesStatus) => T) {
    this.#core = core;
    this.#handle = handle;
    this.buffer = buffer;
    this.#finish = finish;
    poller.add(this);
  }

  /** Whether the operation has completed (successfully or not). */
  get done(): boolean {
    return this.#outcome !== undefined;
  }

  /** Tests once now (MPI_Test); true when complete. Throws the error of a failed request. */
  test(): boolean {
    this.poll();
    if (this.#outcome && !this.#outcome.ok) throw this.#outcome.error;
    return this.#outcome !== undefined;
  }

  /** Settles when MPI completes the operation; rejects with its ERR_MPI error. */
  wait(): Promise<T> {
    this.poll(); // small sends are usually complete already: no event-loop turn then
    const o = this.#outcome;
    if (o) return o.ok ? Promise.resolve(o.value) : Promise.reject(o.error);
    return new Promise<T>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** @internal One MPI_Test; true when the request has just completed or had. */
  poll(): boolean {
    if (this.#outcome) return true;
    let outcome: Outcome<T>;
    try {
      const status = this.#core.mpiTest(this.#handle!);
      if (status === undefined) return false;
      outcome = { ok: true, value: this.#finish(status) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    this.#outcome = outcome;
    this.#handle = undefined;
    poller.delete(this);
    for (const w of this.#waiters.splice(0)) {
      if (outcome.ok) w.resolve(outcome.value);
      else w.reject(outcome.error);
    }
    return true;
  }
}

interface Pollable {
  poll(): boolean;
}

/**
 * Tests all pending requests from the event loop: back to back (setImmediate) during the
 * first SPIN_MS after a request was posted or completed, so that quick replies are seen
 * within microseconds; then every millisecond (setTimeout), so that ranks waiting long for
 * work do not spin a core. (Counting polls instead of time made ping-pongs cost ~1.8 ms a
 * hop: both sides fell asleep before the other answered.) While requests are pending, the
 * timers keep the process alive, as pending I/O does.
 */
class Poller {
  readonly pending = new Set<Pollable>();
  #scheduled = false;
  #lastProgress = 0;
  static readonly SPIN_MS = 2;

  add(r: Pollable): void {
    this.pending.add(r);
    this.#lastProgress = performance.now();
    this.#schedule();
  }

  delete(r: Pollable): void {
    this.pending.delete(r);
  }

  #schedule(): void {
    if (this.#scheduled || this.pending.size === 0) return;
    this.#scheduled = true;
    if (performance.now() - this.#lastProgress < Poller.SPIN_MS) setImmediate(() => this.#tick());
    else setTimeout(() => this.#tick(), 1);
  }

  #tick(): void {
    this.#scheduled = false;
    let progressed = false;
    for (const r of [...this.pending]) if (r.poll()) progressed = true;
    if (progressed) this.#lastProgress = performance.now();
    this.#schedule();
  }
}

const poller = new Poller();

// ---- the communicator ------------------------------------------------------------------------

/** MPI_COMM_WORLD. Get it with world(). */
export class Comm {
  readonly rank: number;
  readonly size: number;
  /** Thread support MPI granted (MPI_THREAD_MULTIPLE requested). */
  readonly threadLevel: ThreadLevel;
  /** Largest valid tag. */
  readonly tagUb: number;
  /** The MPI library in use (found with dladdr; re-opened RTLD_GLOBAL before MPI_Init). */
  readonly libraryPath: string;
  readonly #core: NativeCore;

  /** @internal Use world(). */
  constructor(core: NativeCore, info: MpiInitInfo) {
    this.#core = core;
    this.rank = info.rank;
    this.size = info.size;
    this.threadLevel = info.threadLevel;
    this.tagUb = info.tagUb;
    this.libraryPath = info.libraryPath;
  }

  // Collectives check their arguments natively, inside an agreement step that every rank
  // joins: a bad argument on one rank then throws on all ranks instead of leaving the
  // others waiting. So no local checks here that could throw before it.

  barrier(): void {
    this.#core.mpiBarrier();
  }

  /** Broadcasts the root's array into every rank's (same type and length), in place. */
  bcast<T extends TypedArray>(buffer: T, root = 0): T {
    return this.#core.mpiBcast(buffer, root);
  }

  /** The root's value on every rank (JSON). Other ranks' `value` is ignored. */
  bcastObject<T>(value: T | undefined, root = 0): T {
    const mine = this.rank === root ? encodeForCollective(value) : undefined;
    const length = new Int32Array([mine ? mine.bytes.length : 0]);
    this.#core.mpiBcast(length, root);
    const bytes = mine ? mine.bytes : new Uint8Array(length[0]);
    this.#core.mpiBcast(bytes, root);
    if (mine?.error) throw mine.error;
    return decodeObject(bytes, `bcastObject: the root (rank ${root})`) as T;
  }

  /** Arrays of any lengths (same type) from all ranks: on the root, concatenated with counts. */
  gatherv<T extends TypedArray>(data: T, root = 0): GathervResult<T> | undefined {
    const r = this.#core.mpiGatherv(data, root);
    if (!r) return undefined;
    const displs = new Int32Array(r.counts.length);
    for (let i = 1; i < displs.length; i++) displs[i] = displs[i - 1] + r.counts[i - 1];
    return { data: r.data, counts: r.counts, displs };
  }

  /** Arrays of any lengths from all ranks: on the root, one view per rank (into one buffer). */
  gather<T extends TypedArray>(data: T, root = 0): T[] | undefined {
    const r = this.gatherv(data, root);
    if (!r) return undefined;
    return Array.from(r.counts, (n, i) => r.data.subarray(r.displs[i], r.displs[i] + n) as T);
  }

  /** Every rank's value, in rank order, on the root (JSON). */
  gatherObject<T>(value: T, root = 0): T[] | undefined {
    const mine = encodeForCollective(value);
    const r = this.#core.mpiGatherv(mine.bytes, root);
    if (mine.error) throw mine.error;
    if (!r) return undefined;
    const out: T[] = [];
    let at = 0;
    for (let i = 0; i < r.counts.length; i++) {
      out.push(decodeObject(r.data.subarray(at, at + r.counts[i]), `gatherObject: rank ${i}`) as T);
      at += r.counts[i];
    }
    return out;
  }

  /** Element-wise reduction over ranks, result on every rank (in `out`, which may be `data`). */
  allreduce<T extends TypedArray>(data: T, op: ReduceOp = 'sum', out?: T): T {
    return this.#core.mpiAllreduce(data, out ?? like(data), op);
  }

  /** Element-wise reduction over ranks, result on the root only. */
  reduce<T extends TypedArray>(data: T, op: ReduceOp = 'sum', root = 0, out?: T): T | undefined {
    return this.#core.mpiReduce(data, this.rank === root ? out ?? like(data) : undefined, op, root);
  }

  /** Blocking send of a typed array (MPI_Send). */
  send(buffer: TypedArray, dest: number, tag = 0): void {
    checkBuffer(buffer, 'buffer');
    this.#core.mpiSend(buffer, checkRank(dest, 'dest', this.size, false), checkTag(tag, 'tag', this.tagUb, false));
  }

  /** Blocking receive into `buffer` (zero copy); count is in elements. */
  recv(buffer: TypedArray, source = ANY_SOURCE, tag = ANY_TAG): Status {
    checkBuffer(buffer, 'buffer');
    return this.#core.mpiRecv(buffer, checkRank(source, 'source', this.size, true), checkTag(tag, 'tag', this.tagUb, true));
  }

  /** Blocking send of a JSON value. */
  sendObject(value: unknown, dest: number, tag = 0): void {
    dest = checkRank(dest, 'dest', this.size, false);
    tag = checkTag(tag, 'tag', this.tagUb, false);
    this.#core.mpiSend(encodeObject(value), dest, tag);
  }

  /** Blocking receive of a JSON value of any size (probed first). */
  recvObject<T = unknown>(source = ANY_SOURCE, tag = ANY_TAG): ObjectMessage<T> {
    const st = this.#core.mpiRecvBytes(checkRank(source, 'source', this.size, true), checkTag(tag, 'tag', this.tagUb, true));
    return objectMessage<T>(st);
  }

  /** Nonblocking send; `buffer` must not change until the request completes. */
  isend(buffer: TypedArray, dest: number, tag = 0): Request<void> {
    checkBuffer(buffer, 'buffer');
    const h = this.#core.mpiIsend(buffer, checkRank(dest, 'dest', this.size, false), checkTag(tag, 'tag', this.tagUb, false));
    return new Request<void>(this.#core, h, buffer, () => undefined);
  }

  /** Nonblocking receive into `buffer`; the request's value is the status. */
  irecv(buffer: TypedArray, source = ANY_SOURCE, tag = ANY_TAG): Request<Status> {
    checkBuffer(buffer, 'buffer');
    const h = this.#core.mpiIrecv(buffer, checkRank(source, 'source', this.size, true), checkTag(tag, 'tag', this.tagUb, true));
    return new Request(this.#core, h, buffer, (st) => ({ source: st.source, tag: st.tag, count: st.count }));
  }

  isendObject(value: unknown, dest: number, tag = 0): Request<void> {
    dest = checkRank(dest, 'dest', this.size, false);
    tag = checkTag(tag, 'tag', this.tagUb, false);
    const bytes = encodeObject(value);
    return new Request<void>(this.#core, this.#core.mpiIsend(bytes, dest, tag), bytes, () => undefined);
  }

  irecvObject<T = unknown>(source = ANY_SOURCE, tag = ANY_TAG): Request<ObjectMessage<T>> {
    const h = this.#core.mpiIrecvBytes(checkRank(source, 'source', this.size, true), checkTag(tag, 'tag', this.tagUb, true));
    return new Request(this.#core, h, undefined, (st) => objectMessage<T>(st as MpiBytesStatus));
  }

  /** A matching message waiting to be received, without receiving it; undefined if none. */
  iprobe(source = ANY_SOURCE, tag = ANY_TAG): ProbeStatus | undefined {
    return this.#core.mpiIprobe(checkRank(source, 'source', this.size, true), checkTag(tag, 'tag', this.tagUb, true));
  }

  /** Prints the message naming this rank to stderr and aborts every rank of the job. */
  abort(code = 1, message = 'aborted'): never {
    return this.#core.mpiAbort(code, this.#abortMessage(code, message));
  }

  /**
   * Runs `fn` (blocking MPI calls: collectives, finalize) under a deadline: when it has not
   * returned after `seconds`, a native thread prints `message` naming this rank and aborts
   * the job with `code` (a blocked JS thread cannot notice that another rank went silent).
   */
  withDeadline<T>(seconds: number, code: number, message: string, fn: () => T): T {
    if (!(seconds > 0)) throw coded(RangeError, 'ERR_OUT_OF_RANGE', `Expected a positive number of seconds for withDeadline but received ${describeValue(seconds)}`);
    this.#core.mpiDeadline(seconds, code, this.#abortMessage(code, message));
    try {
      return fn();
    } finally {
      this.#core.mpiDeadline(0, 0, '');
    }
  }

  #abortMessage(code: number, message: string): string {
    return `fluidimage: MPI rank ${this.rank} of ${this.size} aborts the job (code ${code}): ${message}`;
  }
}

function objectMessage<T>(st: MpiBytesStatus): ObjectMessage<T> {
  const value = decodeObject(st.data, `the message from rank ${st.source} (tag ${st.tag})`) as T;
  return { value, source: st.source, tag: st.tag };
}

// ---- process-wide life cycle ------------------------------------------------------------------

let theWorld: Comm | undefined;
/** Set by an uncaught exception (or rejection): what onExit must report before aborting. */
let crash: { error: unknown; origin: string } | undefined;

/** MPI_COMM_WORLD, initialising MPI on first use (MPI_Init_thread, MULTIPLE requested). */
export function world(): Comm {
  if (theWorld) {
    if (native().mpiIsFinalized()) throw coded(Error, 'ERR_MPI_FINALIZED', 'MPI was already finalised in this process');
    return theWorld;
  }
  const core = native();
  theWorld = new Comm(core, core.mpiInit());
  process.on('exit', onExit);
  // Only records. Node then emits 'exit' *before* printing the error, and onExit's
  // MPI_Abort would kill the process first: onExit prints it.
  process.on('uncaughtExceptionMonitor', (error, origin) => {
    crash ??= { error, origin };
  });
  return theWorld;
}

export function isInitialized(): boolean {
  return theWorld !== undefined && !native().mpiIsFinalized();
}

export function isFinalized(): boolean {
  return theWorld !== undefined && native().mpiIsFinalized();
}

/**
 * MPI_Finalize, once; a no-op when MPI was never initialised or is already finalised.
 * Collective: call it on every rank (or let the 'exit' hook do it). Returns whether it ran.
 */
export function finalize(): boolean {
  if (!theWorld) return false;
  const core = native();
  if (core.mpiIsFinalized()) return false;
  if (poller.pending.size > 0) {
    process.stderr.write(`fluidimage: MPI rank ${theWorld.rank}: finalising with ${poller.pending.size} nonblocking request(s) still pending\n`);
  }
  return core.mpiFinalize();
}

function onExit(code: number): void {
  const c = theWorld;
  if (!c || native().mpiIsFinalized()) return;
  if (c.size > 1 && (code !== 0 || crash)) {
    // The others may be waiting for this rank: MPI_Finalize would hang the job.
    c.abort(code || 1, crash ? crashMessage(crash.error, crash.origin) : `exiting with code ${code} before finalising MPI`);
  }
  finalize();
}

function crashMessage(error: unknown, origin: string): string {
  return `${origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception'}: ${describeError(error)}`;
}

/** The world when MPI is live with several ranks, otherwise undefined. */
function parallelWorld(): Comm | undefined {
  return theWorld && theWorld.size > 1 && !native().mpiIsFinalized() ? theWorld : undefined;
}

let handlersInstalled = false;

/**
 * On an uncaught exception or unhandled rejection in a parallel run, prints it naming the
 * rank and aborts the whole job at once (without this, the 'exit' hook still aborts, after
 * Node's own report). Serial runs keep Node's default behaviour. Idempotent.
 */
export function installAbortHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('uncaughtExceptionMonitor', (error, origin) => {
    const c = parallelWorld();
    if (c) c.abort(1, crashMessage(error, origin));
  });
  process.on('unhandledRejection', (reason) => {
    const c = parallelWorld();
    if (c) c.abort(1, crashMessage(reason, 'unhandledRejection'));
    // Serial: what Node does without a listener (--unhandled-rejections=throw).
    throw reason;
  });
}

/**
 * Throws LauncherMismatchError when the launcher's environment announces N > 1 ranks but
 * MPI sees another world size (an MPI other than the addon's, srun without --mpi=pmix).
 * Initialises MPI.
 */
export function checkLauncher(comm: Comm = world()): void {
  checkLaunchEnv(comm.size, mpiLibraryVersion());
}

/** Whether the addon was built with MPI (does not initialise MPI). */
export function mpiAvailable(): boolean {
  return native().mpiAvailable();
}

/** MPI_Get_library_version (does not initialise MPI). */
export function mpiLibraryVersion(): string {
  return native().mpiLibraryVersion();
}
