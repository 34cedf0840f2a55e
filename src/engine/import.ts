/**
 * `kiln import TARBALL [NAME]`: a root filesystem tarball (plain, gzip) becomes a one-layer
 * image. The tarball is read once: extracted into the layer, hashed for its diffID and
 * gzip-compressed into the layer blob at the same time (LayerStore.ingestTar).
 */
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { tempName } from '../util/blobfile';
import { KilnError } from '../errors';
import { MT, type ImageConfig, type Manifest } from '../image/oci';
import { applyChanges } from '../image/changes';
import { normalizeName } from '../image/reference';
import { goArch } from '../image/platform';
import type { ImageRecord } from '../store/images';
import type { EngineContext } from './context';

export interface ImportOptions {
  /** path of the tarball, or '-' for standard input */
  source: string;
  name?: string;
  changes?: string[];
  message?: string;
}

/**
 * The tarball as a file the worker pool can read: the path itself, or standard input spooled
 * into the store's work dir (removed by the returned cleanup).
 */
async function sourceFile(ctx: EngineContext, src: string): Promise<{ file: string; cleanup: () => void }> {
  if (src === '-') {
    const file = tempName(ctx.store.workDir(), 'stdin');
    await pipeline(process.stdin, fs.createWriteStream(file, { flags: 'wx' }));
    return { file, cleanup: () => fs.rmSync(file, { force: true }) };
  }
  if (/^https?:\/\//.test(src)) throw new KilnError('E_UNSUPPORTED', `import from a URL (${src}) is not supported`, { hint: 'download it first and import the file' });
  let st: fs.Stats;
  try {
    st = fs.statSync(src);
  } catch (e) {
    throw new KilnError('E_INVALID_ARGUMENT', `import: cannot read ${src}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!st.isFile()) throw new KilnError('E_INVALID_ARGUMENT', `import: ${src} is not a regular file`);
  return { file: src, cleanup: () => undefined };
}

export async function importImage(ctx: EngineContext, opts: ImportOptions): Promise<ImageRecord> {
  const names = opts.name ? [normalizeName(opts.name)] : [];
  const runConfig = applyChanges({}, opts.changes ?? []);
  const store = ctx.store;
  const input = await sourceFile(ctx, opts.source);
  return store.withLease(async (lease) => {
    const { layer, blob } = await store.layers.ingestTar(input.file, null, 'gzip', lease, `import ${opts.source}`).finally(input.cleanup);
    const now = new Date().toISOString();
    const config: ImageConfig = {
      created: now,
      architecture: goArch(),
      os: 'linux',
      config: runConfig,
      rootfs: { type: 'layers', diff_ids: [layer.diffID] },
      history: [{ created: now, created_by: `/bin/sh -c #(nop) ADD file:${layer.diffID.slice(7)} in /`, comment: opts.message ?? 'imported from tarball' }],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configRec = await store.blobs.putBuffer(configBytes, lease, { mediaType: MT.ociConfig });
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: configRec.digest, size: configRec.size },
      layers: [{ mediaType: blob.mediaType ?? MT.ociLayerGzip, digest: blob.digest, size: blob.size }],
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestRec = await store.blobs.putBuffer(manifestBytes, lease, { mediaType: MT.ociManifest });
    return store.images.create({
      id: configRec.digest.slice(7),
      manifestDigest: manifestRec.digest,
      manifestMediaType: MT.ociManifest,
      configDigest: configRec.digest,
      layers: [layer.id],
      blobs: [manifestRec.digest, configRec.digest, blob.digest],
      size: layer.uncompressedSize + manifestBytes.length + configBytes.length, // as podman counts
      created: Date.parse(now),
      names,
    }).image;
  });
}
