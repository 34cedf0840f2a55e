/**
 * Blobs staged for a file destination (dir:, docker-archive:): each is verified while it is
 * written into the destination's private staging dir and kept there as <hex>, invisible at
 * the destination path until the destination commits.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { writeVerifiedTemp } from '../util/blobfile';
import { hexOf, type Digest } from '../util/digest';

export class StagedBlobs {
  private readonly staged = new Set<Digest>();
  constructor(private readonly staging: string, private readonly where: string) {}

  has(digest: Digest): boolean {
    return this.staged.has(digest);
  }

  path(digest: Digest): string {
    return path.join(this.staging, hexOf(digest));
  }

  async put(stream: Readable, expected: { digest?: Digest; size?: number; mediaType: string }): Promise<{ digest: Digest; size: number }> {
    const t = await writeVerifiedTemp(stream, this.staging, { ...expected, what: `${expected.mediaType} ${expected.digest ?? ''} for ${this.where}` });
    await fs.promises.rename(t.tmpPath, this.path(t.digest));
    this.staged.add(t.digest);
    return { digest: t.digest, size: t.size };
  }
}

/**
 * Base of the file destinations that stage blobs (dir:, docker-archive:): hasBlob/putBlob go
 * to the staging dir; subclasses record images and commit or abort.
 */
export abstract class StagingDestination {
  protected readonly staged: StagedBlobs;
  constructor(staging: string, where: string) {
    this.staged = new StagedBlobs(staging, where);
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return this.staged.has(digest);
  }

  putBlob(stream: Readable, expected: { digest?: Digest; size?: number; mediaType: string }): Promise<{ digest: Digest; size: number }> {
    return this.staged.put(stream, expected);
  }
}
