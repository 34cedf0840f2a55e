/**
 * The cosign "simple signing" payload that sigstore signatures sign (containers/image's
 * sigstore payload, cosign's `payload.SimpleContainerImage`):
 *
 *   {"critical":{"identity":{"docker-reference":REF},
 *                "image":{"docker-manifest-digest":DIGEST},
 *                "type":"cosign container image signature"},
 *    "optional":{"creator":…,"timestamp":…}}
 *
 * `critical` is read strictly (exactly these keys, string values), as containers/image does,
 * so a payload cannot smuggle a second meaning past a verifier; `optional` is informational.
 */
import { KilnError } from '../errors';
import { isDigest, type Digest } from '../util/digest';
import { VERSION } from '../version';

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_TYPE = 'cosign container image signature';

export interface SignedClaims {
  /** critical.identity.docker-reference, as written (not normalized) */
  dockerReference: string;
  manifestDigest: Digest;
}

/** The payload bytes for `ref` (a full "host/repo:tag" name) and the pushed manifest's digest. */
export function makePayload(ref: string, manifestDigest: Digest, now = new Date()): Buffer {
  const p = {
    critical: {
      identity: { 'docker-reference': ref },
      image: { 'docker-manifest-digest': manifestDigest },
      type: SIGNATURE_TYPE,
    },
    optional: { creator: `kiln ${VERSION}`, timestamp: Math.floor(now.getTime() / 1000) },
  };
  return Buffer.from(JSON.stringify(p));
}

function exactObject(v: unknown, keys: string[], where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KilnError('E_POLICY', `invalid signature payload: ${where} is not an object`);
  const o = v as Record<string, unknown>;
  const have = Object.keys(o).sort();
  const want = [...keys].sort();
  if (have.length !== want.length || have.some((k, i) => k !== want[i])) {
    throw new KilnError('E_POLICY', `invalid signature payload: ${where} has fields ${JSON.stringify(have)}, want exactly ${JSON.stringify(want)}`);
  }
  return o;
}

/** Parses a payload whose signature was already verified; E_POLICY says what is malformed. */
export function parsePayload(bytes: Buffer): SignedClaims {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new KilnError('E_POLICY', `invalid signature payload: not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KilnError('E_POLICY', 'invalid signature payload: not a JSON object');
  const top = v as Record<string, unknown>;
  const critical = exactObject(top['critical'], ['identity', 'image', 'type'], 'critical');
  if (critical['type'] !== SIGNATURE_TYPE) throw new KilnError('E_POLICY', `invalid signature payload: unrecognized type ${JSON.stringify(critical['type'])}`);
  const image = exactObject(critical['image'], ['docker-manifest-digest'], 'critical.image');
  const identity = exactObject(critical['identity'], ['docker-reference'], 'critical.identity');
  const digest = image['docker-manifest-digest'];
  const ref = identity['docker-reference'];
  if (typeof ref !== 'string') throw new KilnError('E_POLICY', 'invalid signature payload: docker-reference is not a string');
  if (typeof digest !== 'string' || !isDigest(digest)) {
    throw new KilnError('E_POLICY', `invalid signature payload: docker-manifest-digest ${JSON.stringify(digest)} is not a sha256 digest`);
  }
  return { dockerReference: ref, manifestDigest: digest };
}
