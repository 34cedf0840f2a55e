/**
 * The transport abstraction (after containers/image). A reference string such as
 * `oci:DIR[:TAG]`, `oci-archive:PATH`, `docker-archive:PATH`, `dir:PATH` or a local-store name
 * parses (transports/parse.ts) to an ImageReference, which opens a Source or a Destination.
 *
 * Call order and ownership:
 *   Source:      open → images() (any number of times) → SourceImage.manifest()/getBlob() → close().
 *                The caller that opened a Source closes it, also on error. Streams returned by
 *                getBlob are owned by the caller, who must consume or destroy them before close().
 *   Destination: open → (hasBlob/putBlob)* per image → putImage() per image → commit() | abort().
 *                Nothing is visible at the destination path before commit(); abort() removes all
 *                partial output. Exactly one of commit()/abort() is called, by the opener.
 * Digests: every putBlob with an expected digest/size verifies it while streaming and throws
 * E_DIGEST_MISMATCH / E_SIZE_MISMATCH, leaving nothing behind.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../util/digest';
import type { Descriptor } from '../image/oci';

export interface ManifestBlob {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

export interface SourceImage {
  /** Names the source records for this image ("localhost/foo:latest"); may be empty. */
  readonly names: string[];
  /** The single-platform manifest of this image (sources resolve indexes to linux/amd64). */
  manifest(): Promise<ManifestBlob>;
  /** A blob's bytes as stored in the source; the caller verifies them. */
  getBlob(desc: Descriptor): Promise<Readable>;
}

export interface ImageSource {
  /** For the whole-archive case (load) every image; for a reference with a name/tag, that one. */
  images(): Promise<SourceImage[]>;
  close(): Promise<void>;
}

export interface PutImageInput {
  manifest: ManifestBlob;
  /** Names to record (RepoTags, ref.name annotations, store names); the destination may override. */
  names: string[];
}

export interface ImageDestination {
  /** 'uncompressed' when the format requires plain tar layers (docker-archive). */
  readonly layerForm: 'preserve' | 'uncompressed';
  /**
   * The manifest kind the format holds: 'oci' (oci:, oci-archive:), 'docker' (dir:, as podman's
   * docker-dir) or 'any'. copyImage converts the manifest (same config and layers) to match.
   */
  readonly manifestFormat: 'oci' | 'docker' | 'any';
  /** Whether the destination already has this blob (copy then skips putBlob). */
  hasBlob(digest: Digest): Promise<boolean>;
  /**
   * Stores a blob. When `expected.digest`/`expected.size` are given they are verified while
   * streaming; returns the digest and size actually written.
   */
  putBlob(stream: Readable, expected: { digest?: Digest; size?: number; mediaType: string }): Promise<{ digest: Digest; size: number }>;
  /** Records one image whose config and layer blobs were already put. */
  putImage(img: PutImageInput): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface ImageReference {
  readonly transport: 'oci' | 'oci-archive' | 'docker-archive' | 'dir' | 'kiln-storage' | 'docker';
  /** The reference as a user would write it, for messages. */
  toString(): string;
  newSource(): Promise<ImageSource>;
  newDestination(): Promise<ImageDestination>;
}
