/**
 * Big arrays kept for reuse from one item of a series to the next.
 *
 * Every new array above glibc's mmap threshold (128 kB, executors/malloc_env.ts) is fresh
 * pages from the kernel, faulted in and zeroed, and handed back when freed; the garbage
 * collector also runs more often the more external memory is allocated. For a 1024x1024
 * pair the images alone (file bytes, float32 values) were ~12 ms of CPU per pair, a tenth
 * of the computation. An array taken from a pool costs nothing; a pool keeps few arrays,
 * so memory stays bounded by what the pipeline holds at once anyway.
 *
 * A taken array has undefined contents; a given array must not be used again by the giver.
 */

/** Float32 arrays of exact lengths (the images of a series share one size). */
export class Float32Pool {
  private readonly free: Float32Array[] = [];

  constructor(private readonly max: number) {}

  take(length: number): Float32Array {
    const i = this.free.findIndex((a) => a.length === length);
    return i >= 0 ? this.free.splice(i, 1)[0] : new Float32Array(length);
  }

  give(array: Float32Array): void {
    // Only whole arrays: a view could share its buffer with anything.
    if (array.byteOffset !== 0 || array.byteLength !== array.buffer.byteLength) return;
    if (this.free.length >= this.max) this.free.shift(); // another size came: oldest out
    this.free.push(array);
  }
}

/** Byte buffers of at least a given length (compressed files differ in size slightly). */
export class BytePool {
  private readonly free: Uint8Array[] = [];

  constructor(private readonly max: number) {}

  /** A view of exactly `length` bytes on a pooled buffer (give back the view itself). */
  take(length: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = this.free[i].length;
      if (len >= length && (best < 0 || len < this.free[best].length)) best = i;
    }
    // Some headroom, so that the next file, a little larger, still fits.
    const buffer = best >= 0 ? this.free.splice(best, 1)[0] : new Uint8Array(length + (length >> 4));
    return buffer.subarray(0, length);
  }

  /** Only views returned by `take` (their buffer is reused whole). */
  give(view: Uint8Array): void {
    if (view.byteOffset !== 0) return;
    if (this.free.length >= this.max) this.free.shift();
    this.free.push(new Uint8Array(view.buffer, 0, view.buffer.byteLength));
  }
}

/**
 * The pools of image series: float32 images (two per pair, for the pairs in flight) and
 * file bytes read for the PNG fast path.
 */
export const imagePool = new Float32Pool(8);
export const filePool = new BytePool(4);
