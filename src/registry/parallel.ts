/**
 * Moves an image's layer blobs from a source to a destination several at a time (bounded),
 * before copyImage (transports/copy.ts) runs its sequential pass, which then finds every layer
 * present and only copies the config and the manifest. Only for destinations that keep layers
 * as they are (layerForm 'preserve'); others are left to copyImage. Each blob is verified by
 * the destination's putBlob; on a failure the remaining transfers are let finish (so no stream
 * is left open) and the first error is thrown. mountSources names the repositories a push may
 * mount the blobs from.
 */
import { parseManifest } from '../image/manifest';
import type { Descriptor } from '../image/oci';
import type { ImageDestination, SourceImage } from '../transports/types';
import { parseName } from '../image/reference';
import { forEachBounded } from '../util/bounded';

/** containers/image's default number of parallel blob copies */
export const PARALLEL_BLOBS = 6;

/**
 * The repositories of registry `domain` other than `repo` that an image is named in (its stored
 * names): where its blobs may already be, to mount them from instead of uploading
 * (RegistryOptions.mountFrom).
 */
export function mountSources(names: readonly string[], domain: string, repo: string): string[] {
  const repos = new Set<string>();
  for (const n of names) {
    const r = parseName(n, 'docker.io');
    if (r.domain === domain && r.path !== repo) repos.add(r.path);
  }
  return [...repos];
}

/** Copies the layers `dest` lacks, PARALLEL_BLOBS at a time; `log` gets "skipped" lines. */
export async function copyLayersParallel(src: SourceImage, dest: ImageDestination, what: string, log?: (line: string) => void): Promise<void> {
  if (dest.layerForm !== 'preserve') return;
  const m = parseManifest(await src.manifest(), what);
  const seen = new Set<string>();
  const layers = m.layers.filter((l) => !seen.has(l.digest) && seen.add(l.digest));
  await forEachBounded(layers, PARALLEL_BLOBS, async (l: Descriptor) => {
    if (await dest.hasBlob(l.digest)) {
      log?.(`Copying blob ${l.digest} skipped: already exists`);
      return;
    }
    await dest.putBlob(await src.getBlob(l), { digest: l.digest, size: l.size, mediaType: l.mediaType });
  });
}
