/**
 * `kiln inspect` and `kiln history`: podman's ImageData shape (Id, Digest, RepoTags, Config,
 * RootFS …) and history rows, computed from the stored manifest and config.
 */
import { MT, type ImageConfig, type Manifest } from '../image/oci';
import type { ImageRecord } from '../store/images';
import type { Store } from '../store/store';
import { parseConfig } from '../image/manifest';
import { isTaggedName } from '../image/reference';
import type { Digest } from '../util/digest';
import { repoDigests } from './images';
import type { EngineContext } from './context';

export function readConfig(store: Store, img: ImageRecord): ImageConfig {
  return parseConfig(store.blobs.read(img.configDigest), img.id);
}

export function readManifest(store: Store, img: ImageRecord): Manifest {
  return JSON.parse(store.blobs.read(img.manifestDigest).toString('utf8')) as Manifest;
}

export interface ImageInspect {
  Id: string;
  Digest: Digest;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  Config: NonNullable<ImageConfig['config']>;
  Version: string;
  Author: string;
  Architecture: string;
  Os: string;
  Size: number;
  VirtualSize: number;
  GraphDriver: { Name: string; Data: Record<string, string> };
  RootFS: { Type: string; Layers: Digest[] };
  Labels: Record<string, string> | null;
  Annotations: Record<string, string>;
  ManifestType: string;
  User: string;
  History: ImageConfig['history'];
  NamesHistory: string[];
}

export function inspectImage(ctx: EngineContext, ref: string): ImageInspect {
  const store = ctx.store;
  const img = store.images.resolve(ref);
  const config = readConfig(store, img);
  const manifest = readManifest(store, img);
  const layers = store.images.layerIDs(img.id);
  const top = layers[layers.length - 1];
  const lower = layers.slice(0, -1).reverse().map((l) => store.layers.diffDir(l));
  const digests = store.images.manifestDigests(img.id);
  return {
    Id: img.id,
    Digest: digests[0] ?? img.manifestDigest,
    RepoTags: img.names.filter(isTaggedName),
    RepoDigests: repoDigests(ctx, img, digests),
    Parent: '',
    // libimage's rule: Docker images carry a top-level comment, OCI ones the first history entry's
    Comment: img.manifestMediaType === MT.dockerManifest ? ((config as { comment?: string }).comment ?? '') : (config.history?.[0]?.comment ?? ''),
    Created: config.created ?? new Date(img.created).toISOString(),
    Config: config.config ?? {},
    Version: '',
    Author: config.author ?? '',
    Architecture: config.architecture,
    Os: config.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: {
      Name: 'overlay',
      Data: top === undefined ? {} : { ...(lower.length ? { LowerDir: lower.join(':') } : {}), UpperDir: store.layers.diffDir(top), WorkDir: `${store.layers.dir(top)}/work` },
    },
    RootFS: { Type: 'layers', Layers: config.rootfs.diff_ids },
    Labels: config.config?.Labels ?? null,
    Annotations: manifest.annotations ?? {},
    ManifestType: img.manifestMediaType,
    User: config.config?.User ?? '',
    History: config.history ?? [],
    NamesHistory: img.namesHistory,
  };
}

export interface HistoryRow {
  id: string;
  created: number;
  createdBy: string;
  size: number;
  comment: string;
  tags: string[];
}

/**
 * History rows newest first, as podman prints them: a history entry that made a layer gets that
 * layer's size; the top row carries the image ID, the others "<missing>".
 */
export function imageHistory(ctx: EngineContext, ref: string): HistoryRow[] {
  const store = ctx.store;
  const img = store.images.resolve(ref);
  const config = readConfig(store, img);
  const layerIDs = store.images.layerIDs(img.id);
  const sizes = layerIDs.map((l) => store.layers.get(l)?.uncompressedSize ?? 0);
  const history = config.history?.length ? config.history : sizes.map(() => ({} as NonNullable<ImageConfig['history']>[number]));
  let li = 0;
  const rows: HistoryRow[] = history.map((h) => {
    const size = h.empty_layer ? 0 : (sizes[li++] ?? 0);
    return {
      id: '<missing>',
      created: h.created ? Date.parse(h.created) : img.created,
      createdBy: h.created_by ?? '',
      size,
      comment: h.comment ?? '',
      tags: [],
    };
  });
  rows.reverse();
  if (rows[0]) {
    rows[0].id = img.id;
    rows[0].tags = img.names;
  }
  return rows;
}
