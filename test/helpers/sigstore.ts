/**
 * The sigstore-enabled skopeo 1.18 (Debian 12's skopeo and podman have sigstore disabled),
 * unpacked by scripts/skopeo-sigstore.sh (run by scripts/setup.sh test) into
 * /var/cache/skopeo-sigstore. Fails with how to get it when it is missing.
 */
import * as fs from 'node:fs';

export const SKOPEO_SIGSTORE = '/var/cache/skopeo-sigstore/skopeo';

export function skopeoSigstore(): string {
  try {
    fs.accessSync(SKOPEO_SIGSTORE, fs.constants.X_OK);
  } catch {
    throw new Error(`${SKOPEO_SIGSTORE} is missing: the signing interop tests need skopeo 1.18 with sigstore; get it with: bash scripts/skopeo-sigstore.sh (or run scripts/setup.sh test)`);
  }
  return SKOPEO_SIGSTORE;
}
