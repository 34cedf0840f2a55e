/**
 * Content digests ("sha256:<64 hex>"). Only sha256 is accepted; anything else is refused
 * with E_INVALID_ARGUMENT naming where the digest came from.
 */
import { createHash } from 'node:crypto';
import { KilnError } from '../errors';

export type Digest = `sha256:${string}`;

const RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && RE.test(s);
}

export function parseDigest(s: unknown, where: string): Digest {
  if (!isDigest(s)) {
    throw new KilnError('E_INVALID_ARGUMENT', `${where}: invalid digest ${JSON.stringify(s)} (want sha256:<64 hex digits>)`);
  }
  return s;
}

export function hexOf(d: Digest): string {
  return d.slice(7);
}

export function sha256(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** chainID as the OCI image spec defines it: ChainID(L0)=DiffID(L0), ChainID(Ln)=sha256(ChainID(Ln-1)+" "+DiffID(Ln)). */
export function chainIDs(diffIDs: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIDs) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}
