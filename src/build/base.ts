/**
 * Where a stage starts: an image from the store (its layers, config and history), or nothing
 * (FROM scratch). The state's cache key starts from the image ID, so a rebuilt base image
 * invalidates every cached step above it.
 */
import { KilnError } from '../errors';
import { parseConfig, parseManifest } from '../image/manifest';
import { goArch } from '../image/platform';
import type { Store } from '../store/store';
import type { ImageRecord } from '../store/images';
import type { Lease } from '../store/lease';
import { DEFAULT_PATH } from '../runtime/spec';
import type { BuiltLayer, RunConfig, StageState } from './state';

/**
 * A stage's config always has PATH in Env: a base without one gets the default appended, as
 * BuildKit and buildah do, so `ENV PATH=/x:$PATH` extends it and the image records it.
 */
function withPath(config: RunConfig): RunConfig {
  if ((config.Env ?? []).some((e) => e.startsWith('PATH='))) return config;
  return { ...config, Env: [...(config.Env ?? []), `PATH=${DEFAULT_PATH}`] };
}

export function scratchState(): StageState {
  return { layers: [], imageLayers: 0, config: withPath({}), history: [], architecture: goArch(), os: 'linux', cacheKey: 'scratch', rebuilt: false, args: {}, created: new Date(0).toISOString() };
}

/** The state of an image in the store; its layers and blobs are held by `lease` for the build. */
export function imageState(store: Store, img: ImageRecord, lease: Lease): StageState {
  const what = `image ${img.id.slice(0, 12)}`;
  const manifest = parseManifest({ bytes: store.blobs.read(img.manifestDigest), digest: img.manifestDigest, mediaType: img.manifestMediaType }, what);
  const config = parseConfig(store.blobs.read(img.configDigest), what);
  const ids = store.images.layerIDs(img.id);
  if (ids.length !== manifest.layers.length) throw new KilnError('E_STORE_CORRUPT', `${what}: ${ids.length} layers recorded but its manifest lists ${manifest.layers.length}`);
  const layers: BuiltLayer[] = ids.map((id, i) => {
    const l = store.layers.require(id);
    const d = manifest.layers[i];
    return { id, diffID: l.diffID, blobDigest: d.digest, blobSize: d.size, mediaType: d.mediaType, uncompressedSize: l.uncompressedSize };
  });
  store.writeTx(() => {
    for (const l of layers) {
      lease.hold('layer', l.id);
      lease.hold('blob', l.blobDigest);
    }
  });
  return {
    layers,
    imageLayers: layers.length,
    config: withPath(structuredClone(config.config ?? {})),
    history: structuredClone(config.history ?? []),
    architecture: config.architecture,
    os: config.os,
    variant: config.variant,
    cacheKey: `image:${img.id}`,
    rebuilt: false,
    args: {},
    created: config.created ?? new Date(img.created).toISOString(),
  };
}
