/**
 * Signing a pushed image with a sigstore private key, as `podman push
 * --sign-by-sigstore-private-key` does, plus a Sigstore bundle:
 *
 * 1. loadSigner (before anything is pushed, so a wrong passphrase pushes nothing) decrypts the
 *    key and reads registries.d;
 * 2. after the manifest PUT, signPushed signs the simple-signing payload (identity = the
 *    destination reference, digest = the pushed manifest's) with ECDSA P-256/SHA-256 (DER) and
 *      - appends it to the cosign attachments (`sha256-HEX.sig`) when registries.d enables
 *        use-sigstore-attachments for the destination — podman's condition, and what podman
 *        and skopeo read;
 *      - always attaches a Sigstore bundle of the same payload as an OCI 1.1 referrer
 *        (fallback tag `sha256-HEX` on registries without the referrers API).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { KilnError } from '../errors';
import { writeAttachments, SIGNATURE_ANNOTATION } from '../registry/attachments';
import { pushReferrer } from '../registry/referrers';
import type { Descriptor } from '../image/oci';
import type { DockerReference } from '../transports/docker';
import { BUNDLE_MEDIA_TYPE, makeBundle } from './bundle';
import { loadPrivateKey } from './cosign-key';
import { makePayload, SIMPLE_SIGNING_MEDIA_TYPE } from './payload';
import { loadRegistriesD, registriesDir, useSigstoreAttachments } from './registries-d';

export interface SignOptions {
  /** --sign-by-sigstore-private-key */
  keyPath: string;
  passphrase: Buffer;
  /** --registries.d */
  registriesDir?: string;
}

export interface Signer {
  key: crypto.KeyObject;
  attachments: boolean;
}

/** Decrypts the key and decides where signatures go; E_SIGNATURE names the key file. */
export function loadSigner(opts: SignOptions, dest: DockerReference): Signer {
  let text: string;
  try {
    text = fs.readFileSync(opts.keyPath, 'utf8');
  } catch (e) {
    throw new KilnError('E_SIGNATURE', `--sign-by-sigstore-private-key ${opts.keyPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const key = loadPrivateKey(text, opts.passphrase, opts.keyPath);
  const conf = loadRegistriesD(registriesDir(opts.registriesDir));
  return { key, attachments: useSigstoreAttachments(conf, { domain: dest.domain, path: dest.repo, tag: dest.tag }) };
}

/** Signs the manifest just pushed to `dest` (see module comment). */
export async function signPushed(signer: Signer, dest: DockerReference, manifest: Descriptor): Promise<void> {
  const identity = `${dest.domain}/${dest.repo}:${dest.tag}`;
  const payload = makePayload(identity, manifest.digest);
  const signature = crypto.sign('sha256', payload, signer.key).toString('base64');
  const client = dest.client();
  try {
    if (signer.attachments) {
      await writeAttachments(client, dest.repo, manifest.digest, [{ payload, annotations: { [SIGNATURE_ANNOTATION]: signature } }]);
    }
    const bundle = await makeBundle(payload, signer.key);
    await pushReferrer(client, dest.repo, manifest, BUNDLE_MEDIA_TYPE, [
      { bytes: bundle, mediaType: BUNDLE_MEDIA_TYPE },
      { bytes: payload, mediaType: SIMPLE_SIGNING_MEDIA_TYPE },
    ], { 'org.opencontainers.image.created': new Date().toISOString() });
  } finally {
    await client.close();
  }
}
