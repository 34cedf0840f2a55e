/**
 * `oci:DIR[:TAG]` — an OCI image layout directory (image-spec image-layout.md): an `oci-layout`
 * file ({"imageLayoutVersion":"1.0.0"}), `index.json` (an image index whose entries may carry an
 * `org.opencontainers.image.ref.name` annotation) and content-addressed `blobs/sha256/<hex>`.
 *
 * Source: with TAG, the index entry whose ref.name equals TAG (E_IMAGE_UNKNOWN listing the
 * available names otherwise); without TAG, every image entry. Nested indexes resolve to their
 * linux/amd64 manifest. Manifests are verified against their descriptor; getBlob streams the blob
 * file unverified (the caller verifies). The reading logic works over `LayoutFiles`, so that
 * oci-archive reads a tar in place with the same code.
 *
 * Destination (layerForm 'preserve'): blobs are verified (writeVerifiedTemp) into a staging
 * directory; nothing becomes visible before commit(). If DIR does not exist the whole layout is
 * built in a sibling staging dir and renamed to DIR at commit. If DIR is an existing layout (or an
 * empty directory) the staging dir lives inside it, and commit() moves the new blobs into
 * blobs/sha256 and rewrites index.json atomically (temp+rename), re-reading it first. An entry's
 * name is TAG, else the image's first name, else none. Name clashes follow skopeo 1.9 (measured):
 * an older entry with the same ref.name loses its name but stays (its blobs stay referenced), and
 * an unnamed entry with the same digest is replaced. abort() removes the staging dir: nothing else
 * was touched. Not handled: concurrent writers to one layout (no lock; last index.json wins).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors';
import { MT, REF_NAME_ANNOTATION, isIndexMediaType, type Descriptor, type Index, type Manifest } from '../image/oci';
import { fsyncDir, writeVerifiedTemp } from '../util/blobfile';
import { hexOf, isDigest, sha256, type Digest } from '../util/digest';
import { trackTemp } from '../util/cleanup';
import { atomicWrite, randomSuffix, requireParentDir, siblingTemp } from './tarutil';
import type { ImageDestination, ImageReference, ImageSource, ManifestBlob, PutImageInput, SourceImage } from './types';

/** Largest JSON document (index, manifest, config, manifest.json) we read. */
export const MAX_JSON = 4 << 20;

export function badArchive(where: string, member: string, why: string): KilnError {
  return new KilnError('E_BAD_ARCHIVE', `${where}: ${member}: ${why}`);
}

export function parseJsonMember(bytes: Buffer, where: string, member: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw badArchive(where, member, `invalid JSON: ${(e as Error).message}`);
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a descriptor read from `member`; E_BAD_ARCHIVE naming `ctx` ("manifests[2]"). */
export function checkDescriptor(v: unknown, where: string, member: string, ctx: string): Descriptor {
  const bad = (why: string) => badArchive(where, member, `${ctx}: ${why}`);
  if (!isObj(v)) throw bad('not an object');
  if (typeof v['mediaType'] !== 'string') throw bad('mediaType must be a string');
  if (!isDigest(v['digest'])) throw bad(`invalid digest ${JSON.stringify(v['digest'])} (want sha256:<64 hex>)`);
  if (!Number.isSafeInteger(v['size']) || (v['size'] as number) < 0) throw bad('size must be a non-negative integer');
  const a = v['annotations'];
  if (a !== undefined && (!isObj(a) || Object.values(a).some((x) => typeof x !== 'string'))) throw bad('annotations must map strings to strings');
  return v as unknown as Descriptor;
}

/** The media type a manifest declares, else a guess from its shape (docker config type ⇒ docker). */
export function manifestMediaType(parsed: unknown): string {
  if (!isObj(parsed)) return MT.ociManifest;
  if (typeof parsed['mediaType'] === 'string' && parsed['mediaType'] !== '') return parsed['mediaType'];
  if (Array.isArray(parsed['manifests'])) return MT.ociIndex;
  const cfg = parsed['config'];
  return isObj(cfg) && cfg['mediaType'] === MT.dockerConfig ? MT.dockerManifest : MT.ociManifest;
}

/** Validates a parsed index; E_BAD_ARCHIVE naming the member. */
export function checkIndex(v: unknown, where: string, member: string): Index {
  if (!isObj(v)) throw badArchive(where, member, 'not a JSON object');
  if (v['schemaVersion'] !== 2) throw badArchive(where, member, `schemaVersion must be 2, got ${JSON.stringify(v['schemaVersion'])}`);
  if (!Array.isArray(v['manifests'])) throw badArchive(where, member, 'manifests must be an array');
  v['manifests'].forEach((d, i) => checkDescriptor(d, where, member, `manifests[${i}]`));
  return v as unknown as Index;
}

/** Validates a parsed single-platform manifest; E_BAD_ARCHIVE naming the member. */
export function checkManifest(v: unknown, where: string, member: string): Manifest {
  if (!isObj(v)) throw badArchive(where, member, 'not a JSON object');
  if (v['schemaVersion'] !== 2) throw badArchive(where, member, `schemaVersion must be 2, got ${JSON.stringify(v['schemaVersion'])}`);
  checkDescriptor(v['config'], where, member, 'config');
  if (!Array.isArray(v['layers'])) throw badArchive(where, member, 'layers must be an array');
  v['layers'].forEach((d, i) => checkDescriptor(d, where, member, `layers[${i}]`));
  return v as unknown as Manifest;
}

/** The linux/amd64 entry of an index (or its only entry when that has no platform). */
export function choosePlatform(index: Index, where: string, member: string): Descriptor {
  const hit = index.manifests.find((d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64');
  if (hit) return hit;
  if (index.manifests.length === 1 && index.manifests[0]!.platform === undefined) return index.manifests[0]!;
  const have = index.manifests.map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}` : 'unspecified'));
  throw new KilnError('E_IMAGE_UNKNOWN', `${where}: ${member}: no linux/amd64 image in the index (have: ${have.join(', ') || 'none'})`);
}

/** Checks a manifest handed to putImage: digest matches its bytes, and it is a single-platform manifest. */
export function checkPutManifest(m: ManifestBlob, where: string): Manifest {
  const got = sha256(m.bytes);
  if (got !== m.digest) throw new KilnError('E_DIGEST_MISMATCH', `${where}: manifest digest mismatch: expected ${m.digest}, got ${got}`);
  if (isIndexMediaType(m.mediaType)) throw new KilnError('E_UNSUPPORTED', `${where}: storing image indexes is not supported; copy one platform`);
  try {
    return checkManifest(JSON.parse(m.bytes.toString('utf8')), where, `manifest ${m.digest}`);
  } catch (e) {
    throw new KilnError('E_BAD_MANIFEST', e instanceof Error ? e.message : String(e));
  }
}

/** Read access to a layout's files, by path relative to the layout root. */
export interface LayoutFiles {
  /** Used in messages: "oci:/x" or "oci-archive:/x.tar". */
  readonly where: string;
  /** A small file's bytes, or undefined if absent; E_BAD_ARCHIVE if larger than `max`. */
  read(rel: string, max: number): Promise<Buffer | undefined>;
  /** A stream of a file's bytes; E_BLOB_UNKNOWN if absent. */
  open(rel: string): Promise<Readable>;
  close(): Promise<void>;
}

/** LayoutFiles over a directory. */
export class DirFiles implements LayoutFiles {
  constructor(private readonly root: string, readonly where: string) {}
  async read(rel: string, max: number): Promise<Buffer | undefined> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await this.openRegular(rel);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (e instanceof KilnError) throw e;
      throw new KilnError('E_TRANSPORT', `${this.where}: ${rel}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const { size } = await fh.stat();
      if (size > max) throw badArchive(this.where, rel, `${size} bytes, more than the ${max} allowed`);
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }
  /**
   * Opens without blocking and insists on a regular file: a FIFO or device planted in a layout
   * would otherwise hang the reader (open(2) of a FIFO waits for a writer).
   */
  private async openRegular(rel: string): Promise<fs.promises.FileHandle> {
    const fh = await fs.promises.open(path.join(this.root, rel), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = await fh.stat().catch(async (e: unknown) => {
      await fh.close();
      throw e;
    });
    if (!st.isFile()) {
      await fh.close();
      throw badArchive(this.where, rel, 'not a regular file');
    }
    return fh;
  }
  async open(rel: string): Promise<Readable> {
    try {
      const fh = await this.openRegular(rel);
      return fh.createReadStream();
    } catch (e) {
      if (e instanceof KilnError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new KilnError('E_BLOB_UNKNOWN', `${this.where}: ${rel}: no such blob`);
      throw new KilnError('E_TRANSPORT', `${this.where}: ${rel}: ${(e as Error).message}`, { cause: e });
    }
  }
  async close(): Promise<void> {}
}

function blobPath(d: Digest): string {
  if (!isDigest(d)) throw new KilnError('E_INVALID_ARGUMENT', `invalid digest ${JSON.stringify(d)}`);
  return `blobs/sha256/${hexOf(d)}`;
}

/** Reads a blob fully and checks it against its descriptor. */
async function readVerified(files: LayoutFiles, d: Descriptor): Promise<Buffer> {
  const rel = blobPath(d.digest);
  const bytes = await files.read(rel, MAX_JSON);
  if (bytes === undefined) throw new KilnError('E_BLOB_UNKNOWN', `${files.where}: ${rel}: no such blob`);
  const got = sha256(bytes);
  if (got !== d.digest || bytes.length !== d.size) {
    throw new KilnError('E_DIGEST_MISMATCH', `${files.where}: ${rel}: expected ${d.digest} (${d.size} bytes), got ${got} (${bytes.length} bytes)`);
  }
  return bytes;
}

const IMAGE_TYPES = new Set<string>([MT.ociManifest, MT.dockerManifest, MT.ociIndex, MT.dockerManifestList]);

/** Reads and validates `oci-layout` and `index.json`. */
export async function readLayoutIndex(files: LayoutFiles): Promise<Index> {
  const layout = await files.read('oci-layout', MAX_JSON);
  if (layout === undefined) throw badArchive(files.where, 'oci-layout', 'missing (not an OCI image layout)');
  const lv = parseJsonMember(layout, files.where, 'oci-layout');
  if (!isObj(lv) || typeof lv['imageLayoutVersion'] !== 'string') throw badArchive(files.where, 'oci-layout', 'imageLayoutVersion must be a string');
  const raw = await files.read('index.json', MAX_JSON);
  if (raw === undefined) throw badArchive(files.where, 'index.json', 'missing');
  return checkIndex(parseJsonMember(raw, files.where, 'index.json'), files.where, 'index.json');
}

class LayoutImage implements SourceImage {
  private cached: ManifestBlob | undefined;
  constructor(private readonly files: LayoutFiles, private readonly desc: Descriptor, readonly names: string[]) {}
  async manifest(): Promise<ManifestBlob> {
    if (!this.cached) {
      const bytes = await readVerified(this.files, this.desc);
      const what = blobPath(this.desc.digest);
      checkManifest(parseJsonMember(bytes, this.files.where, what), this.files.where, what);
      this.cached = { bytes, mediaType: this.desc.mediaType, digest: this.desc.digest };
    }
    return this.cached;
  }
  getBlob(desc: Descriptor): Promise<Readable> {
    return this.files.open(blobPath(desc.digest));
  }
}

/** ImageSource over an OCI layout (directory or archive); close() closes the LayoutFiles. */
export class OciLayoutSource implements ImageSource {
  constructor(private readonly files: LayoutFiles, private readonly tag: string | undefined) {}

  async images(): Promise<SourceImage[]> {
    const index = await readLayoutIndex(this.files);
    let entries = index.manifests.filter((d) => IMAGE_TYPES.has(d.mediaType));
    if (this.tag !== undefined) {
      const named = entries.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === this.tag);
      if (named.length === 0) {
        const tags = index.manifests.map((d) => d.annotations?.[REF_NAME_ANNOTATION]).filter((t): t is string => t !== undefined);
        throw new KilnError('E_IMAGE_UNKNOWN', `${this.files.where}: no image named ${JSON.stringify(this.tag)} in the layout (available: ${tags.join(', ') || 'none'})`);
      }
      entries = named.slice(0, 1);
    }
    const out: SourceImage[] = [];
    for (const d of entries) {
      // Docker ≥ 25 and containerd put the full name here and only the tag in ref.name
      const name = d.annotations?.['io.containerd.image.name'] ?? d.annotations?.[REF_NAME_ANNOTATION];
      out.push(new LayoutImage(this.files, await this.resolve(d, 0), name === undefined ? [] : [name]));
    }
    return out;
  }

  private async resolve(d: Descriptor, depth: number): Promise<Descriptor> {
    if (!isIndexMediaType(d.mediaType)) return d;
    if (depth >= 4) throw badArchive(this.files.where, blobPath(d.digest), 'indexes nested too deeply');
    const what = blobPath(d.digest);
    const idx = checkIndex(parseJsonMember(await readVerified(this.files, d), this.files.where, what), this.files.where, what);
    return this.resolve(choosePlatform(idx, this.files.where, what), depth + 1);
  }

  close(): Promise<void> {
    return this.files.close();
  }
}

/** Merges new entries into an index's manifests the way skopeo 1.9 does (see module comment). */
function mergeEntries(manifests: Descriptor[], added: readonly Descriptor[]): Descriptor[] {
  const out = manifests.map((d) => ({ ...d, ...(d.annotations ? { annotations: { ...d.annotations } } : {}) }));
  for (const desc of added) {
    const name = desc.annotations?.[REF_NAME_ANNOTATION];
    if (name !== undefined) {
      const old = out.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === name);
      if (old?.annotations) {
        delete old.annotations[REF_NAME_ANNOTATION];
        if (Object.keys(old.annotations).length === 0) delete old.annotations;
      }
    }
    const same = out.findIndex((d) => d.digest === desc.digest && d.annotations?.[REF_NAME_ANNOTATION] === undefined);
    if (same >= 0) out[same] = desc;
    else out.push(desc);
  }
  return out;
}

const LAYOUT_FILE = '{"imageLayoutVersion":"1.0.0"}';

/** ImageDestination writing an OCI layout; see the module comment. Create with `open`. */
export class OciLayoutDestination implements ImageDestination {
  readonly layerForm = 'preserve' as const;
  readonly manifestFormat = 'oci' as const;
  private readonly staged = new Set<string>();
  private readonly added: Descriptor[] = [];
  private finished = false;

  private constructor(
    private readonly dir: string,
    private readonly tag: string | undefined,
    private readonly where: string,
    /** True when DIR already exists and we add to it; false when commit renames the staging dir to DIR. */
    private readonly existing: boolean,
    private readonly staging: string,
  ) {}

  static async open(dir: string, tag: string | undefined, where: string): Promise<OciLayoutDestination> {
    let st: fs.Stats | undefined;
    try {
      st = await fs.promises.stat(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new KilnError('E_TRANSPORT', `${where}: ${(e as Error).message}`, { cause: e });
    }
    if (st && !st.isDirectory()) throw new KilnError('E_TRANSPORT', `${where}: ${dir} exists and is not a directory`);
    if (st && (await fs.promises.readdir(dir)).length > 0) {
      const files = new DirFiles(dir, where);
      if ((await files.read('oci-layout', MAX_JSON)) === undefined) {
        throw new KilnError('E_TRANSPORT', `${where}: ${dir} is not empty and not an OCI image layout; refusing to write into it`);
      }
      if ((await files.read('index.json', MAX_JSON)) !== undefined) await readLayoutIndex(files);
    }
    if (!st) await requireParentDir(dir, where);
    const staging = st ? path.join(dir, `.kiln-staging-${randomSuffix()}`) : siblingTemp(dir, 'staging');
    trackTemp(staging);
    await fs.promises.mkdir(path.join(staging, 'blobs', 'sha256'), { recursive: true });
    return new OciLayoutDestination(dir, tag, where, st !== undefined, staging);
  }

  private live(): void {
    if (this.finished) throw new KilnError('E_INTERNAL', `${this.where}: destination already committed or aborted`);
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    if (this.staged.has(hexOf(digest))) return true;
    if (!this.existing) return false;
    return fs.promises.access(path.join(this.dir, blobPath(digest))).then(() => true, () => false);
  }

  async putBlob(stream: Readable, expected: { digest?: Digest; size?: number; mediaType: string }): Promise<{ digest: Digest; size: number }> {
    this.live();
    const what = `${expected.mediaType} ${expected.digest ?? ''} for ${this.where}`;
    const t = await writeVerifiedTemp(stream, this.staging, { ...expected, what });
    await fs.promises.rename(t.tmpPath, path.join(this.staging, blobPath(t.digest)));
    this.staged.add(hexOf(t.digest));
    return { digest: t.digest, size: t.size };
  }

  async putImage(img: PutImageInput): Promise<void> {
    this.live();
    const m = checkPutManifest(img.manifest, this.where);
    for (const d of [m.config, ...m.layers]) {
      if (!(await this.hasBlob(d.digest))) throw new KilnError('E_BLOB_UNKNOWN', `${this.where}: blob ${d.digest} of manifest ${img.manifest.digest} was not stored`);
    }
    const { digest, bytes } = img.manifest;
    if (!(await this.hasBlob(digest))) {
      await atomicWrite(path.join(this.staging, blobPath(digest)), bytes);
      this.staged.add(hexOf(digest));
    }
    const name = this.tag ?? img.names[0];
    this.added.push({
      mediaType: img.manifest.mediaType,
      digest,
      size: bytes.length,
      ...(name !== undefined && name !== '' ? { annotations: { [REF_NAME_ANNOTATION]: name } } : {}),
    });
  }

  /**
   * For a destination that creates DIR: completes the layout inside the staging dir and returns its
   * path without renaming it (oci-archive tars it). The caller then owns and removes that dir.
   */
  async finishStaging(): Promise<string> {
    this.live();
    if (this.existing) throw new KilnError('E_INTERNAL', `${this.where}: finishStaging on an existing layout`);
    this.finished = true;
    const index = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: mergeEntries([], this.added) };
    await atomicWrite(path.join(this.staging, 'oci-layout'), LAYOUT_FILE);
    await atomicWrite(path.join(this.staging, 'index.json'), JSON.stringify(index));
    await fsyncDir(path.join(this.staging, 'blobs', 'sha256'));
    return this.staging;
  }

  async commit(): Promise<void> {
    if (!this.existing) {
      try {
        await fs.promises.rename(await this.finishStaging(), this.dir);
      } catch (e) {
        await fs.promises.rm(this.staging, { recursive: true, force: true });
        throw new KilnError('E_TRANSPORT', `${this.where}: cannot create ${this.dir}: ${(e as Error).message}`, { cause: e });
      }
      await fsyncDir(path.dirname(this.dir));
      return;
    }
    this.live();
    this.finished = true;
    try {
      const blobs = path.join(this.dir, 'blobs', 'sha256');
      await fs.promises.mkdir(blobs, { recursive: true });
      for (const hex of this.staged) await fs.promises.rename(path.join(this.staging, 'blobs', 'sha256', hex), path.join(blobs, hex));
      await fsyncDir(blobs);
      const files = new DirFiles(this.dir, this.where);
      if ((await files.read('oci-layout', MAX_JSON)) === undefined) await atomicWrite(path.join(this.dir, 'oci-layout'), LAYOUT_FILE);
      const raw = await files.read('index.json', MAX_JSON);
      const index = raw === undefined ? { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] } : await readLayoutIndex(files);
      await atomicWrite(path.join(this.dir, 'index.json'), JSON.stringify({ ...index, manifests: mergeEntries(index.manifests, this.added) }));
    } finally {
      await fs.promises.rm(this.staging, { recursive: true, force: true });
    }
  }

  async abort(): Promise<void> {
    this.finished = true;
    await fs.promises.rm(this.staging, { recursive: true, force: true });
  }
}

/** `oci:DIR[:TAG]`. */
export class OciLayoutReference implements ImageReference {
  readonly transport = 'oci' as const;
  constructor(readonly dir: string, readonly tag?: string) {}
  toString(): string {
    return `oci:${this.dir}${this.tag !== undefined ? `:${this.tag}` : ''}`;
  }
  async newSource(): Promise<ImageSource> {
    const st = await fs.promises.stat(this.dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new KilnError('E_TRANSPORT', `${this.toString()}: ${this.dir} is not a directory`);
    return new OciLayoutSource(new DirFiles(this.dir, this.toString()), this.tag);
  }
  newDestination(): Promise<ImageDestination> {
    return OciLayoutDestination.open(this.dir, this.tag, this.toString());
  }
}
