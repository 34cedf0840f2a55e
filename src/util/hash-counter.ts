/**
 * HashCounter: a pass-through stream that hashes (sha256) and counts what flows through it,
 * failing as soon as more than `maxSize` bytes arrive. digest() is valid once the stream
 * finished (after 'finish'/'end', or when a pipeline through it resolved).
 *
 * The first SYNC_BYTES are hashed on this thread (configs and manifests are not worth a thread
 * pool round trip); the rest is handed to libuv's thread pool in batches of BATCH bytes
 * (native/src/sha256.c), so a pull or push does not spend the JavaScript thread on hashing:
 * on a 2-CPU machine that thread also parses HTTP and writes files, and hashing 100 MB costs it
 * ~50 ms. Chunks are passed on at once; the stream waits only when more than BACKLOG bytes are
 * still to be hashed, and it ends only after the last batch was hashed. The chunks are kept
 * (not copied) until hashed: a stream's chunks belong to their consumers and are not reused.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { KilnError } from '../errors';
import { native, type Sha256Handle } from '../native';
import type { Digest } from './digest';

const SYNC_BYTES = 1 << 20;
const BATCH = 1 << 20;
const BACKLOG = 8 << 20;

export class HashCounter extends Transform {
  private readonly handle: Sha256Handle = native().sha256New();
  size = 0;
  /** chunks not yet given to the pool, and their length */
  private batch: Buffer[] = [];
  private batchLen = 0;
  /** bytes given to the pool and not hashed yet (0: nothing in flight) */
  private inFlight = 0;
  private failure: Error | undefined;
  /** the callback of a chunk held back by BACKLOG, and of _flush waiting for the last batch */
  private resumeChunk: (() => void) | undefined;
  private flushed: TransformCallback | undefined;
  private hex: string | undefined;

  constructor(private readonly maxSize?: number, private readonly what = 'blob') {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.maxSize !== undefined && this.size > this.maxSize) {
      cb(new KilnError('E_SIZE_MISMATCH', `${this.what}: more than the expected ${this.maxSize} bytes`));
      return;
    }
    if (this.failure) {
      cb(this.failure);
      return;
    }
    if (this.size <= SYNC_BYTES) {
      native().sha256Update(this.handle, chunk);
      cb(null, chunk);
      return;
    }
    this.batch.push(chunk);
    this.batchLen += chunk.length;
    this.pump();
    if (this.inFlight + this.batchLen > BACKLOG) this.resumeChunk = () => cb(null, chunk);
    else cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.flushed = cb;
    this.pump();
    this.settle();
  }

  /** The digest of everything that passed; only once the stream finished. */
  digest(): Digest {
    if (this.hex === undefined) {
      if (this.inFlight > 0 || this.batchLen > 0) throw new Error('HashCounter.digest() before the stream finished');
      this.hex = native().sha256Digest(this.handle);
    }
    return `sha256:${this.hex}`;
  }

  /** Gives the waiting chunks to the pool when nothing is in flight and a batch is due. */
  private pump(): void {
    if (this.inFlight > 0 || this.batchLen === 0 || this.failure) return;
    if (this.batchLen < BATCH && this.flushed === undefined) return;
    const bufs = this.batch;
    this.inFlight = this.batchLen;
    this.batch = [];
    this.batchLen = 0;
    native().sha256UpdateAsync(this.handle, bufs, (err) => {
      this.inFlight = 0;
      if (err) this.failure = err;
      this.pump();
      this.settle();
    });
  }

  /** Lets a held chunk go once the backlog is small, and ends the stream once all is hashed. */
  private settle(): void {
    if (this.resumeChunk && (this.failure || this.inFlight + this.batchLen <= BACKLOG)) {
      const go = this.resumeChunk;
      this.resumeChunk = undefined;
      go();
    }
    if (this.flushed && (this.failure || (this.inFlight === 0 && this.batchLen === 0))) {
      const done = this.flushed;
      this.flushed = undefined;
      done(this.failure ?? null);
    }
  }
}
