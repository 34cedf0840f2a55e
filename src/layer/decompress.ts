/**
 * Layer blob decompression by content sniffing (the media type is not trusted: docker-archive
 * and some registries mislabel layers).
 *
 * - `detectCompression(firstBytes)`: 'gzip' (1f 8b), 'zstd' (28 b5 2f fd), else 'none'.
 * - `decompressStream(src)`: reads (at most) the first 6 bytes of `src`, puts them back, and
 *   returns the plain tar stream. gzip → zlib gunzip; zstd → zlib's zstd decoder when the
 *   running Node has one (≥ 22.15), else the fzstd package; plain → `src` itself. xz and bzip2
 *   are recognised only to be refused with E_UNSUPPORTED (OCI layers are never xz/bzip2).
 *   Errors of `src` reach the returned stream (it is destroyed with them); corrupt compressed
 *   data surfaces as an 'error' of the returned stream (zlib errors carry code "Z_DATA_ERROR"
 *   etc.; applyLayerTar maps those to E_BAD_ARCHIVE).
 */
import { Readable, Transform, pipeline } from 'node:stream';
import * as zlib from 'node:zlib';
import { KilnError } from '../errors';

export type Compression = 'none' | 'gzip' | 'zstd';

export function detectCompression(firstBytes: Buffer): Compression {
  const b = firstBytes;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
  return 'none';
}

/** How many leading bytes detectCompression and checkSupported need to decide. */
export const SNIFF_BYTES = 6;

function otherCompression(b: Buffer): string | null {
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.length >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return null;
}

/** Throws E_UNSUPPORTED when the first bytes of a layer say xz or bzip2 (recognised, never valid). */
export function checkSupported(firstBytes: Buffer): void {
  const other = otherCompression(firstBytes);
  if (other) {
    throw new KilnError('E_UNSUPPORTED', `layer is ${other}-compressed, which OCI layers never are`, {
      hint: 'OCI layers are plain tar, gzip or zstd; recompress the layer with gzip',
    });
  }
}

/** zlib's zstd decoder, where Node has one (≥ 22.15). */
const zlibZstd = (zlib as unknown as { createZstdDecompress?: (o: zlib.ZlibOptions) => Transform }).createZstdDecompress;

/**
 * A fresh decoder stream for a compressed layer: zlib's (gzip; zstd on Node ≥ 22.15), else
 * fzstd for zstd. `chunkSize`: zlib's output chunk size (default 16 KiB); larger chunks mean
 * far fewer callbacks on the calling thread when the output is only hashed.
 */
export function createDecoder(kind: Exclude<Compression, 'none'>, chunkSize?: number): Transform {
  const opts = chunkSize ? { chunkSize } : {};
  if (kind === 'gzip') return zlib.createGunzip(opts);
  return zlibZstd ? zlibZstd.call(zlib, opts) : fzstdDecoder();
}

/** Whether zstd is decoded by zlib off the main thread (Node ≥ 22.15) rather than by fzstd on the calling thread. */
export function nativeZstd(): boolean {
  return typeof zlibZstd === 'function';
}

/**
 * Peeks at up to `n` bytes of a paused stream. Unless the stream ended meanwhile (then `head`
 * is all it had), the bytes are put back with unshift() synchronously inside the 'readable'
 * handler: deferring that past an await would let a stream whose EOF was already read emit
 * 'end' first, and the unshifted bytes would be lost.
 */
function readHead(src: Readable, n: number): Promise<{ head: Buffer; ended: boolean }> {
  if (src.readableEnded) return Promise.resolve({ head: Buffer.alloc(0), ended: true });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let len = 0;
    const done = (ended: boolean) => {
      cleanup();
      const head = Buffer.concat(chunks);
      if (!ended) src.unshift(head);
      resolve({ head, ended });
    };
    const onError = (e: unknown) => {
      cleanup();
      reject(e);
    };
    const onEnd = () => done(true);
    const onReadable = () => {
      let c: Buffer | null;
      while (len < n && (c = src.read() as Buffer | null) !== null) {
        chunks.push(c);
        len += c.length;
      }
      if (len >= n) done(false);
    };
    const cleanup = () => {
      src.off('readable', onReadable);
      src.off('end', onEnd);
      src.off('error', onError);
    };
    src.on('readable', onReadable);
    src.on('end', onEnd);
    src.on('error', onError);
  });
}

/**
 * fzstd, a pure-JS streaming zstd decoder, for a Node without zlib zstd: synchronous per chunk
 * (layer extraction runs on the worker pool, so that is fine).
 */
function fzstdDecoder(): Transform {
  const { Decompress } = require('fzstd') as typeof import('fzstd');
  let out: Transform;
  const d = new Decompress((chunk) => {
    out.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  });
  out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        d.push(chunk);
        cb();
      } catch (e) {
        cb(new KilnError('E_BAD_ARCHIVE', `corrupt zstd data: ${(e as Error).message}`));
      }
    },
    flush(cb) {
      try {
        d.push(new Uint8Array(0), true);
        cb();
      } catch (e) {
        cb(new KilnError('E_BAD_ARCHIVE', `corrupt or truncated zstd data: ${(e as Error).message}`));
      }
    },
  });
  return out;
}

/** Returns the uncompressed tar stream of `src` (see the file comment). */
export async function decompressStream(src: Readable): Promise<Readable> {
  let head: Buffer;
  let ended: boolean;
  try {
    ({ head, ended } = await readHead(src, SNIFF_BYTES));
  } catch (e) {
    throw e instanceof KilnError ? e : new KilnError('E_IO', `reading layer data: ${(e as Error).message}`, { cause: e });
  }
  const kind = detectCompression(head);
  try {
    checkSupported(head);
  } catch (e) {
    src.destroy();
    throw e;
  }
  const input: Readable = ended ? Readable.from(head.length ? [head] : [], { objectMode: false }) : src;
  if (kind === 'none') return input;
  const decoder = createDecoder(kind);
  // pipeline destroys the decoder with src's error (and src when the consumer gives up).
  pipeline(input, decoder, () => undefined);
  return decoder;
}
