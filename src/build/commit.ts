/**
 * The end of a build: a stage state becomes an image in the store — config blob, manifest blob
 * (OCI, or Docker schema 2 with --format docker), image record with every -t name — in the
 * format the user asked for. OCI configs have no Healthcheck, OnBuild or Shell; they are
 * dropped there and kept with --format docker, as buildah does.
 */
import { MT, type ImageConfig, type Manifest } from '../image/oci';
import type { Store } from '../store/store';
import type { Lease } from '../store/lease';
import type { ImageRecord } from '../store/images';
import type { StageState } from './state';

export interface CommitOptions {
  format: 'oci' | 'docker';
  names: string[];
  /** --label: added to the config's labels */
  labels: Record<string, string>;
  /** --annotation: added to the manifest */
  annotations: Record<string, string>;
  /** the image's creation time (ISO 8601) */
  created: string;
}

export function imageConfig(s: StageState, opts: Pick<CommitOptions, 'format' | 'labels' | 'created'>): ImageConfig {
  const config = structuredClone(s.config);
  if (Object.keys(opts.labels).length > 0) config.Labels = { ...(config.Labels ?? {}), ...opts.labels };
  if (opts.format === 'oci') {
    delete config.Healthcheck;
    delete config.OnBuild;
    delete config.Shell;
  }
  const out: ImageConfig = {
    created: opts.created,
    architecture: s.architecture,
    os: s.os,
    ...(s.variant ? { variant: s.variant } : {}),
    config,
    rootfs: { type: 'layers', diff_ids: s.layers.map((l) => l.diffID) },
    history: s.history,
  };
  return out;
}

/** Writes config and manifest blobs and records the image (or names the identical one already stored). */
export async function commitImage(store: Store, s: StageState, lease: Lease, opts: CommitOptions): Promise<ImageRecord> {
  const docker = opts.format === 'docker';
  const config = imageConfig(s, opts);
  const configBytes = Buffer.from(JSON.stringify(config));
  const configMT = docker ? MT.dockerConfig : MT.ociConfig;
  const configRec = await store.blobs.putBuffer(configBytes, lease, { mediaType: configMT });
  const layerMT = docker ? MT.dockerLayerGzip : MT.ociLayerGzip;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MT.dockerManifest : MT.ociManifest,
    config: { mediaType: configMT, digest: configRec.digest, size: configRec.size },
    layers: s.layers.map((l) => ({ mediaType: convertLayerMT(l.mediaType, layerMT), digest: l.blobDigest, size: l.blobSize })),
    ...(Object.keys(opts.annotations).length > 0 && !docker ? { annotations: opts.annotations } : {}),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestRec = await store.blobs.putBuffer(manifestBytes, lease, { mediaType: manifest.mediaType });
  return store.images.create({
    id: configRec.digest.slice(7),
    manifestDigest: manifestRec.digest,
    manifestMediaType: manifest.mediaType!,
    configDigest: configRec.digest,
    layers: s.layers.map((l) => l.id),
    blobs: [manifestRec.digest, configRec.digest, ...s.layers.map((l) => l.blobDigest)],
    size: s.layers.reduce((n, l) => n + l.uncompressedSize, 0) + manifestBytes.length + configBytes.length,
    created: Date.parse(opts.created),
    names: opts.names,
  }).image;
}

/** The same compression in the other format's media type (layers keep their bytes). */
function convertLayerMT(mt: string, gzipTarget: string): string {
  const gz = mt === MT.ociLayerGzip || mt === MT.dockerLayerGzip;
  if (gz) return gzipTarget;
  if (gzipTarget === MT.dockerLayerGzip && mt === MT.ociLayer) return 'application/vnd.docker.image.rootfs.diff.tar';
  if (gzipTarget === MT.ociLayerGzip && mt === 'application/vnd.docker.image.rootfs.diff.tar') return MT.ociLayer;
  return mt;
}
