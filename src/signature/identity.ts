/**
 * containers-policy.json(5) `signedIdentity`: whether the identity a signature claims
 * (critical.identity.docker-reference) is acceptable for the image being pulled.
 *
 * - matchRepoDigestOrExact (default): pulled by digest → the same repository; pulled by tag →
 *   exactly the same repository and tag.
 * - matchRepository: the same repository, any tag or digest.
 * - exactReference {dockerReference}: the signature names exactly that reference.
 * - exactRepository {dockerRepository}: the signature names that repository.
 * - remapIdentity {prefix, signedPrefix}: the pulled name with `prefix` replaced by
 *   `signedPrefix`, then matchRepoDigestOrExact (for mirrors holding another registry's images).
 * Names are normalized as docker does (docker.io/library/…) before comparing.
 */
import { KilnError } from '../errors';
import { parseName, repository, type NamedRef } from '../image/reference';

export type SignedIdentity =
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

function full(r: NamedRef): string {
  return r.digest !== undefined ? `${repository(r)}@${r.digest}` : `${repository(r)}:${r.tag ?? 'latest'}`;
}

/** A docker reference as containers/image parses it (docker.io default); undefined if invalid. */
export function parseDockerRef(s: string): NamedRef | undefined {
  try {
    return parseName(s, 'docker.io');
  } catch {
    return undefined;
  }
}

function repoDigestOrExact(image: NamedRef, signed: NamedRef): boolean {
  // a name without tag or digest identifies no image (containers/image refuses it first)
  if (signed.tag === undefined && signed.digest === undefined) return false;
  if (image.digest !== undefined) return repository(image) === repository(signed);
  // a signature for a digest reference does not vouch for a tag
  return signed.digest === undefined && signed.tag !== undefined && full(image) === full(signed);
}

/** Replaces `prefix` (a host, host/namespace or repository) at a path boundary; undefined if it does not apply. */
function remap(image: NamedRef, prefix: string, signedPrefix: string): NamedRef | 'no-match' | 'invalid' {
  const name = full(image);
  const repo = repository(image);
  if (repo !== prefix && !repo.startsWith(`${prefix}/`)) return 'no-match';
  return parseDockerRef(signedPrefix + name.slice(prefix.length)) ?? 'invalid';
}

/**
 * Throws E_POLICY naming both identities when `claimed` is not acceptable for `image` under
 * `rule`.
 */
export function checkIdentity(rule: SignedIdentity, image: NamedRef, claimed: string): void {
  const signed = parseDockerRef(claimed);
  if (signed === undefined) throw new KilnError('E_POLICY', `signature identity ${JSON.stringify(claimed)} is not a valid docker reference`);
  let ok: boolean;
  switch (rule.type) {
    case 'matchRepoDigestOrExact':
      ok = repoDigestOrExact(image, signed);
      break;
    case 'matchRepository':
      ok = repository(image) === repository(signed);
      break;
    case 'exactReference': {
      const want = parseDockerRef(rule.dockerReference);
      ok = want !== undefined && signed.tag === want.tag && signed.digest === want.digest && full(want) === full(signed);
      break;
    }
    case 'exactRepository': {
      const want = parseDockerRef(rule.dockerRepository);
      ok = want !== undefined && repository(want) === repository(signed);
      break;
    }
    case 'remapIdentity': {
      const mapped = remap(image, rule.prefix, rule.signedPrefix);
      ok = mapped !== 'invalid' && repoDigestOrExact(mapped === 'no-match' ? image : mapped, signed);
      break;
    }
  }
  if (!ok) {
    throw new KilnError('E_POLICY', `signature for identity ${JSON.stringify(claimed)} is not accepted for ${full(image)} (signedIdentity ${rule.type})`);
  }
}
