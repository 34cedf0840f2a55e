/**
 * `dir:PATH` — containers/image's directory transport: a `version` file
 * ("Directory Transport Version: 1.1\n"), `manifest.json` (the manifest's exact bytes), and every
 * blob in a file named by its hex digest (no "sha256:" prefix; version 1.0 named layers
 * `<hex>.tar`, which the source also accepts). One image per directory. When manifest.json is an
 * index (skopeo copy --all), the linux/amd64 instance is read from `<hex>.manifest.json`.
 *
 * Source: names are always empty (the format records none); the manifest is checked to be a
 * single-platform manifest; getBlob streams the blob file unverified (the caller verifies).
 *
 * Destination: like containers/image, refuses a PATH that exists, is not empty and is not a
 * previous `dir:` image (its `version` file must read exactly as above); otherwise the image
 * replaces it. Blobs are verified into a hidden staging dir next to PATH and commit() writes
 * manifest.json and version there and renames it to PATH (an existing PATH is first renamed aside
 * and removed after), so nothing is visible before commit; abort() removes the staging dir.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { StagingDestination } from './staging';
import { trackTemp } from '../util/cleanup';
import { KilnError } from '../errors';
import { isIndexMediaType, type Descriptor } from '../image/oci';
import { fsyncDir } from '../util/blobfile';
import { hexOf, isDigest, sha256 } from '../util/digest';
import {
  badArchive,
  checkIndex,
  checkManifest,
  checkPutManifest,
  choosePlatform,
  DirFiles,
  manifestMediaType,
  MAX_JSON,
  parseJsonMember,
} from './oci-layout';
import { atomicWrite, requireParentDir, siblingTemp } from './tarutil';
import type { ImageDestination, ImageReference, ImageSource, ManifestBlob, PutImageInput, SourceImage } from './types';

export const DIR_VERSION = 'Directory Transport Version: 1.1\n';

class DirImage implements SourceImage {
  readonly names: string[] = [];
  private cached: ManifestBlob | undefined;
  constructor(private readonly files: DirFiles) {}

  async manifest(): Promise<ManifestBlob> {
    if (this.cached) return this.cached;
    const where = this.files.where;
    let member = 'manifest.json';
    let bytes = await this.files.read(member, MAX_JSON);
    if (bytes === undefined) throw badArchive(where, member, 'missing (not a dir: image)');
    let parsed = parseJsonMember(bytes, where, member);
    if (isIndexMediaType(manifestMediaType(parsed))) {
      const d = choosePlatform(checkIndex(parsed, where, member), where, member);
      member = `${hexOf(d.digest)}.manifest.json`;
      bytes = await this.files.read(member, MAX_JSON);
      if (bytes === undefined) throw badArchive(where, member, `missing (instance ${d.digest} of manifest.json)`);
      if (sha256(bytes) !== d.digest) throw new KilnError('E_DIGEST_MISMATCH', `${where}: ${member}: content digest is ${sha256(bytes)}, not ${d.digest}`);
      parsed = parseJsonMember(bytes, where, member);
    }
    checkManifest(parsed, where, member);
    this.cached = { bytes, mediaType: manifestMediaType(parsed), digest: sha256(bytes) };
    return this.cached;
  }

  async getBlob(desc: Descriptor): Promise<Readable> {
    if (!isDigest(desc.digest)) throw new KilnError('E_INVALID_ARGUMENT', `${this.files.where}: invalid digest ${JSON.stringify(desc.digest)}`);
    const hex = hexOf(desc.digest);
    try {
      return await this.files.open(hex);
    } catch (e) {
      if (!(e instanceof KilnError && e.code === 'E_BLOB_UNKNOWN')) throw e;
      return this.files.open(`${hex}.tar`);
    }
  }
}

class DirSource implements ImageSource {
  constructor(private readonly files: DirFiles) {}
  async images(): Promise<SourceImage[]> {
    const v = await this.files.read('version', 4096);
    if (v !== undefined && !/^Directory Transport Version: 1\.[01]\n?$/.test(v.toString('utf8'))) {
      throw badArchive(this.files.where, 'version', `unsupported version ${JSON.stringify(v.toString('utf8').slice(0, 80))}`);
    }
    return [new DirImage(this.files)];
  }
  close(): Promise<void> {
    return this.files.close();
  }
}

/** Throws unless `dir` is absent, an empty directory, or a previous dir: image. Returns whether it exists. */
async function checkReplaceable(dir: string, where: string): Promise<boolean> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new KilnError('E_TRANSPORT', `${where}: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isDirectory()) throw new KilnError('E_TRANSPORT', `${where}: ${dir} exists and is not a directory`);
  if ((await fs.promises.readdir(dir)).length === 0) return true;
  const v = await fs.promises.readFile(path.join(dir, 'version'), 'utf8').catch(() => undefined);
  if (v !== DIR_VERSION) {
    throw new KilnError('E_TRANSPORT', `${where}: ${dir} is not empty and not a containers image directory; refusing to overwrite it`, {
      hint: 'choose a new or empty directory',
    });
  }
  return true;
}

class DirDestination extends StagingDestination implements ImageDestination {
  readonly layerForm = 'preserve' as const;
  readonly manifestFormat = 'docker' as const;
  private wrote = false;
  constructor(private readonly dir: string, private readonly where: string, private readonly staging: string) {
    super(staging, where);
  }

  async putImage(img: PutImageInput): Promise<void> {
    if (this.wrote) throw new KilnError('E_UNSUPPORTED', `${this.where}: a dir: destination holds exactly one image`);
    const m = checkPutManifest(img.manifest, this.where);
    for (const d of [m.config, ...m.layers]) {
      if (!this.staged.has(d.digest)) throw new KilnError('E_BLOB_UNKNOWN', `${this.where}: blob ${d.digest} of manifest ${img.manifest.digest} was not stored`);
    }
    await atomicWrite(path.join(this.staging, 'manifest.json'), img.manifest.bytes);
    this.wrote = true;
  }

  async commit(): Promise<void> {
    let old: string | undefined;
    try {
      if (!this.wrote) throw new KilnError('E_TRANSPORT', `${this.where}: no image was written`);
      await atomicWrite(path.join(this.staging, 'version'), DIR_VERSION);
      await fsyncDir(this.staging);
      if (await checkReplaceable(this.dir, this.where)) {
        old = siblingTemp(this.dir, 'old');
        await fs.promises.rename(this.dir, old);
      }
      await fs.promises.rename(this.staging, this.dir);
      await fsyncDir(path.dirname(this.dir));
    } catch (e) {
      if (old !== undefined) await fs.promises.rename(old, this.dir).catch(() => undefined);
      old = undefined;
      throw e instanceof KilnError ? e : new KilnError('E_TRANSPORT', `${this.where}: ${(e as Error).message}`, { cause: e });
    } finally {
      await fs.promises.rm(this.staging, { recursive: true, force: true });
      if (old !== undefined) await fs.promises.rm(old, { recursive: true, force: true });
    }
  }

  async abort(): Promise<void> {
    await fs.promises.rm(this.staging, { recursive: true, force: true });
  }
}

/** `dir:PATH`. */
export class DirReference implements ImageReference {
  readonly transport = 'dir' as const;
  constructor(readonly dir: string) {}
  toString(): string {
    return `dir:${this.dir}`;
  }
  async newSource(): Promise<ImageSource> {
    const st = await fs.promises.stat(this.dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new KilnError('E_TRANSPORT', `${this.toString()}: ${this.dir} is not a directory`);
    return new DirSource(new DirFiles(this.dir, this.toString()));
  }
  async newDestination(): Promise<ImageDestination> {
    await checkReplaceable(this.dir, this.toString());
    await requireParentDir(this.dir, this.toString());
    const staging = siblingTemp(this.dir, 'staging');
    trackTemp(staging);
    await fs.promises.mkdir(staging);
    return new DirDestination(this.dir, this.toString(), staging);
  }
}
