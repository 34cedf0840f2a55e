/**
 * The signature policy check of a pull (containers-policy.json(5) semantics, containers/image's
 * messages). It runs after the manifest is fetched and before any layer is, so a refused image
 * leaves nothing in the store.
 *
 * Signatures considered for sigstoreSigned: the cosign attachments (`sha256-HEX.sig`) when
 * registries.d enables use-sigstore-attachments for the reference (as podman), and Sigstore
 * bundles among the manifest's OCI referrers. A signature is accepted when its signature
 * verifies with one of the requirement's keys, its payload names the top-level manifest's
 * digest and its identity satisfies signedIdentity; one accepted signature satisfies the
 * requirement. Every requirement of the scope must be satisfied.
 */
import * as crypto from 'node:crypto';
import { KilnError } from '../errors';
import type { NamedRef } from '../image/reference';
import { readSmallBlob } from '../registry/blobs';
import { readAttachments, SIGNATURE_ANNOTATION } from '../registry/attachments';
import { getManifest } from '../registry/manifests';
import { listReferrers } from '../registry/referrers';
import type { RegistryClient } from '../registry/client';
import type { ManifestBlob } from '../transports/types';
import { BUNDLE_MEDIA_TYPE, verifyBundle } from './bundle';
import { checkIdentity } from './identity';
import { parsePayload, SIMPLE_SIGNING_MEDIA_TYPE } from './payload';
import { loadPolicy, policyPath, requirementsFor, type Requirement } from './policy';
import { loadRegistriesD, registriesDir, useSigstoreAttachments } from './registries-d';
import type { PullVerify } from './types';

/** A signature found for the image: `verifySig` throws the reason its signature is not acceptable. */
interface FoundSignature {
  kind: string;
  payload: Buffer;
  verifySig(keys: crypto.KeyObject[]): void;
}

async function attachmentSignatures(client: RegistryClient, repo: string, top: ManifestBlob): Promise<FoundSignature[]> {
  return (await readAttachments(client, repo, top.digest)).map((a, i) => ({
    kind: `signature ${i + 1}`,
    payload: a.payload,
    verifySig(keys) {
      const b64 = a.annotations[SIGNATURE_ANNOTATION];
      if (b64 === undefined) throw new KilnError('E_POLICY', `missing ${SIGNATURE_ANNOTATION} annotation`);
      const sig = Buffer.from(b64, 'base64');
      if (!keys.some((k) => crypto.verify('sha256', a.payload, k, sig))) {
        throw new KilnError('E_POLICY', 'cryptographic signature verification failed: the signature does not verify with any trusted key');
      }
    },
  }));
}

interface ArtifactManifest {
  layers?: { mediaType: string; digest: `sha256:${string}`; size: number }[];
}

async function bundleSignatures(client: RegistryClient, repo: string, top: ManifestBlob): Promise<FoundSignature[]> {
  const out: FoundSignature[] = [];
  const refs = await listReferrers(client, repo, top.digest, BUNDLE_MEDIA_TYPE);
  for (const [i, r] of refs.slice(0, 64).entries()) {
    const m = await getManifest(client, repo, r.digest);
    let parsed: ArtifactManifest;
    try {
      parsed = JSON.parse(m.bytes.toString('utf8')) as ArtifactManifest;
    } catch {
      continue;
    }
    const bundleL = parsed.layers?.find((l) => l.mediaType === BUNDLE_MEDIA_TYPE);
    const payloadL = parsed.layers?.find((l) => l.mediaType === SIMPLE_SIGNING_MEDIA_TYPE);
    if (!bundleL || !payloadL) continue;
    const what = `${client.host}/${repo}: referrer ${r.digest}`;
    const bundle = await readSmallBlob(client, repo, bundleL, what);
    const payload = await readSmallBlob(client, repo, payloadL, what);
    out.push({ kind: `Sigstore bundle ${i + 1}`, payload, verifySig: (keys) => verifyBundle(bundle, payload, keys) });
  }
  return out;
}

function acceptOne(sig: FoundSignature, req: Extract<Requirement, { type: 'sigstoreSigned' }>, top: ManifestBlob, identity: NamedRef): void {
  sig.verifySig(req.keys);
  const claims = parsePayload(sig.payload);
  if (claims.manifestDigest !== top.digest) {
    throw new KilnError('E_POLICY', `signature for docker-manifest-digest ${claims.manifestDigest} does not match the image's ${top.digest}`);
  }
  checkIdentity(req.signedIdentity, identity, claims.dockerReference);
}

export interface PolicyTarget {
  /** the client and repository the image is read from (a mirror's, possibly) */
  client: RegistryClient;
  repo: string;
  /** the manifest the reference named (signatures sign its digest) */
  topLevel: ManifestBlob;
}

/** Throws E_POLICY "Source image rejected: …" unless the policy admits the image. */
export async function checkPolicy(target: PolicyTarget, verify: PullVerify): Promise<void> {
  const identity: NamedRef = {
    domain: verify.identity.domain,
    path: verify.identity.repo,
    ...(verify.identity.digest !== undefined ? { digest: verify.identity.digest } : { tag: verify.identity.tag }),
  };
  const policy = loadPolicy(policyPath(verify.policyPath));
  const { scope, reqs } = requirementsFor(policy, identity);
  const name = verify.identity.toString();
  const reject = (why: string, hint?: string): never => {
    throw new KilnError('E_POLICY', `Source image rejected: ${why}`, { hint: hint ?? `policy ${policy.file}, scope ${scope}` });
  };
  let found: FoundSignature[] | undefined;
  let attachments = false;
  for (const req of reqs) {
    if (req.type === 'insecureAcceptAnything') continue;
    if (req.type === 'reject') reject(`Running image ${name} is rejected by policy.`);
    if (req.type === 'signedBy') reject(`${name}: signedBy (GPG) requirements are not supported by kiln; use sigstoreSigned`);
    if (req.type !== 'sigstoreSigned') continue;
    if (found === undefined) {
      attachments = useSigstoreAttachments(loadRegistriesD(registriesDir(verify.registriesDir)), identity);
      found = [
        ...(attachments ? await attachmentSignatures(target.client, target.repo, target.topLevel) : []),
        ...(await bundleSignatures(target.client, target.repo, target.topLevel)),
      ];
    }
    if (found.length === 0) {
      reject(
        'A signature was required, but no signature exists',
        attachments ? undefined : `sigstore attachments are not read for ${identity.domain}: enable use-sigstore-attachments for it in registries.d (${registriesDir(verify.registriesDir)}), see containers-registries.d(5)`,
      );
    }
    const reasons: string[] = [];
    let ok = false;
    for (const sig of found) {
      try {
        acceptOne(sig, req, target.topLevel, identity);
        ok = true;
        break;
      } catch (e) {
        if (!(e instanceof KilnError) || (e.code !== 'E_POLICY' && e.code !== 'E_BAD_MANIFEST')) throw e;
        reasons.push(found.length === 1 ? e.message : `${sig.kind}: ${e.message}`);
      }
    }
    if (!ok) reject(reasons.length === 1 ? reasons[0]! : `None of the signatures were accepted, reasons: ${reasons.join('; ')}`, `trusted keys: ${req.keySource}`);
  }
}
