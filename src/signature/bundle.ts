/**
 * Sigstore bundles signed with a local key, the second signature form kiln attaches (as an OCI
 * 1.1 referrer, registry/referrers.ts). The signed artifact is the same simple-signing payload
 * as the cosign attachment (payload.ts), so a bundle carries the same claims (manifest digest,
 * identity); the referrer manifest holds the bundle and the payload as its two layers.
 *
 * makeBundle: @sigstore/sign's MessageSignatureBundleBuilder with a signer over a local ECDSA
 * key and no witnesses (no Rekor, no TSA: kiln runs offline); the key is named by its hint
 * (cosign-key.ts keyHint).
 * verifyBundle: @sigstore/verify offline with tlog/ctlog/timestamp thresholds 0 and a trust
 * material holding only the policy's keys. @sigstore/verify does not compare the bundle's
 * messageDigest with the artifact, so that is checked here first.
 * @sigstore/sign and @sigstore/verify are loaded on first use: every pull loads this module
 * (for BUNDLE_MEDIA_TYPE), most never sign or verify a bundle.
 */
import * as crypto from 'node:crypto';
import { BUNDLE_V03_MEDIA_TYPE, bundleFromJSON, bundleToJSON, isBundleWithMessageSignature } from '@sigstore/bundle';
import type { TrustMaterial } from '@sigstore/verify';
import { KilnError } from '../errors';
import { keyHint } from './cosign-key';

export const BUNDLE_MEDIA_TYPE = BUNDLE_V03_MEDIA_TYPE;

/** A bundle (JSON bytes) signing `payload` with `key`. */
export async function makeBundle(payload: Buffer, key: crypto.KeyObject): Promise<Buffer> {
  const publicKey = crypto.createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString();
  const hint = keyHint(key);
  const { MessageSignatureBundleBuilder } = require('@sigstore/sign') as typeof import('@sigstore/sign');
  const builder = new MessageSignatureBundleBuilder({
    witnesses: [],
    signer: {
      sign: async (data: Buffer) => ({ signature: crypto.sign('sha256', data, key), key: { $case: 'publicKey', publicKey, hint } }),
    },
  });
  const bundle = await builder.create({ data: payload });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

/** Throws E_POLICY with the reason unless `bundleBytes` is a valid signature of `payload` by one of `keys`. */
export function verifyBundle(bundleBytes: Buffer, payload: Buffer, keys: crypto.KeyObject[]): void {
  let bundle;
  try {
    bundle = bundleFromJSON(JSON.parse(bundleBytes.toString('utf8')));
  } catch (e) {
    throw new KilnError('E_POLICY', `invalid Sigstore bundle: ${(e as Error).message}`);
  }
  if (!isBundleWithMessageSignature(bundle)) throw new KilnError('E_POLICY', 'Sigstore bundle does not hold a message signature');
  const md = bundle.content.messageSignature.messageDigest;
  const want = crypto.createHash('sha256').update(payload).digest();
  // HashAlgorithm.SHA2_256 is 1 in the protobuf enum
  if (md === undefined || md.algorithm !== 1 || !Buffer.from(md.digest).equals(want)) {
    throw new KilnError('E_POLICY', 'Sigstore bundle signs another payload (its message digest does not match)');
  }
  const byHint = new Map(keys.map((k) => [keyHint(k), k]));
  const trust: TrustMaterial = {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: (hint: string) => {
      const k = byHint.get(hint);
      if (k === undefined) throw new KilnError('E_POLICY', 'Sigstore bundle is signed by a key the policy does not trust');
      return { publicKey: k, validFor: () => true };
    },
  };
  const { Verifier, toSignedEntity } = require('@sigstore/verify') as typeof import('@sigstore/verify');
  try {
    new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle, payload));
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw new KilnError('E_POLICY', `Sigstore bundle verification failed: ${(e as Error).message}`);
  }
}
