/**
 * `oci-archive:PATH[:TAG]` — a tar of an OCI image layout (what `skopeo copy … oci-archive:` and
 * `podman save --format oci-archive` write).
 *
 * Source: the archive is indexed in place (tarutil.TarArchive: one header read per member, no
 * extraction, no copy), and the oci-layout reading code runs over it through `LayoutFiles`; blobs
 * are streamed straight out of the archive file. This differs from containers/image, which
 * extracts into a temp dir: an in-place index needs no extra disk for GB archives. A gzip'd
 * archive is decompressed to a temp file first, which close() removes.
 *
 * Destination: the layout is built by an OciLayoutDestination in a hidden temp dir next to PATH;
 * commit() tars it deterministically (oci-layout, index.json, blobs/, blobs/sha256/, blobs sorted
 * by digest; mtime 0, uid/gid 0) into PATH.tmp-<rand>, fsyncs, renames it to PATH (replacing an
 * existing file, like skopeo) and removes the temp dir. abort() leaves neither PATH nor temp files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors';
import type { Digest } from '../util/digest';
import { badArchive, OciLayoutDestination, OciLayoutSource, type LayoutFiles } from './oci-layout';
import { siblingTemp, TarArchive, writeTarFile, type PackEntry } from './tarutil';
import type { ImageDestination, ImageReference, ImageSource, PutImageInput } from './types';

/** LayoutFiles over an indexed tar; close() closes the archive. */
export class TarFiles implements LayoutFiles {
  constructor(private readonly archive: TarArchive) {}
  get where(): string {
    return this.archive.where;
  }
  async read(rel: string, max: number): Promise<Buffer | undefined> {
    const m = this.archive.lookup(rel);
    if (m === undefined) return undefined;
    if (m.size > max) throw badArchive(this.where, rel, `${m.size} bytes, more than the ${max} allowed`);
    return this.archive.read(m, max);
  }
  async open(rel: string): Promise<Readable> {
    const m = this.archive.lookup(rel);
    if (m === undefined) throw new KilnError('E_BLOB_UNKNOWN', `${this.where}: ${rel}: no such blob in the archive`);
    return this.archive.stream(m);
  }
  close(): Promise<void> {
    return this.archive.close();
  }
}

class OciArchiveDestination implements ImageDestination {
  readonly layerForm = 'preserve' as const;
  readonly manifestFormat = 'oci' as const;
  constructor(private readonly inner: OciLayoutDestination, private readonly file: string, private readonly where: string) {}

  hasBlob(digest: Digest): Promise<boolean> {
    return this.inner.hasBlob(digest);
  }
  putBlob(stream: Readable, expected: { digest?: Digest; size?: number; mediaType: string }): Promise<{ digest: Digest; size: number }> {
    return this.inner.putBlob(stream, expected);
  }
  putImage(img: PutImageInput): Promise<void> {
    return this.inner.putImage(img);
  }

  async commit(): Promise<void> {
    let dir: string | undefined;
    try {
      dir = await this.inner.finishStaging();
      const blobs = (await fs.promises.readdir(path.join(dir, 'blobs', 'sha256'))).sort();
      const entries: PackEntry[] = [
        { name: 'oci-layout', type: 'file', file: path.join(dir, 'oci-layout') },
        { name: 'index.json', type: 'file', file: path.join(dir, 'index.json') },
        { name: 'blobs', type: 'directory' },
        { name: 'blobs/sha256', type: 'directory' },
        ...blobs.map((b): PackEntry => ({ name: `blobs/sha256/${b}`, type: 'file', file: path.join(dir!, 'blobs', 'sha256', b) })),
      ];
      await writeTarFile(this.file, entries);
    } catch (e) {
      await this.inner.abort();
      throw e instanceof KilnError ? e : new KilnError('E_TRANSPORT', `${this.where}: ${(e as Error).message}`, { cause: e });
    } finally {
      if (dir !== undefined) await fs.promises.rm(dir, { recursive: true, force: true });
    }
  }

  abort(): Promise<void> {
    return this.inner.abort();
  }
}

/** `oci-archive:PATH[:TAG]`. */
export class OciArchiveReference implements ImageReference {
  readonly transport = 'oci-archive' as const;
  /** `opened`: the archive already indexed by the caller (load's detection), used by the first newSource(). */
  constructor(readonly file: string, readonly tag?: string, private opened?: TarArchive) {}
  toString(): string {
    return `oci-archive:${this.file}${this.tag !== undefined ? `:${this.tag}` : ''}`;
  }
  async newSource(): Promise<ImageSource> {
    const tar = this.opened ?? (await TarArchive.open(this.file, this.toString()));
    this.opened = undefined;
    return new OciLayoutSource(new TarFiles(tar), this.tag);
  }
  async newDestination(): Promise<ImageDestination> {
    const st = await fs.promises.stat(this.file).catch(() => undefined);
    if (st?.isDirectory()) throw new KilnError('E_TRANSPORT', `${this.toString()}: ${this.file} is a directory`);
    const inner = await OciLayoutDestination.open(siblingTemp(this.file, 'layout'), this.tag, this.toString());
    return new OciArchiveDestination(inner, this.file, this.toString());
  }
}
