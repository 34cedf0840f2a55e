/**
 * Layer work that runs on the worker pool (workers/layer.ts), so that hashing, (de)compression
 * and tar never block the calling process's event loop: extracting a stored blob (load, pull)
 * and ingesting a tar that has no blob yet (import, build). Both take and return plain data;
 * the caller verifies digests and commits the results to the store.
 */
import * as fs from 'node:fs';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { HashCounter } from '../util/blobfile';
import type { Digest } from '../util/digest';
import { applyLayerTar } from './apply';
import { KilnError, withContext } from '../errors';
import { decompressStream } from './decompress';

export interface ExtractRequest {
  /** the blob file (any supported compression) */
  blobPath: string;
  /** an existing empty directory */
  dest: string;
  what: string;
}

export interface ExtractResult {
  diffID: Digest;
  /** size of the uncompressed tar stream */
  tarSize: number;
}

export interface IngestRequest {
  /** a layer tar file, plain or compressed (gzip, zstd) */
  srcPath: string;
  /** an existing empty directory */
  dest: string;
  /** where to write the blob (created; the caller fsyncs, renames or removes it) */
  blobPath: string;
  compress: 'gzip' | 'none';
  what: string;
}

export interface IngestResult extends ExtractResult {
  blobDigest: Digest;
  blobSize: number;
}

/**
 * One pass over a layer tar that has no blob yet (import, build): decompresses it, hashes the
 * plain tar (diffID), applies it into `dest` and writes it as a blob (gzip'd or plain) with
 * its digest, all at once with backpressure from the slower of the two consumers.
 */
export async function ingestTar(req: IngestRequest): Promise<IngestResult> {
  const tar = await decompressStream(fs.createReadStream(req.srcPath)).catch((e: unknown) => {
    throw layerError(e, req.what);
  });
  const diffCounter = new HashCounter();
  const toApply = new PassThrough({ highWaterMark: 1 << 20 });
  const toBlob = new PassThrough({ highWaterMark: 1 << 20 });
  const blobCounter = new HashCounter();
  const out = fs.createWriteStream(req.blobPath, { flags: 'wx' });
  const blobDone = req.compress === 'gzip' ? pipeline(toBlob, createGzip({ level: 6 }), blobCounter, out) : pipeline(toBlob, blobCounter, out);
  const applied = applyLayerTar(toApply, req.dest, { what: req.what });
  const fanOut = pipeline(tar, diffCounter, new Writable({
    // each chunk goes to both consumers; the next comes when both took it (backpressure)
    write(chunk: Buffer, _enc, cb) {
      let pending = 2;
      const done = () => {
        if (--pending === 0) cb();
      };
      for (const s of [toApply, toBlob]) if (s.write(chunk)) done();
      else s.once('drain', done);
    },
    final(cb) {
      toApply.end();
      toBlob.end();
      cb();
    },
  }));
  try {
    await Promise.all([fanOut, applied, blobDone]);
  } catch (e) {
    // Stop every stream with the error (so each consumer rejects rather than waiting for data
    // that will not come) and let all settle: no descriptor stays open and nothing writes into
    // the caller's temp paths after we reply.
    const err = e instanceof Error ? e : new Error(String(e));
    for (const s of [tar, toApply, toBlob, out]) s.destroy(err);
    await Promise.allSettled([fanOut, applied, blobDone]);
    throw layerError(e, req.what);
  }
  return { diffID: diffCounter.digest(), tarSize: diffCounter.size, blobDigest: blobCounter.digest(), blobSize: blobCounter.size };
}

export async function extractBlob(req: ExtractRequest): Promise<ExtractResult> {
  const tar = await decompressStream(fs.createReadStream(req.blobPath)).catch((e: unknown) => {
    throw layerError(e, req.what);
  });
  const counter = new HashCounter();
  const piped = pipeline(tar, counter);
  const applied = applyLayerTar(counter, req.dest, { what: req.what });
  try {
    await Promise.all([piped, applied]);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    tar.destroy(err);
    counter.destroy(err);
    await Promise.allSettled([piped, applied]);
    throw layerError(e, req.what);
  }
  return { diffID: counter.digest(), tarSize: counter.size };
}

/** Errors name the layer they concern (decompression errors alone do not say which file). */
function layerError(e: unknown, what: string): KilnError {
  return withContext(e, what, (e as NodeJS.ErrnoException).code?.startsWith('Z_') ? 'E_BAD_ARCHIVE' : 'E_IO');
}
