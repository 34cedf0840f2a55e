/**
 * A layer's diffID (sha256 of its uncompressed tar) computed from the blob's bytes while they
 * stream past on their way to disk, so that a pull or load verifies every layer against its
 * image config without reading the blob again or extracting it.
 *
 * DiffIDTap is a pass-through Transform. It sniffs the first bytes (the media type is not
 * trusted, as in decompress.ts):
 *  - plain tar: nothing more is done; the diffID is the blob's own digest (result 'plain');
 *  - gzip, or zstd where zlib decodes it: the bytes are also fed to a decoder (zlib runs on
 *    libuv's thread pool) whose output is hashed; each chunk is passed on only when the decoder
 *    took it, so the slower of file and decoder sets the pace; the stream finishes only after
 *    the decoder drained (result {diffID, tarSize});
 *  - zstd on a Node without zlib zstd (< 22.15): fzstd would decode on this thread, so nothing
 *    is done here (result 'later': hash the written file on the worker pool, blobDiffID);
 *  - xz, bzip2: the stream fails with E_UNSUPPORTED.
 * Corrupt compressed data fails the stream with E_BAD_ARCHIVE naming `what`.
 */
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as fs from 'node:fs';
import { withContext } from '../errors';
import { HashCounter } from '../util/blobfile';
import type { Digest } from '../util/digest';
import { SNIFF_BYTES, checkSupported, createDecoder, decompressStream, detectCompression, nativeZstd } from './decompress';

/**
 * zlib output chunk and input batch: each zlib call is a round trip to libuv's thread pool,
 * whose cost (on a 2-CPU VM, tens of µs) dominated with 16 KiB chunks: 20 MiB of gzip was
 * gunzipped and hashed in ~80 ms with the defaults, ~40 ms with 1 MiB chunks.
 */
const DECODE_CHUNK = 1 << 20;
const DECODE_BATCH = 1 << 20;

export interface DiffIDResult {
  diffID: Digest;
  /** size of the uncompressed tar stream */
  tarSize: number;
}

export type TapResult = DiffIDResult | 'plain' | 'later';

/** Errors of decoding name the layer; zlib's codes (Z_DATA_ERROR, …) mean a corrupt archive. */
function decodeError(e: unknown, what: string): Error {
  return withContext(e, what, (e as NodeJS.ErrnoException).code?.startsWith('Z_') ? 'E_BAD_ARCHIVE' : 'E_IO');
}

export class DiffIDTap extends Transform {
  /** Bytes not yet given to the decoder: the head until it is sniffed, then up to DECODE_BATCH. */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** undefined until the head was sniffed; 'decode': the decoder hashes what passes */
  private decided: 'plain' | 'later' | 'decode' | undefined;
  private decoder: Transform | undefined;
  private counter: HashCounter | undefined;
  private drained: Promise<void> | undefined;
  /**
   * A decoding error: the bytes keep flowing (so the blob's digest is still checked and a
   * corrupt download is reported as a digest mismatch); result() throws it.
   */
  private failure: Error | undefined;
  /** the callback of a chunk waiting for the decoder's 'drain' */
  private waiting: (() => void) | undefined;

  constructor(private readonly what: string) {
    super();
  }

  /** What the stream showed; valid once it finished (call once). */
  result(): TapResult {
    if (this.failure) throw this.failure;
    if (this.decided === 'decode') return { diffID: this.counter!.digest(), tarSize: this.counter!.size };
    if (this.decided === undefined) throw new Error('DiffIDTap.result() before the stream finished');
    return this.decided;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.decided === 'plain' || this.decided === 'later' || this.failure) {
      cb(null, chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingLen += chunk.length;
    if (this.decided === undefined) {
      if (this.pendingLen < SNIFF_BYTES) {
        cb(null, chunk);
        return;
      }
      try {
        this.decide();
      } catch (e) {
        cb(e as Error);
        return;
      }
    }
    if (this.decided !== 'decode' || this.pendingLen < DECODE_BATCH) {
      cb(null, chunk);
      return;
    }
    // pass the chunk on only when the decoder took the batch: the slower side sets the pace
    if (this.decoder!.write(this.takePending())) cb(null, chunk);
    else {
      this.waiting = () => {
        this.waiting = undefined;
        cb(null, chunk);
      };
      this.decoder!.once('drain', () => this.waiting?.());
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.decided === undefined) {
      try {
        this.decide();
      } catch (e) {
        cb(e as Error);
        return;
      }
    }
    if (this.decided !== 'decode' || this.failure) {
      cb();
      return;
    }
    if (this.pendingLen > 0) this.decoder!.write(this.takePending());
    this.decoder!.end();
    this.drained!.then(() => cb(), (e: unknown) => {
      this.failure ??= decodeError(e, this.what);
      cb();
    });
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.decoder?.destroy();
    cb(err);
  }

  private takePending(): Buffer {
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    return buf;
  }

  private decide(): void {
    const head = this.takePending();
    checkSupported(head);
    const kind = detectCompression(head);
    if (kind === 'none' || (kind === 'zstd' && !nativeZstd())) {
      this.decided = kind === 'none' ? 'plain' : 'later';
      return;
    }
    // the head is the decoder's first input
    this.pending = [head];
    this.pendingLen = head.length;
    this.decided = 'decode';
    this.decoder = createDecoder(kind, DECODE_CHUNK);
    this.counter = new HashCounter();
    const sink = new Writable({ write: (_c, _e, done) => done() });
    this.drained = pipeline(this.decoder, this.counter, sink);
    // a decoder error: remember it, let the bytes (and a chunk waiting for 'drain') pass on
    this.drained.catch((e: unknown) => {
      this.failure ??= decodeError(e, this.what);
      this.pending = [];
      this.pendingLen = 0;
      this.waiting?.();
    });
  }
}

/**
 * The diffID of a blob file (any supported compression), read once; for the worker pool
 * (workers/layer.ts op 'diffid'), where fzstd may block.
 */
export async function blobDiffIDOfFile(req: { blobPath: string; what: string }): Promise<DiffIDResult> {
  const counter = new HashCounter();
  try {
    const tar = await decompressStream(fs.createReadStream(req.blobPath, { highWaterMark: 1 << 20 }));
    await pipeline(tar, counter, new Writable({ write: (_c, _e, done) => done() }));
  } catch (e) {
    throw decodeError(e, req.what);
  }
  return { diffID: counter.digest(), tarSize: counter.size };
}
