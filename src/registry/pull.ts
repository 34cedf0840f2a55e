/**
 * Pulling one image from a registry into the local store: the registry source's manifest (the
 * platform's, for an index), its config, then the layers the store lacks (by digest, or by
 * diffID under another blob: adoptStoredLayers) fetched PARALLEL_BLOBS at a time and streamed
 * into the store (verified there), then copyImage for the config and the image record. The
 * store destination is committed only when all of it succeeded and aborted otherwise, so a
 * failed pull (unknown tag, corrupt blob, registry errors) leaves nothing behind.
 */
import type { EngineContext } from '../engine/context';
import { copyImage } from '../transports/copy';
import type { DockerReference, RegistryImage } from '../transports/docker';
import { checkPolicy } from '../signature/verify';
import { StorageReference } from '../transports/storage';
import { copyLayersParallel } from './parallel';
import type { PullVerify } from '../signature/types';
import { parseConfig, parseManifest } from '../image/manifest';
import { MAX_SMALL_BLOB } from './blobs';
import type { StorageDestination } from '../transports/storage';

/**
 * Reads the image's config first, so that layers the store has under another blob with the
 * same diffID are taken from the store instead of fetched (StorageDestination.adoptStoredLayers).
 * The config is kept by the source (RegistryImage.readSmall): copyImage's read of it is served
 * from memory, and copyImage checks it fully.
 */
async function adoptStoredLayers(img: RegistryImage, dest: StorageDestination, what: string): Promise<void> {
  const mblob = await img.manifest();
  const m = parseManifest(mblob, what);
  if (m.config.size > MAX_SMALL_BLOB) return;
  const config = parseConfig(await img.readSmall(m.config, `${what}: config`), what);
  dest.adoptStoredLayers(m, mblob.mediaType, config.rootfs.diff_ids);
}

/**
 * Pulls `ref` into the store under `name` (default: the reference's own name, repository@digest
 * for a digest reference); returns the image ID. With `verify`, the image must satisfy the signature policy
 * before any blob is fetched.
 */
export async function pullImage(ctx: EngineContext, ref: DockerReference, name?: string, verify?: PullVerify): Promise<string> {
  const log = ref.opts.log ?? (() => undefined);
  const src = await ref.newSource();
  try {
    const [img] = await src.images();
    if (verify) await checkPolicy(img as RegistryImage, verify);
    const stored = name ?? ref.displayName;
    const dest = await StorageReference.named(ctx.store, stored).newDestination();
    try {
      log('Getting image source signatures');
      await adoptStoredLayers(img as RegistryImage, dest, ref.toString());
      await copyLayersParallel(img!, dest, ref.toString(), log);
      await copyImage(img!, dest, [stored], ref.toString());
      log('Writing manifest to image destination');
      await dest.commit();
    } catch (e) {
      await dest.abort().catch(() => undefined);
      throw e;
    }
    log('Storing signatures');
    return dest.loaded[0]!.id;
  } finally {
    await src.close();
  }
}
