/**
 * Manifest GET/PUT against /v2/<repo>/manifests/<reference>.
 *
 * getManifest asks for every OCI and Docker schema2 manifest and index type. The digest it
 * returns is always sha256 of the bytes received; when the reference is a digest the bytes must
 * hash to it, and when the registry sends Docker-Content-Digest it must match too
 * (E_DIGEST_MISMATCH otherwise); a digest of another algorithm than sha256 is refused
 * (E_INVALID_REFERENCE) since it could not be verified. A 404 is E_IMAGE_UNKNOWN naming the image.
 */
import { KilnError } from '../errors';
import { MT } from '../image/oci';
import { isDigest, sha256, type Digest } from '../util/digest';
import { manifestMediaType } from '../transports/oci-layout';
import type { ManifestBlob } from '../transports/types';
import { responseHeader, type RegistryClient } from './client';

const MAX_MANIFEST = 4 << 20;

export const MANIFEST_ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerManifestList].join(', ');

/** Fetches and verifies a manifest or index by tag or digest. */
export async function getManifest(client: RegistryClient, repo: string, reference: string): Promise<ManifestBlob> {
  const byDigest = reference.includes(':');
  const name = `${client.host}/${repo}${byDigest ? '@' : ':'}${reference}`;
  if (byDigest && !isDigest(reference)) {
    const algo = reference.slice(0, reference.indexOf(':'));
    throw new KilnError(
      'E_INVALID_REFERENCE',
      algo === 'sha256' ? `${name}: invalid sha256 digest (want 64 lowercase hex digits)` : `${name}: digest algorithm ${JSON.stringify(algo)} is not supported (only sha256 can be verified)`,
    );
  }
  const url = client.url(`/v2/${repo}/manifests/${reference}`);
  const res = await client.request('GET', url, { headers: { accept: MANIFEST_ACCEPT }, scope: `repository:${repo}:pull` });
  if (res.statusCode !== 200) throw await client.fail('GET', url, res, 'manifest', `${name}: manifest unknown: no such image in the registry`);
  const len = Number(responseHeader(res.headers, 'content-length') ?? 0);
  if (len > MAX_MANIFEST) {
    await res.body.dump();
    throw new KilnError('E_BAD_MANIFEST', `${name}: manifest of ${len} bytes is larger than the ${MAX_MANIFEST} allowed`);
  }
  const bytes = Buffer.from(await res.body.arrayBuffer());
  if (bytes.length > MAX_MANIFEST) throw new KilnError('E_BAD_MANIFEST', `${name}: manifest larger than the ${MAX_MANIFEST} bytes allowed`);
  const digest = sha256(bytes);
  if (byDigest && digest !== reference) {
    throw new KilnError('E_DIGEST_MISMATCH', `${name}: manifest digest mismatch: expected ${reference}, got ${digest}`, { hint: 'the registry served corrupt data; nothing was stored' });
  }
  const claimed = responseHeader(res.headers, 'docker-content-digest');
  if (claimed !== undefined && claimed.startsWith('sha256:') && claimed !== digest) {
    throw new KilnError('E_DIGEST_MISMATCH', `${name}: manifest digest mismatch: the registry says ${claimed}, the bytes hash to ${digest}`);
  }
  let mediaType = (responseHeader(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
  if (![MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerManifestList].includes(mediaType as never)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new KilnError('E_BAD_MANIFEST', `${name}: manifest is not JSON: ${(e as Error).message}`);
    }
    if ((parsed as { schemaVersion?: unknown }).schemaVersion === 1) {
      throw new KilnError('E_UNSUPPORTED', `${name}: Docker schema 1 manifests are not supported`);
    }
    mediaType = manifestMediaType(parsed);
  }
  return { bytes, mediaType, digest: digest as Digest };
}

/**
 * Uploads a manifest under a tag or its digest; returns the digest the registry reports and
 * whether it processed the manifest's `subject` (OCI 1.1: the OCI-Subject response header; a
 * registry without the referrers API omits it and the client maintains the fallback tag).
 */
export async function putManifest(client: RegistryClient, repo: string, reference: string, m: ManifestBlob): Promise<{ digest: Digest; subject: boolean }> {
  const url = client.url(`/v2/${repo}/manifests/${reference}`);
  const res = await client.request('PUT', url, { headers: { 'content-type': m.mediaType }, body: m.bytes, scope: `repository:${repo}:pull,push`, idempotent: true });
  if (res.statusCode !== 201 && res.statusCode !== 200 && res.statusCode !== 202) throw await client.fail('PUT', url, res, 'manifest');
  await res.body.dump();
  const digest = (responseHeader(res.headers, 'docker-content-digest') as Digest | undefined) ?? m.digest;
  return { digest, subject: responseHeader(res.headers, 'oci-subject') !== undefined };
}
