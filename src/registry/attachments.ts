/**
 * Cosign/sigstore signature attachments in a registry, the scheme podman and skopeo use: the
 * signatures of manifest `sha256:HEX` live in the same repository as an OCI image manifest
 * tagged `sha256-HEX.sig`, one layer per signature: the payload blob (media type
 * application/vnd.dev.cosign.simplesigning.v1+json) with the base64 signature in the
 * `dev.cosignproject.cosign/signature` annotation. The config is an OCI image config whose
 * rootfs lists the layer digests, as containers/image writes it.
 *
 * readAttachments: all signatures (none when the tag does not exist). writeAttachments: the
 * existing ones plus the new ones not already there (same payload and annotations), uploaded
 * blobs first, the manifest PUT last.
 */
import { KilnError } from '../errors';
import { MT, type Descriptor } from '../image/oci';
import { hexOf, sha256, type Digest } from '../util/digest';
import { SIMPLE_SIGNING_MEDIA_TYPE } from '../signature/payload';
import { putSmallBlob, readSmallBlob } from './blobs';
import { getManifest, putManifest } from './manifests';
import type { RegistryClient } from './client';

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const MAX_SIGNATURES = 128;

export interface Attachment {
  payload: Buffer;
  /** the layer's annotations; SIGNATURE_ANNOTATION holds the base64 signature */
  annotations: Record<string, string>;
}

export function attachmentTag(manifestDigest: Digest): string {
  return `sha256-${hexOf(manifestDigest)}.sig`;
}

interface SigManifest {
  layers?: (Descriptor & { annotations?: Record<string, string> })[];
}

/** The signature attachments of `manifestDigest` in `repo` (an empty list when there are none). */
export async function readAttachments(client: RegistryClient, repo: string, manifestDigest: Digest): Promise<Attachment[]> {
  const tag = attachmentTag(manifestDigest);
  let m;
  try {
    m = await getManifest(client, repo, tag);
  } catch (e) {
    if (e instanceof KilnError && e.code === 'E_IMAGE_UNKNOWN') return [];
    throw e;
  }
  let parsed: SigManifest;
  try {
    parsed = JSON.parse(m.bytes.toString('utf8')) as SigManifest;
  } catch (e) {
    throw new KilnError('E_BAD_MANIFEST', `${client.host}/${repo}:${tag}: signature manifest is not JSON: ${(e as Error).message}`);
  }
  const layers = Array.isArray(parsed.layers) ? parsed.layers : [];
  if (layers.length > MAX_SIGNATURES) throw new KilnError('E_BAD_MANIFEST', `${client.host}/${repo}:${tag}: more than ${MAX_SIGNATURES} signatures`);
  const out: Attachment[] = [];
  for (const [i, l] of layers.entries()) {
    if (l.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
    const what = `${client.host}/${repo}:${tag}: signature ${i + 1}`;
    out.push({ payload: await readSmallBlob(client, repo, l, what), annotations: { ...(l.annotations ?? {}) } });
  }
  return out;
}

function sameAttachment(a: Attachment, b: Attachment): boolean {
  const ka = Object.keys(a.annotations).sort();
  const kb = Object.keys(b.annotations).sort();
  return a.payload.equals(b.payload) && ka.length === kb.length && ka.every((k, i) => k === kb[i] && a.annotations[k] === b.annotations[k]);
}

/** Adds `sigs` to the attachments of `manifestDigest` (see module comment). */
export async function writeAttachments(client: RegistryClient, repo: string, manifestDigest: Digest, sigs: Attachment[]): Promise<void> {
  const tag = attachmentTag(manifestDigest);
  const all = await readAttachments(client, repo, manifestDigest);
  const fresh = sigs.filter((s) => !all.some((a) => sameAttachment(a, s)));
  if (fresh.length === 0) return;
  all.push(...fresh);
  const layers: Descriptor[] = [];
  for (const [i, s] of all.entries()) {
    const digest = await putSmallBlob(client, repo, s.payload, `${client.host}/${repo}:${tag}: signature ${i + 1}`);
    layers.push({ mediaType: SIMPLE_SIGNING_MEDIA_TYPE, digest, size: s.payload.length, annotations: s.annotations });
  }
  const config = Buffer.from(JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
  const configDigest = await putSmallBlob(client, repo, config, `${client.host}/${repo}:${tag}: config`);
  const manifest = { schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: configDigest, size: config.length }, layers };
  const bytes = Buffer.from(JSON.stringify(manifest));
  await putManifest(client, repo, tag, { bytes, mediaType: MT.ociManifest, digest: sha256(bytes) });
}
