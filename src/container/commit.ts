/**
 * `kiln commit CONTAINER [IMAGE]`: a new image in the same store made of the container's image
 * layers plus one layer holding the container's overlay upper dir, packed by the store as a
 * build step's is (LayerStore.commitDeferred: the upper dir is archived into an uncompressed
 * layer blob with whiteouts and opaque dirs in OCI form; the layer's own dir is extracted from
 * the blob when something first mounts the image). The container is left as it was.
 *
 * The config follows podman 4.3 (libpod's Commit over buildah's ImportBuilder): the image's
 * config, then from the container its Entrypoint, Cmd, Env (its environment as the runtime
 * gets it, so PATH and container=kiln travel, as PATH and container=podman do with podman),
 * Labels, User (when set), WorkingDir and the destinations of its anonymous volumes (all its
 * volumes and bind mounts with `includeVolumes`); the container's stop signal is not kept
 * (podman: "No stop signal"), the image's is. Then each --change in order (image/changes.ts,
 * the parser `kiln import` uses; podman's `INSTRUCTION=VALUE` spelling is accepted too), and
 * ONBUILD, which only the docker format keeps (OCI: a warning, as podman prints).
 *
 * History gains one entry, as buildah writes it: created_by "/bin/sh" (the image's SHELL when
 * it has one), comment "FROM <image>", author = --author. --author also sets the config's
 * author; --message sets the docker config's comment and, as in podman 4.3, is refused for
 * the OCI format. With `pause` a running container is frozen (runtime pause/resume) while its
 * upper dir is archived; without it, a file changing meanwhile can fail the commit (E_IO).
 *
 * Progress lines (podman's, for stderr) go to `log`. Errors: E_CONTAINER_UNKNOWN,
 * E_INVALID_ARGUMENT (bad --change, --message with oci, bad name), E_IO, E_RUNTIME (pause).
 */
import { KilnError } from '../errors';
import type { EngineContext } from '../engine/context';
import { applyChanges } from '../image/changes';
import { MT, type HistoryEntry, type ImageConfig, type Manifest } from '../image/oci';
import { normalizeName } from '../image/reference';
import type { ImageRecord } from '../store/images';
import { imageState } from '../build/base';
import type { BuiltLayer, RunConfig } from '../build/state';
import { runtimeCall } from './conmon';
import { containerRuntime, lookup } from './lifecycle';
import { containerDir } from './rootfs';
import { anonymousVolumes } from './volume-mounts';
import type { ContainerRecord } from './types';

export interface CommitOptions {
  container: string;
  /** name for the new image (normalised: `app` → localhost/app:latest); none = untagged */
  image?: string;
  author?: string;
  message?: string;
  /** --change instructions, in order */
  changes?: string[];
  format?: 'oci' | 'docker';
  pause?: boolean;
  includeVolumes?: boolean;
  /** podman's progress lines ("Getting image source signatures" … "Storing signatures") */
  log?: (line: string) => void;
  /** warnings (ONBUILD dropped from an OCI image) */
  warn?: (message: string) => void;
}

/** podman's `INSTRUCTION=VALUE` (no space anywhere) → `INSTRUCTION VALUE`; ONBUILD set apart. */
function splitChanges(changes: string[]): { changes: string[]; onbuild: string[] } {
  const out: string[] = [];
  const onbuild: string[] = [];
  for (const raw of changes) {
    const eq = /^\s*([A-Za-z]+)=(.*)$/s.exec(raw);
    const change = eq && !/\s/.test(raw.trim()) ? `${eq[1]} ${eq[2]}` : raw;
    const m = /^\s*onbuild\s+(.*)$/is.exec(change);
    if (m) {
      if (m[1]!.trim() === '') throw new KilnError('E_INVALID_ARGUMENT', `--change ${JSON.stringify(raw)}: ONBUILD needs an instruction`);
      onbuild.push(m[1]!.trim());
    } else out.push(change);
  }
  return { changes: out, onbuild };
}

function setEnv(env: string[], entry: string): string[] {
  const key = entry.includes('=') ? entry.slice(0, entry.indexOf('=')) : entry;
  const i = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (i < 0) return [...env, entry];
  const out = [...env];
  out[i] = entry;
  return out;
}

/** The image config's run part after the container's settings and the --change instructions. */
function runConfig(base: RunConfig, c: ContainerRecord, anonymous: string[], o: CommitOptions, format: 'oci' | 'docker'): RunConfig {
  const cfg = c.config;
  const out: RunConfig = structuredClone(base);
  if (cfg.entrypoint.length > 0) out.Entrypoint = [...cfg.entrypoint];
  else delete out.Entrypoint;
  if (cfg.cmd.length > 0) out.Cmd = [...cfg.cmd];
  else delete out.Cmd;
  const env = [...cfg.env];
  if (!env.some((e) => e.startsWith('container='))) env.push('container=kiln');
  if (cfg.tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
  out.Env = env.reduce(setEnv, out.Env ?? []);
  if (Object.keys(cfg.labels).length > 0) out.Labels = { ...(out.Labels ?? {}), ...cfg.labels };
  if (cfg.user !== '') out.User = cfg.user;
  const volumes = o.includeVolumes
    ? [...cfg.volumes.map((v) => v.destination), ...cfg.mounts.filter((m) => m.type === 'bind').map((m) => m.destination)]
    : cfg.volumes.filter((v) => anonymous.includes(v.volume)).map((v) => v.destination);
  if (volumes.length > 0) out.Volumes = { ...(out.Volumes ?? {}), ...Object.fromEntries(volumes.map((v) => [v, {}])) };
  out.WorkingDir = cfg.workdir;
  const { changes, onbuild } = splitChanges(o.changes ?? []);
  const changed = applyChanges(out, changes);
  for (const ob of onbuild) {
    if (format === 'docker') changed.OnBuild = [...(changed.OnBuild ?? []), ob];
    else o.warn?.(`ONBUILD is not supported for OCI image format, ${ob} will be ignored. Must use \`docker\` format`);
  }
  if (format === 'oci') {
    delete changed.Healthcheck;
    delete changed.OnBuild;
    delete changed.Shell;
  }
  return changed;
}

/** A layer's media type in the target format (the same bytes). */
function layerType(mt: string, format: 'oci' | 'docker'): string {
  const table: Record<string, string> = format === 'docker'
    ? { [MT.ociLayerGzip]: MT.dockerLayerGzip, [MT.ociLayer]: MT.dockerLayer }
    : { [MT.dockerLayerGzip]: MT.ociLayerGzip, [MT.dockerLayer]: MT.ociLayer };
  return table[mt] ?? mt;
}

async function paused<T>(ctx: EngineContext, c: ContainerRecord, pause: boolean, fn: () => Promise<T>): Promise<T> {
  if (!pause || c.state.status !== 'running') return fn();
  const rt = containerRuntime(ctx.store);
  await runtimeCall(rt.path, rt.root, ['pause', c.id]).catch((e: Error) => {
    throw new KilnError('E_RUNTIME', `pausing container ${c.id} to commit: ${e.message}`);
  });
  try {
    return await fn();
  } finally {
    await runtimeCall(rt.path, rt.root, ['resume', c.id]).catch(() => undefined);
  }
}

/** Commits the container (see the file comment); returns the new image's record. */
export async function commitContainer(ctx: EngineContext, o: CommitOptions): Promise<ImageRecord> {
  const store = ctx.store;
  const format = o.format ?? 'oci';
  if (format !== 'oci' && format !== 'docker') throw new KilnError('E_INVALID_ARGUMENT', `--format ${JSON.stringify(format)}: unrecognized image type; use oci or docker`);
  if (o.message !== undefined && o.message !== '' && format !== 'docker') {
    throw new KilnError('E_INVALID_ARGUMENT', 'messages are only compatible with the docker image format (-f docker)');
  }
  const names = o.image !== undefined && o.image !== '' ? [normalizeName(o.image)] : [];
  const c = await lookup(ctx, o.container);
  const img = store.images.get(c.imageID);
  if (!img) throw new KilnError('E_STORE_CORRUPT', `image ${c.imageID} of container ${c.name} is not in the store`, { hint: 'kiln system check' });
  const log = o.log ?? (() => undefined);
  return store.withLease(async (lease) => {
    const s = imageState(store, img, lease);
    const config = runConfig(s.config, c, anonymousVolumes(ctx, c), o, format); // bad --change fails before any work
    log('Getting image source signatures');
    const { layer, blob } = await paused(ctx, c, o.pause ?? false, () =>
      store.layers.commitDeferred(containerDir(store, c.id), c.layerID, lease, { what: `the changes of container ${c.name}` }));
    const added: BuiltLayer = { id: layer.id, diffID: layer.diffID, blobDigest: blob.digest, blobSize: blob.size, mediaType: blob.mediaType ?? MT.ociLayer, uncompressedSize: layer.uncompressedSize };
    const layers = [...s.layers, added];
    for (const l of layers) log(`Copying blob ${l.diffID}`);
    const created = new Date().toISOString();
    let from = c.config.imageName;
    try {
      from = normalizeName(from);
    } catch {
      /* an image ID: as given */
    }
    const entry: HistoryEntry = { created, created_by: s.config.Shell?.join(' ') || '/bin/sh', ...(o.author ? { author: o.author } : {}), comment: `FROM ${from}` };
    const imageConfig: ImageConfig & { comment?: string } = {
      created,
      ...(o.author ? { author: o.author } : {}),
      architecture: s.architecture,
      os: s.os,
      ...(s.variant ? { variant: s.variant } : {}),
      config,
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
      history: [...s.history, entry],
      ...(format === 'docker' && o.message ? { comment: o.message } : {}),
    };
    const configBytes = Buffer.from(JSON.stringify(imageConfig));
    const configMT = format === 'docker' ? MT.dockerConfig : MT.ociConfig;
    const configRec = await store.blobs.putBuffer(configBytes, lease, { mediaType: configMT });
    log(`Copying config ${configRec.digest}`);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: format === 'docker' ? MT.dockerManifest : MT.ociManifest,
      config: { mediaType: configMT, digest: configRec.digest, size: configRec.size },
      layers: layers.map((l) => ({ mediaType: layerType(l.mediaType, format), digest: l.blobDigest, size: l.blobSize })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestRec = await store.blobs.putBuffer(manifestBytes, lease, { mediaType: manifest.mediaType! });
    log('Writing manifest to image destination');
    const image = store.images.create({
      id: configRec.digest.slice(7),
      manifestDigest: manifestRec.digest,
      manifestMediaType: manifest.mediaType!,
      configDigest: configRec.digest,
      layers: layers.map((l) => l.id),
      blobs: [manifestRec.digest, configRec.digest, ...layers.map((l) => l.blobDigest)],
      size: layers.reduce((n, l) => n + l.uncompressedSize, 0) + manifestBytes.length + configBytes.length,
      created: Date.parse(created),
      names,
    }).image;
    log('Storing signatures');
    return image;
  });
}
