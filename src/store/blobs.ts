/**
 * Content-addressed blobs: blobs/sha256/<hex>, one record each. put() streams into the work
 * dir verifying digest and size, then renames into place and records the blob in one write
 * transaction (store.ts explains why that order keeps concurrent processes consistent).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { KilnError } from '../errors';
import { hexOf, type Digest } from '../util/digest';
import { writeVerifiedTemp, type Expected } from '../util/blobfile';
import type { Store } from './store';
import type { Lease } from './lease';

export interface BlobRecord {
  digest: Digest;
  size: number;
  mediaType: string | null;
}

export class BlobStore {
  constructor(private readonly store: Store) {}

  path(digest: Digest): string {
    return path.join(this.store.paths.blobs, hexOf(digest));
  }

  get(digest: Digest): BlobRecord | undefined {
    const row = this.store.db.prepare('SELECT digest, size, media_type AS mediaType FROM blobs WHERE digest = ?').get(digest);
    return row as BlobRecord | undefined;
  }

  has(digest: Digest): boolean {
    return this.get(digest) !== undefined;
  }

  /**
   * Stores a stream as a blob, verifying `expected` while streaming; the lease holds it.
   * If the blob is already present the stream is still consumed and verified (the caller
   * should check has() first to skip the transfer).
   */
  async put(src: Readable, lease: Lease, expected: Expected & { mediaType?: string } = {}): Promise<BlobRecord> {
    const tmp = await writeVerifiedTemp(src, this.store.workDir(), expected);
    return this.commitTemp(tmp.tmpPath, tmp.digest, tmp.size, lease, expected.mediaType ?? null);
  }

  async putBuffer(buf: Buffer, lease: Lease, expected: Expected & { mediaType?: string } = {}): Promise<BlobRecord> {
    return this.put(Readable.from([buf]), lease, expected);
  }

  /**
   * Makes an already verified and fsynced temp file (inside the work dir) the blob `digest`.
   * Used by put() and by layer ingestion, which writes blobs while extracting.
   */
  commitTemp(tmpPath: string, digest: Digest, size: number, lease: Lease, mediaType: string | null): BlobRecord {
    const final = this.path(digest);
    const rec = this.store.writeTx(() => {
      const existing = this.get(digest);
      if (!existing) {
        fs.renameSync(tmpPath, final);
        this.store.db.prepare('INSERT INTO blobs (digest, size, media_type, created) VALUES (?, ?, ?, ?)').run(digest, size, mediaType, Date.now());
      }
      lease.hold('blob', digest);
      return existing ?? { digest, size, mediaType };
    });
    fs.rmSync(tmpPath, { force: true });
    return rec;
  }

  /** The whole blob in memory (manifests and configs). */
  read(digest: Digest): Buffer {
    try {
      return fs.readFileSync(this.path(digest));
    } catch (e) {
      throw this.missing(digest, e);
    }
  }

  openRead(digest: Digest): Readable {
    if (!this.has(digest)) throw this.missing(digest);
    return fs.createReadStream(this.path(digest));
  }

  private missing(digest: Digest, cause?: unknown): KilnError {
    return new KilnError('E_BLOB_UNKNOWN', `blob ${digest} is not in the store ${this.store.paths.root}`, {
      hint: 'run `kiln system check` to find inconsistencies',
      cause,
    });
  }
}
