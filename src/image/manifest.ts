/**
 * Parsing and validating stored manifests and configs. Kept apart from the copy pipeline so
 * that read-only commands (images, inspect) do not load stream and compression code.
 */
import { KilnError } from '../errors';
import { parseDigest } from '../util/digest';
import { isIndexMediaType, type Descriptor, type ImageConfig, type Manifest } from './oci';
import type { ManifestBlob } from '../transports/types';

/** Parses and validates manifest bytes; `what` names the source in errors. */
export function parseManifest(m: ManifestBlob, what: string): Manifest {
  let obj: Manifest;
  try {
    obj = JSON.parse(m.bytes.toString('utf8')) as Manifest;
  } catch (e) {
    throw new KilnError('E_BAD_MANIFEST', `${what}: manifest ${m.digest} is not JSON: ${(e as Error).message}`);
  }
  const mt = obj.mediaType ?? m.mediaType;
  if (isIndexMediaType(mt)) throw new KilnError('E_BAD_MANIFEST', `${what}: expected an image manifest, got an index (${mt})`);
  if (obj.schemaVersion !== 2 || !obj.config || !Array.isArray(obj.layers)) {
    throw new KilnError('E_BAD_MANIFEST', `${what}: manifest ${m.digest} is not a schema 2 image manifest`);
  }
  const check = (d: Descriptor, w: string) => {
    parseDigest(d.digest, `${what}: ${w} digest`);
    if (!Number.isSafeInteger(d.size) || d.size < 0) throw new KilnError('E_BAD_MANIFEST', `${what}: ${w} has an invalid size ${JSON.stringify(d.size)}`);
  };
  check(obj.config, 'config');
  obj.layers.forEach((l, i) => check(l, `layer ${i + 1}`));
  return obj;
}

export function parseConfig(bytes: Buffer, what: string): ImageConfig {
  let c: ImageConfig;
  try {
    c = JSON.parse(bytes.toString('utf8')) as ImageConfig;
  } catch (e) {
    throw new KilnError('E_BAD_MANIFEST', `${what}: image config is not JSON: ${(e as Error).message}`);
  }
  if (!c.rootfs || !Array.isArray(c.rootfs.diff_ids)) throw new KilnError('E_BAD_MANIFEST', `${what}: image config has no rootfs.diff_ids`);
  c.rootfs.diff_ids.forEach((d, i) => parseDigest(d, `${what}: config rootfs.diff_ids[${i}]`));
  return c;
}

