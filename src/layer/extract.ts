/**
 * Extracting a stored layer blob into a directory: decompress, hash the plain tar (its diffID)
 * and apply it, in one pass. Runs inside a worker (workers/extract-layer.ts) so that hashing and
 * decompression never block the calling process's event loop; it takes and returns only plain
 * data, and the caller verifies the diffID.
 */
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { HashCounter } from '../util/blobfile';
import type { Digest } from '../util/digest';
import { applyLayerTar } from './apply';
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

export async function extractBlob(req: ExtractRequest): Promise<ExtractResult> {
  const tar = await decompressStream(fs.createReadStream(req.blobPath));
  const counter = new HashCounter();
  const applied = applyLayerTar(counter, req.dest, { what: req.what });
  await Promise.all([pipeline(tar, counter), applied]);
  return { diffID: counter.digest(), tarSize: counter.size };
}
