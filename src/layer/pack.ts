/**
 * Turning a build step's upper directory into a layer blob, on the worker pool: one walk of the
 * directory (diff.ts) produces the OCI layer tar, which is hashed for its diffID and, in the
 * same pass, gzip-compressed and hashed again for the blob digest (an uncompressed blob is the
 * tar: its digest is the diffID). The directory itself is kept: it already is the layer's
 * overlay form (whiteouts as overlay writes them), so the caller renames it into the store
 * instead of extracting the tar again.
 */
import * as fs from 'node:fs';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { HashCounter } from '../util/blobfile';
import { withContext } from '../errors';
import type { Digest } from '../util/digest';
import { writeLayerTar } from './diff';

export interface PackRequest {
  /** the directory to archive (an overlay upper dir) */
  dir: string;
  /** where to write the blob (created; the caller fsyncs, renames or removes it) */
  blobPath: string;
  compress: 'gzip' | 'none';
  /** seconds since the epoch: no entry's mtime is later (reproducible builds) */
  clampMtime?: number;
  what: string;
}

export interface PackResult {
  diffID: Digest;
  tarSize: number;
  blobDigest: Digest;
  blobSize: number;
}

export async function packDir(req: PackRequest): Promise<PackResult> {
  const tar = new PassThrough({ highWaterMark: 1 << 20 });
  const diff = new HashCounter();
  const blob = new HashCounter();
  const out = fs.createWriteStream(req.blobPath, { flags: 'wx' });
  // an uncompressed blob is the tar itself: its digest is the diffID, hashed once
  const written = req.compress === 'gzip' ? pipeline(tar, diff, createGzip({ level: 1 }), blob, out) : pipeline(tar, diff, out);
  try {
    await Promise.all([writeLayerTar(req.dir, tar, { clampMtime: req.clampMtime }), written]);
  } catch (e) {
    tar.destroy();
    await written.catch(() => undefined);
    throw withContext(e, req.what, 'E_IO');
  }
  const diffID = diff.digest();
  if (req.compress === 'none') return { diffID, tarSize: diff.size, blobDigest: diffID, blobSize: diff.size };
  return { diffID, tarSize: diff.size, blobDigest: blob.digest(), blobSize: blob.size };
}
