/**
 * What every filesystem step (RUN, COPY, ADD) shares: compute the cache key from the parent's
 * key and the step's inputs; on a hit take the cached layer; on a miss say why, run `work` on a
 * fresh writable overlay, commit its upper dir as a layer (archived and hashed on the
 * worker pool) and record it in the cache. A failing `work` leaves nothing mounted or stored.
 */
import * as fs from 'node:fs';
import { cacheKey, type CacheInputs } from '../cache';
import type { BuildEnv, StepCtx } from '../env';
import { createdTime } from '../env';
import type { StageState } from '../state';
import * as path from 'node:path';
import { WorkingRootfs } from '../rootfs';
import { isNoSpace, tmpfsStagingDir } from '../staging';
import type { LayerRecord } from '../../store/layers';
import type { BlobRecord } from '../../store/blobs';

export interface LayerStepOptions {
  /** COPY --link: the layer is made without seeing the parent's files */
  independent?: boolean;
  /**
   * `work` gives the same files on an empty root as on the parent's (it writes only below
   * paths the parent lacks), and writes about this many bytes: it may run on tmpfs, and the
   * layer is stored as its blob with its dir made on first use.
   */
  stageBytes?: number;
}

/** The root a step's work writes into (a WorkingRootfs's merged mount, or a staging dir). */
export interface StepRoot {
  merged: string;
  /** whether the parent's files are visible under `merged` (false: an empty root) */
  seesParent: boolean;
}

export async function layerStep(
  env: BuildEnv,
  s: StageState,
  step: StepCtx,
  inputs: CacheInputs,
  createdBy: string,
  what: string,
  work: (rootfs: StepRoot) => Promise<void>,
  opts: LayerStepOptions = {},
): Promise<StageState> {
  // --timestamp/SOURCE_DATE_EPOCH changes the layer's bytes (mtimes are clamped), so it is an input
  if (env.timestamp !== undefined) inputs = { ...inputs, timestamp: String(env.timestamp) };
  const key = cacheKey(s.cacheKey, inputs);
  const parent = s.layers.length ? s.layers[s.layers.length - 1].id : null;
  const hit = env.cache.lookup(key, env.lease, parent);
  if (hit) {
    env.progress({ type: 'step-cached', id: hit.layerID.slice(0, 12), ...step.info });
    const layer = env.store.layers.require(hit.layerID);
    const blob = env.store.blobs.get(hit.blobDigest);
    const created = env.timestamp !== undefined ? createdTime(env) : new Date(hit.created).toISOString();
    return {
      ...s,
      layers: [...s.layers, { id: hit.layerID, diffID: hit.diffID, blobDigest: hit.blobDigest, blobSize: blob?.size ?? layer.compressedSize ?? 0, mediaType: blob?.mediaType ?? 'application/vnd.oci.image.layer.v1.tar', uncompressedSize: layer.uncompressedSize }],
      history: [...s.history, { created, created_by: hit.createdBy }],
      cacheKey: key,
      created,
    };
  }
  env.progress({ type: 'cache-miss-reason', stage: step.info.stage, step: step.info.step, reason: env.cache.explainMiss(key, s.cacheKey, inputs, s.rebuilt) });
  if (opts.stageBytes !== undefined) {
    const staged = await stagedLayer(env, s, parent, key, inputs, createdBy, what, work, opts.stageBytes);
    if (staged) return staged;
  }
  if (!opts.independent) await env.store.layers.ensureChain(parent);
  const rootfs = WorkingRootfs.open(env.store, opts.independent ? null : parent);
  try {
    await work({ merged: rootfs.merged, seesParent: !opts.independent });
    rootfs.seal();
  } catch (e) {
    rootfs.discard();
    throw e;
  }
  if (env.signal.aborted) {
    fs.rmSync(rootfs.stepDir, { recursive: true, force: true });
    env.signal.throwIfAborted();
  }
  const { layer, blob } = await env.store.layers.commitDir(rootfs.stepDir, parent, env.lease, { clampMtime: env.timestamp, compress: 'none', what });
  return recorded(env, s, key, inputs, createdBy, layer, blob);
}

/** Records a new layer step in the cache and returns the state with the layer on top. */
function recorded(env: BuildEnv, s: StageState, key: string, inputs: CacheInputs, createdBy: string, layer: LayerRecord, blob: BlobRecord): StageState {
  const created = createdTime(env);
  env.cache.record({ key, parentKey: s.cacheKey, inputs, layerID: layer.id, blobDigest: blob.digest, diffID: layer.diffID, createdBy, created: Date.parse(created) });
  return {
    ...s,
    layers: [...s.layers, { id: layer.id, diffID: layer.diffID, blobDigest: blob.digest, blobSize: blob.size, mediaType: blob.mediaType ?? 'application/vnd.oci.image.layer.v1.tar', uncompressedSize: layer.uncompressedSize }],
    history: [...s.history, { created, created_by: createdBy }],
    cacheKey: key,
    rebuilt: true,
    created,
  };
}

/** The tmpfs path of layerStep (see LayerStepOptions.stageBytes); undefined when tmpfs has no room. */
async function stagedLayer(
  env: BuildEnv, s: StageState, parent: string | null, key: string, inputs: CacheInputs, createdBy: string, what: string,
  work: (rootfs: StepRoot) => Promise<void>, bytes: number,
): Promise<StageState | undefined> {
  const staging = tmpfsStagingDir(bytes);
  if (staging === undefined) return undefined;
  try {
    await work({ merged: path.join(staging.dir, 'diff'), seesParent: false });
    env.signal.throwIfAborted();
    const { layer, blob } = await env.store.layers.commitDeferred(staging.dir, parent, env.lease, { clampMtime: env.timestamp, what });
    return recorded(env, s, key, inputs, createdBy, layer, blob);
  } catch (e) {
    if (isNoSpace(e)) return undefined; // tmpfs filled up after all: the caller runs the step on disk
    throw e;
  } finally {
    staging.release();
  }
}
