/**
 * OCI 1.1 referrers: artifacts (here, Sigstore bundles) that point at an image manifest through
 * their `subject`. pushReferrer PUTs the artifact manifest by digest; when the registry does not
 * answer with OCI-Subject (no referrers API, e.g. distribution 2.x) the client keeps the
 * distribution-spec fallback: an OCI index tagged `sha256-HEX` listing the referrers, read,
 * extended and PUT again. listReferrers asks GET /v2/REPO/referrers/DIGEST and, on 404, reads
 * that tag. Artifact manifests use the empty config descriptor (application/vnd.oci.empty.v1+json).
 */
import { KilnError } from '../errors';
import { MT, type Descriptor } from '../image/oci';
import { hexOf, sha256, type Digest } from '../util/digest';
import { MAX_SMALL_BLOB, putSmallBlob } from './blobs';
import { getManifest, putManifest } from './manifests';
import type { RegistryClient } from './client';

export const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
const EMPTY = Buffer.from('{}');

export interface ReferrerDescriptor extends Descriptor {
  artifactType?: string;
}

export interface ArtifactLayer {
  bytes: Buffer;
  mediaType: string;
}

export function fallbackTag(subject: Digest): string {
  return `sha256-${hexOf(subject)}`;
}

interface IndexJSON {
  schemaVersion: 2;
  mediaType: string;
  manifests: ReferrerDescriptor[];
}

function parseIndex(bytes: Buffer, what: string): IndexJSON {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new KilnError('E_BAD_MANIFEST', `${what}: referrers index is not JSON: ${(e as Error).message}`);
  }
  const manifests = (v as { manifests?: unknown }).manifests;
  if (!Array.isArray(manifests)) throw new KilnError('E_BAD_MANIFEST', `${what}: referrers index has no manifests array`);
  return { schemaVersion: 2, mediaType: MT.ociIndex, manifests: manifests as ReferrerDescriptor[] };
}

async function fallbackIndex(client: RegistryClient, repo: string, subject: Digest): Promise<IndexJSON> {
  try {
    const m = await getManifest(client, repo, fallbackTag(subject));
    return parseIndex(m.bytes, `${client.host}/${repo}:${fallbackTag(subject)}`);
  } catch (e) {
    if (e instanceof KilnError && e.code === 'E_IMAGE_UNKNOWN') return { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] };
    throw e;
  }
}

/** Pushes an artifact manifest referring to `subject`; returns its descriptor. */
export async function pushReferrer(
  client: RegistryClient,
  repo: string,
  subject: Descriptor,
  artifactType: string,
  layers: ArtifactLayer[],
  annotations: Record<string, string>,
): Promise<ReferrerDescriptor> {
  const what = `${client.host}/${repo}: referrer of ${subject.digest}`;
  const config = { mediaType: EMPTY_MEDIA_TYPE, digest: await putSmallBlob(client, repo, EMPTY, what), size: EMPTY.length };
  const ls: Descriptor[] = [];
  for (const l of layers) ls.push({ mediaType: l.mediaType, digest: await putSmallBlob(client, repo, l.bytes, what), size: l.bytes.length });
  const manifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType,
    config,
    layers: ls,
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = sha256(bytes);
  const put = await putManifest(client, repo, digest, { bytes, mediaType: MT.ociManifest, digest });
  const desc: ReferrerDescriptor = { mediaType: MT.ociManifest, digest, size: bytes.length, artifactType, annotations };
  if (!put.subject) {
    const index = await fallbackIndex(client, repo, subject.digest);
    if (!index.manifests.some((d) => d.digest === digest)) {
      index.manifests.push(desc);
      const ib = Buffer.from(JSON.stringify(index));
      await putManifest(client, repo, fallbackTag(subject.digest), { bytes: ib, mediaType: MT.ociIndex, digest: sha256(ib) });
    }
  }
  return desc;
}

/** The referrers of `subject` with `artifactType` (filtered here too: registries may ignore the filter). */
export async function listReferrers(client: RegistryClient, repo: string, subject: Digest, artifactType: string): Promise<ReferrerDescriptor[]> {
  const url = client.url(`/v2/${repo}/referrers/${subject}?artifactType=${encodeURIComponent(artifactType)}`);
  const res = await client.request('GET', url, { headers: { accept: MT.ociIndex }, scope: `repository:${repo}:pull` });
  let index: IndexJSON;
  if (res.statusCode === 200) {
    const bytes = Buffer.from(await res.body.arrayBuffer());
    if (bytes.length > MAX_SMALL_BLOB) throw new KilnError('E_BAD_MANIFEST', `${client.host}/${repo}: referrers list of ${subject} is larger than ${MAX_SMALL_BLOB} bytes`);
    index = parseIndex(bytes, `${client.host}/${repo}: referrers of ${subject}`);
  } else if (res.statusCode === 404 || res.statusCode === 400 || res.statusCode === 405 || res.statusCode === 501) {
    // no referrers API (registries answer 404, or 400/405/501 for an unknown route): the tag scheme
    await res.body.dump();
    index = await fallbackIndex(client, repo, subject);
  } else {
    throw await client.fail('GET', url, res, `referrers of ${subject}`);
  }
  return index.manifests.filter((d) => d.artifactType === artifactType);
}
