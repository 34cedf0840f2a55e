/**
 * The local kiln store as a transport ("kiln-storage:NAME", or a bare image name/ID), like
 * containers/image's containers-storage. As a Source it yields one stored image (or, with
 * StorageReference.forImages, several). As a Destination (pull, load) it stores blobs and
 * records the image with its names, all under one lease that commit()/abort() release (abort
 * also garbage-collects what it wrote). Layers are not extracted: each layer blob's diffID is
 * computed while it streams in (store/layer-blobs.ts), putImage refuses the image with
 * E_DIGEST_MISMATCH unless every layer has the diffID its config lists, and the layers are
 * recorded deferred (extracted = 0); LayerStore.ensureChain makes their dirs on first use.
 * A destination can also take layers the store already has under another blob with the same
 * diffID (adoptStoredLayers, before the copy): those are not fetched, and the image is recorded
 * with a manifest naming the stored blobs (podman, too, pushes such an image with other digests).
 */
import type { Readable } from 'node:stream';
import { KilnError } from '../errors';
import type { Digest } from '../util/digest';
import type { Store } from '../store/store';
import { Lease } from '../store/lease';
import type { ImageRecord } from '../store/images';
import { blobDiffID, blobWithDiffID, putLayerBlob, type LayerBlobMatch } from '../store/layer-blobs';
import type { DiffIDResult } from '../layer/diffid';
import { MT, layerCompression, type Compression, type Descriptor, type Manifest } from '../image/oci';
import { sha256 } from '../util/digest';
import { normalizeName, storedName } from '../image/reference';
import { parseConfig, parseManifest } from '../image/manifest';
import type { ImageDestination, ImageReference, ImageSource, ManifestBlob, PutImageInput, SourceImage } from './types';

class StoredImage implements SourceImage {
  readonly names: string[];
  constructor(private readonly store: Store, private readonly img: ImageRecord) {
    this.names = img.names;
  }
  async manifest(): Promise<ManifestBlob> {
    return { bytes: this.store.blobs.read(this.img.manifestDigest), mediaType: this.img.manifestMediaType, digest: this.img.manifestDigest };
  }
  async getBlob(desc: Descriptor): Promise<Readable> {
    return this.store.blobs.openRead(desc.digest);
  }
}

class StorageSource implements ImageSource {
  constructor(private readonly store: Store, private readonly imgs: ImageRecord[]) {}
  async images(): Promise<SourceImage[]> {
    return this.imgs.map((i) => new StoredImage(this.store, i));
  }
  async close(): Promise<void> {}
}

class StorageDestination implements ImageDestination {
  readonly layerForm = 'preserve' as const;
  readonly manifestFormat = 'any' as const;
  private readonly lease: Lease;
  /** Images recorded by this destination, in order. */
  readonly stored: ImageRecord[] = [];
  /** Per image put, its ID and the names this copy gave it (what `load` reports). */
  readonly loaded: { id: string; names: string[] }[] = [];
  private readonly created: string[] = [];
  /** The diffID of every layer blob this destination stored or checked, by blob digest. */
  private readonly diffIDs = new Map<Digest, DiffIDResult>();
  /** Layer blobs of the incoming image replaced by stored blobs of the same diffID, by digest. */
  private readonly adopted = new Map<Digest, LayerBlobMatch>();

  constructor(private readonly store: Store, private readonly fixedName: string | undefined, lease: Lease) {
    this.lease = lease;
  }

  /** True too for a layer blob taken from the store (adoptStoredLayers). */
  async hasBlob(digest: Digest): Promise<boolean> {
    if (this.adopted.has(digest)) return true;
    return this.store.writeTx(() => {
      const has = this.store.blobs.has(digest);
      if (has) this.lease.hold('blob', digest);
      return has;
    });
  }

  /** Layer media types also get their diffID computed on the way in (see the file comment). */
  async putBlob(stream: Readable, expected: { digest?: Digest; size?: number; mediaType: string }): Promise<{ digest: Digest; size: number }> {
    const what = `blob ${expected.digest ?? ''}`.trim();
    if (layerCompression(expected.mediaType) === undefined) return this.store.blobs.put(stream, this.lease, { ...expected, what });
    const r = await putLayerBlob(this.store, stream, this.lease, { ...expected, what });
    this.diffIDs.set(r.blob.digest, { diffID: r.diffID, tarSize: r.tarSize });
    return { digest: r.blob.digest, size: r.blob.size };
  }

  /**
   * For each layer of `manifest` whose blob the store lacks: a stored blob with the diffID the
   * config lists for it (`diffIDs`, verified when that blob was stored), in a compression the
   * manifest's type can name. Each one found is held by the lease and counts as present
   * (hasBlob), so the copy does not fetch it; putImage records it. Call before the layers are
   * copied; returns the adopted layers' digests.
   */
  adoptStoredLayers(manifest: Manifest, mediaType: string, diffIDs: readonly Digest[]): Digest[] {
    const docker = mediaType === MT.dockerManifest;
    const allowed: Compression[] = docker ? ['gzip', 'none'] : ['gzip', 'zstd', 'none'];
    const out: Digest[] = [];
    this.store.writeTx(() => {
      for (const [i, l] of manifest.layers.entries()) {
        const diffID = diffIDs[i];
        if (diffID === undefined || layerCompression(l.mediaType) === undefined || l.mediaType.includes('nondistributable')) continue;
        if (this.adopted.has(l.digest) || this.store.blobs.has(l.digest)) continue;
        const m = blobWithDiffID(this.store, diffID, allowed);
        if (!m) continue;
        this.lease.hold('blob', m.blob.digest);
        this.adopted.set(l.digest, m);
        this.diffIDs.set(m.blob.digest, { diffID: m.diffID, tarSize: m.tarSize });
        out.push(l.digest);
      }
    });
    return out;
  }

  /**
   * The manifest to record when layers were adopted: the incoming one with those layers'
   * descriptors naming the stored blobs (annotations kept); the incoming one otherwise.
   */
  private recordedManifest(img: PutImageInput, manifest: Manifest): { bytes: Buffer; digest: Digest } {
    if (!manifest.layers.some((l) => this.adopted.has(l.digest))) return { bytes: img.manifest.bytes, digest: img.manifest.digest };
    const docker = img.manifest.mediaType === MT.dockerManifest;
    const typeOf: Record<Compression, string> = docker
      ? { none: MT.dockerLayer, gzip: MT.dockerLayerGzip, zstd: MT.ociLayerZstd }
      : { none: MT.ociLayer, gzip: MT.ociLayerGzip, zstd: MT.ociLayerZstd };
    const raw = JSON.parse(img.manifest.bytes.toString('utf8')) as { layers: Descriptor[] };
    raw.layers = raw.layers.map((l) => {
      const a = this.adopted.get(l.digest);
      return a ? { ...l, mediaType: typeOf[a.compression], digest: a.blob.digest, size: a.blob.size } : l;
    });
    const bytes = Buffer.from(JSON.stringify(raw));
    return { bytes, digest: sha256(bytes) };
  }

  /**
   * The uncompressed size of layer blob `l` after checking that its content has the diffID
   * `want` (E_DIGEST_MISMATCH otherwise).
   */
  private async verifyLayer(l: Descriptor, want: Digest, what: string): Promise<number> {
    let got = this.diffIDs.get(this.adopted.get(l.digest)?.blob.digest ?? l.digest);
    if (got === undefined) {
      const blob = this.store.blobs.get(l.digest);
      if (!blob) throw new KilnError('E_BLOB_UNKNOWN', `${what}: blob ${l.digest} was not stored before its image`);
      got = await blobDiffID(this.store, blob, what);
      this.diffIDs.set(l.digest, got);
    }
    if (got.diffID !== want) {
      throw new KilnError('E_DIGEST_MISMATCH', `${what}: the layer's uncompressed content has digest ${got.diffID}, but the image config lists diff_id ${want}`, {
        hint: 'the image is corrupt or was modified; nothing was stored',
      });
    }
    return got.tarSize;
  }

  async putImage(img: PutImageInput): Promise<void> {
    const what = img.names[0] ?? img.manifest.digest;
    // Names are checked before any work, so a bad one leaves nothing behind.
    const names = this.fixedName !== undefined ? [this.fixedName] : img.names.map(normalizeName);
    const manifest = parseManifest(img.manifest, what);
    const config = parseConfig(this.store.blobs.read(manifest.config.digest), what);
    const diffIDs = config.rootfs.diff_ids;
    if (diffIDs.length !== manifest.layers.length) {
      throw new KilnError('E_BAD_MANIFEST', `${what}: manifest lists ${manifest.layers.length} layers but the config has ${diffIDs.length} diff_ids`);
    }
    // Every layer is checked before anything of the image is recorded.
    const tarSizes = await Promise.all(manifest.layers.map((l, i) => this.verifyLayer(l, diffIDs[i]!, `${what}: layer ${i + 1} (${l.digest})`)));
    const recorded = this.recordedManifest(img, manifest);
    await this.store.blobs.putBuffer(recorded.bytes, this.lease, { digest: recorded.digest, mediaType: img.manifest.mediaType, what: `${what}: manifest` });
    const layerBlobs = manifest.layers.map((l) => this.adopted.get(l.digest)?.blob.digest ?? l.digest);
    const created = config.created ? Date.parse(config.created) : NaN;
    const { image, isNew } = this.store.writeTx(() => {
      // layers the store has (same chain) are reused as they are, extracted or not
      const layers: string[] = [];
      let size = 0;
      for (const [i, digest] of layerBlobs.entries()) {
        const blob = this.store.blobs.get(digest);
        if (!blob) throw new KilnError('E_BLOB_UNKNOWN', `${what}: layer ${i + 1} blob ${digest} vanished from the store`);
        const layer = this.store.layers.recordDeferred(blob, diffIDs[i]!, tarSizes[i]!, layers[layers.length - 1] ?? null, this.lease);
        size += layer.uncompressedSize;
        layers.push(layer.id);
      }
      return this.store.images.create({
        id: manifest.config.digest.slice(7),
        manifestDigest: recorded.digest,
        // the registry's digest stays the image's first (Digest, RepoDigests, name@digest)
        ...(recorded.digest !== img.manifest.digest ? { arrivedAs: [img.manifest.digest] } : {}),
        manifestMediaType: img.manifest.mediaType,
        configDigest: manifest.config.digest,
        layers,
        blobs: [recorded.digest, manifest.config.digest, ...layerBlobs],
        // podman counts the manifest and config too
        size: size + recorded.bytes.length + manifest.config.size,
        created: Number.isFinite(created) ? created : Date.now(),
        names,
      });
    });
    this.stored.push(image);
    this.loaded.push({ id: image.id, names });
    if (isNew) this.created.push(image.id);
  }

  async commit(): Promise<void> {
    this.lease.release();
  }

  /** Removes the images this destination created, then what its lease held: nothing stays. */
  async abort(): Promise<void> {
    for (const id of this.created) await this.store.images.remove(id, false).catch(() => undefined);
    this.lease.release(true);
  }
}

export class StorageReference implements ImageReference {
  readonly transport = 'kiln-storage' as const;
  private constructor(private readonly store: Store, private readonly name: string | undefined, private readonly imgs?: ImageRecord[]) {}

  /**
   * A reference to a stored image (for reading) or a name to store under (for writing; a
   * digest reference is stored as repository@digest, image/reference.ts storedName).
   */
  static named(store: Store, name: string): StorageReference {
    return new StorageReference(store, name);
  }

  /** The store as a destination that keeps the names each source image carries. */
  static anyNames(store: Store): StorageReference {
    return new StorageReference(store, undefined);
  }

  /** A source over already resolved images (save of several images). */
  static forImages(store: Store, imgs: ImageRecord[]): StorageReference {
    return new StorageReference(store, undefined, imgs);
  }

  toString(): string {
    return `kiln-storage:${this.name ?? '*'}`;
  }

  async newSource(): Promise<ImageSource> {
    if (this.imgs) return new StorageSource(this.store, this.imgs);
    if (this.name === undefined) throw new KilnError('E_INVALID_REFERENCE', 'a store source needs an image name or ID');
    return new StorageSource(this.store, [this.store.images.resolve(this.name)]);
  }

  async newDestination(): Promise<StorageDestination> {
    const name = this.name === undefined ? undefined : storedName(this.name);
    return new StorageDestination(this.store, name, Lease.create(this.store));
  }
}

export type { StorageDestination };
