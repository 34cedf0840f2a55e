/**
 * Layer blobs arriving from outside (pull, load): stored as blobs, each with the diffID its
 * bytes really have, so that an image whose config lists other diff_ids is refused before its
 * layers are recorded — without extracting anything (the layers are recorded deferred and made
 * on first use by LayerStore.ensureChain, which verifies the diffID once more).
 *
 *   putLayerBlob   streams a blob into the work dir (util/blobfile.ts writeVerifiedTemp),
 *                  verifying digest and size and computing its diffID on the way
 *                  (layer/diffid.ts), and commits it;
 *   blobDiffID     the diffID of a blob already in the store: from a layer recorded from that
 *                  blob, else by reading it (on the worker pool when it is compressed);
 *   blobWithDiffID a stored layer blob whose content has a given diffID (a pull then need not
 *                  fetch a layer the store has under another compression).
 */
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { writeVerifiedTemp, type Expected } from '../util/blobfile';
import { runInWorker } from '../util/pool';
import { DiffIDTap, type DiffIDResult } from '../layer/diffid';
import { SNIFF_BYTES, checkSupported, detectCompression } from '../layer/decompress';
import type { Compression } from '../image/oci';
import type { Digest } from '../util/digest';
import type { LayerTask } from '../../workers/layer';
import type { BlobRecord } from './blobs';
import type { Lease } from './lease';
import type { Store } from './store';

/**
 * What the temp file's stream may buffer: while one write is in flight, the chunks arriving
 * meanwhile are written together (writev) instead of one thread-pool round trip per ~64 KiB.
 */
const WRITE_BUFFER = 4 << 20;

export interface LayerBlob extends DiffIDResult {
  blob: BlobRecord;
}

/**
 * Stores a layer blob (held by `lease`) and returns it with its diffID. Nothing is stored when
 * the digest or size differs from `expected` or the data cannot be decompressed.
 */
export async function putLayerBlob(store: Store, src: Readable, lease: Lease, expected: Expected & { mediaType?: string }): Promise<LayerBlob> {
  const what = expected.what ?? `layer ${expected.digest ?? ''}`.trim();
  const tap = new DiffIDTap(what);
  const t = await writeVerifiedTemp(src, store.workDir(), { ...expected, what }, { through: tap, highWaterMark: WRITE_BUFFER });
  let diff: DiffIDResult;
  try {
    const r = tap.result();
    diff = r === 'plain' ? { diffID: t.digest, tarSize: t.size }
      : r === 'later' ? await runInWorker<LayerTask, DiffIDResult>('layer', { op: 'diffid', blobPath: t.tmpPath, what })
      : r;
  } catch (e) {
    await fs.promises.rm(t.tmpPath, { force: true });
    throw e;
  }
  const blob = store.blobs.commitTemp(t.tmpPath, t.digest, t.size, lease, expected.mediaType ?? null);
  return { blob, ...diff };
}

/** The compression of a stored blob, from its first bytes (media types are not trusted). */
function storedCompression(store: Store, digest: Digest): Compression | undefined {
  const head = Buffer.alloc(SNIFF_BYTES);
  let fd: number;
  try {
    fd = fs.openSync(store.blobs.path(digest), 'r');
  } catch {
    return undefined;
  }
  try {
    const n = fs.readSync(fd, head, 0, SNIFF_BYTES, 0);
    checkSupported(head.subarray(0, n));
    return detectCompression(head.subarray(0, n));
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

export interface LayerBlobMatch {
  blob: BlobRecord;
  compression: Compression;
  diffID: Digest;
  tarSize: number;
}

/**
 * A stored layer blob whose uncompressed content is `diffID` (recorded by a layer, so its
 * diffID was verified when it was stored) in one of the compressions `allowed`; undefined when
 * there is none. The caller holds it with a lease before relying on it.
 */
export function blobWithDiffID(store: Store, diffID: Digest, allowed: readonly Compression[]): LayerBlobMatch | undefined {
  const rows = store.db
    .prepare('SELECT DISTINCT blob_digest AS digest, uncompressed_size AS tarSize FROM layers WHERE diff_id = ? AND blob_digest IS NOT NULL')
    .all(diffID) as { digest: Digest; tarSize: number }[];
  for (const r of rows) {
    const blob = store.blobs.get(r.digest);
    if (!blob) continue;
    const compression = storedCompression(store, blob.digest);
    if (compression !== undefined && allowed.includes(compression)) return { blob, compression, diffID, tarSize: r.tarSize };
  }
  return undefined;
}

/** The diffID of the stored blob `blob` (see the file comment). */
export async function blobDiffID(store: Store, blob: BlobRecord, what: string): Promise<DiffIDResult> {
  const known = store.db.prepare('SELECT diff_id AS diffID, uncompressed_size AS tarSize FROM layers WHERE blob_digest = ? LIMIT 1').get(blob.digest) as DiffIDResult | undefined;
  if (known) return known;
  const file = store.blobs.path(blob.digest);
  const head = Buffer.alloc(SNIFF_BYTES);
  const fd = fs.openSync(file, 'r');
  let n: number;
  try {
    n = fs.readSync(fd, head, 0, SNIFF_BYTES, 0);
  } finally {
    fs.closeSync(fd);
  }
  checkSupported(head.subarray(0, n));
  if (detectCompression(head.subarray(0, n)) === 'none') return { diffID: blob.digest, tarSize: blob.size };
  return runInWorker<LayerTask, DiffIDResult>('layer', { op: 'diffid', blobPath: file, what });
}
