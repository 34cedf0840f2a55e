/**
 * The index JSON of a manifest list, made from its entries (store/manifest-lists.ts). The
 * entries' manifests are referenced exactly as stored (never converted), so the index type
 * follows them unless asked for: a Docker manifest list when every entry is a Docker schema2
 * manifest (what `podman manifest push --format v2s2` writes), else an OCI image index whose
 * entries keep their own media types. `--format v2s2` with an OCI entry is refused: a Docker
 * manifest list cannot reference OCI manifests. Key order is the one podman writes.
 */
import { KilnError } from '../errors';
import { sha256, type Digest } from '../util/digest';
import { MT } from './oci';
import type { ListEntry, ListPlatform } from '../store/manifest-lists';

/** podman's names for the two index types (`manifest push --format`). */
export type ListFormat = 'oci' | 'v2s2';

export interface BuiltIndex {
  mediaType: string;
  /** the JSON object (for `manifest inspect`) */
  index: object;
  /** compact JSON: the bytes pushed and hashed */
  bytes: Buffer;
  digest: Digest;
}

/** The index type for `entries`: `requested`, or the one their manifests imply (see above). */
export function listFormatFor(entries: readonly ListEntry[], requested: ListFormat | undefined, listName: string): ListFormat {
  if (requested === 'v2s2') {
    const oci = entries.find((e) => e.mediaType !== MT.dockerManifest);
    if (oci) {
      throw new KilnError('E_UNSUPPORTED', `manifest list ${listName}: --format v2s2: entry ${oci.digest} has media type ${oci.mediaType}, which a Docker manifest list cannot reference`, {
        hint: 'push with --format oci (an OCI index may reference Docker and OCI manifests)',
      });
    }
    return 'v2s2';
  }
  if (requested === 'oci') return 'oci';
  return entries.length > 0 && entries.every((e) => e.mediaType === MT.dockerManifest) ? 'v2s2' : 'oci';
}

function platformJSON(p: ListPlatform): ListPlatform {
  return p.variant ? { architecture: p.architecture, os: p.os, variant: p.variant } : { architecture: p.architecture, os: p.os };
}

/** Builds the index for `entries` in `format`. */
export function buildIndex(entries: readonly ListEntry[], format: ListFormat): BuiltIndex {
  const mediaType = format === 'oci' ? MT.ociIndex : MT.dockerManifestList;
  const manifests = entries.map((e) =>
    format === 'oci'
      ? { mediaType: e.mediaType, digest: e.digest, size: e.size, platform: platformJSON(e.platform) }
      : { mediaType: e.mediaType, size: e.size, digest: e.digest, platform: platformJSON(e.platform) },
  );
  const index = { schemaVersion: 2, mediaType, manifests };
  const bytes = Buffer.from(JSON.stringify(index));
  return { mediaType, index, bytes, digest: sha256(bytes) };
}
