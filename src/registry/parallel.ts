/**
 * Moves an image's layer blobs from a source to a destination several at a time (bounded),
 * before copyImage (transports/copy.ts) runs its sequential pass, which then finds every layer
 * present and only copies the config and the manifest. Only for destinations that keep layers
 * as they are (layerForm 'preserve'); others are left to copyImage. Each blob is verified by
 * the destination's putBlob; on a failure the remaining transfers are let finish (so no stream
 * is left open) and the first error is thrown.
 */
import { parseManifest } from '../image/manifest';
import type { Descriptor } from '../image/oci';
import type { ImageDestination, SourceImage } from '../transports/types';

export const PARALLEL_BLOBS = 3;

/** Runs `fn` over `items` with at most `limit` at once; rejects with the first error after all settled. */
export async function forEachBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let first: unknown;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        if (!failed) first = e;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw first;
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
