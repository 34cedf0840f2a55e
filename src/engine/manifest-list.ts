/**
 * `kiln manifest …`: manifest lists of stored images, pushed to a registry as an OCI index or
 * a Docker manifest list (podman's `manifest create/add/remove/inspect/rm/push`).
 *
 * An entry is an image's stored manifest, referenced by digest with the platform from the
 * image's config (os, architecture, variant) unless `add --os/--arch/--variant` say otherwise.
 * Only images in the local store can be added (`docker://` sources are refused: pull first).
 *
 * push (--all, the default): checks that every entry's image, manifest, config and layer blobs
 * are still in the store and holds them with a lease (a concurrent rmi cannot delete them
 * mid-push), then pushes each image BY DIGEST to the destination repository — the manifest
 * bytes exactly as stored, so each digest is the one the index references — and finally PUTs
 * the index under the destination's tag. A removed image fails the push before anything is sent.
 */
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { KilnError, withContext } from '../errors';
import { parseConfig, parseManifest } from '../image/manifest';
import { goArch } from '../image/platform';
import { normalizeName } from '../image/reference';
import { buildIndex, listFormatFor, type BuiltIndex, type ListFormat } from '../image/list-index';
import { ManifestListStore, type ListEntry, type ManifestListRecord } from '../store/manifest-lists';
import { Lease } from '../store/lease';
import { sha256, type Digest } from '../util/digest';
import type { Descriptor } from '../image/oci';
import type { RegistryOptions } from '../transports/docker';
import type { ManifestBlob, SourceImage } from '../transports/types';
import type { EngineContext } from './context';

function lists(ctx: EngineContext): ManifestListStore {
  return new ManifestListStore(ctx.store);
}

/** The list `ref` names; E_IMAGE_UNKNOWN saying whether it is unknown or an image, not a list. */
export function resolveList(ctx: EngineContext, ref: string): ManifestListRecord {
  const rec = lists(ctx).find(ref);
  if (rec) return rec;
  if (ctx.store.images.find(ref)) {
    throw new KilnError('E_IMAGE_UNKNOWN', `${ref}: image is not a manifest list`, { hint: 'create a list with `kiln manifest create LIST IMAGE...`' });
  }
  throw new KilnError('E_IMAGE_UNKNOWN', `${ref}: manifest list not known`, { hint: 'create it first with `kiln manifest create LIST`' });
}

/** Platform fields that `manifest add` sets instead of the image config's. */
export interface PlatformOverride {
  os?: string;
  arch?: string;
  variant?: string;
}

const LOCAL_PREFIXES = ['containers-storage:', 'kiln-storage:'];
const OTHER_TRANSPORT = /^(docker:\/\/|docker-daemon:|docker-archive:|oci-archive:|oci:|dir:)/;

/** The list entry for a stored image (`[containers-storage:]NAME|ID`). */
function entryFor(ctx: EngineContext, imageRef: string, o: PlatformOverride): ListEntry {
  let ref = imageRef;
  for (const p of LOCAL_PREFIXES) if (ref.startsWith(p)) ref = ref.slice(p.length);
  if (OTHER_TRANSPORT.test(ref)) {
    throw new KilnError('E_UNSUPPORTED', `${imageRef}: only images in the local store can be added to a manifest list`, {
      hint: ref.startsWith('docker://') ? `pull it first (kiln pull ${ref.slice('docker://'.length)}), then add it by name` : 'load it first (kiln load / kiln pull), then add it by name',
    });
  }
  for (const [flag, v] of [['--os', o.os], ['--arch', o.arch]] as const) {
    if (v !== undefined && !/^[A-Za-z0-9_.-]+$/.test(v)) throw new KilnError('E_INVALID_ARGUMENT', `${flag} ${JSON.stringify(v)}: not an OS/architecture name`);
  }
  if (o.variant !== undefined && o.variant !== '' && !/^[A-Za-z0-9_.-]+$/.test(o.variant)) {
    throw new KilnError('E_INVALID_ARGUMENT', `--variant ${JSON.stringify(o.variant)}: not a variant name`);
  }
  const img = ctx.store.images.find(ref);
  if (!img) {
    if (lists(ctx).find(ref)) throw new KilnError('E_UNSUPPORTED', `${imageRef}: is a manifest list; a list cannot be added to another list`);
    throw new KilnError('E_IMAGE_UNKNOWN', `${imageRef}: image not known`);
  }
  const what = `image ${img.id.slice(0, 12)}`;
  const bytes = ctx.store.blobs.read(img.manifestDigest);
  const config = parseConfig(ctx.store.blobs.read(img.configDigest), what);
  const variant = o.variant ?? config.variant;
  return {
    digest: img.manifestDigest,
    mediaType: img.manifestMediaType,
    size: bytes.length,
    imageId: img.id,
    platform: {
      architecture: o.arch ?? (config.architecture || goArch()),
      os: o.os ?? (config.os || 'linux'),
      ...(variant ? { variant } : {}),
    },
  };
}

export interface CreateListOptions {
  /** the list's name (normalised as an image name) */
  name: string;
  /** stored images to add, in order */
  images: string[];
  /** add to an existing list of that name instead of failing (podman's --amend) */
  amend?: boolean;
}

/** `manifest create`: a new list (or, with amend, the existing one) holding `images`. */
export function createManifestList(ctx: EngineContext, opts: CreateListOptions): ManifestListRecord {
  const name = normalizeName(opts.name);
  const entries = opts.images.map((i) => entryFor(ctx, i, {}));
  const store = lists(ctx);
  if (opts.amend) {
    const existing = store.find(name);
    if (existing) return store.add(existing.id, entries);
  }
  return store.create(name, entries);
}

export interface AddToListOptions extends PlatformOverride {
  list: string;
  image: string;
}

/** `manifest add`: adds (or, for a manifest already listed, updates) the image's entry. */
export function addToManifestList(ctx: EngineContext, opts: AddToListOptions): ManifestListRecord {
  const rec = resolveList(ctx, opts.list);
  return lists(ctx).add(rec.id, [entryFor(ctx, opts.image, opts)]);
}

/** `manifest remove LIST DIGEST`: drops the entry for that manifest digest. */
export function removeFromManifestList(ctx: EngineContext, opts: { list: string; digest: string }): ManifestListRecord {
  const rec = resolveList(ctx, opts.list);
  if (!lists(ctx).removeEntry(rec.id, opts.digest as Digest)) {
    throw new KilnError('E_INVALID_ARGUMENT', `manifest list ${rec.name} has no entry for ${opts.digest}`, { hint: 'see the digests with `kiln manifest inspect`' });
  }
  return lists(ctx).get(rec.id)!;
}

/** `manifest inspect`: the index the list would be pushed as (by default). */
export function inspectManifestList(ctx: EngineContext, opts: { list: string; format?: ListFormat }): BuiltIndex {
  const rec = resolveList(ctx, opts.list);
  return buildIndex(rec.entries, listFormatFor(rec.entries, opts.format, rec.name));
}

export interface RemoveListsResult {
  untagged: string[];
  deleted: string[];
  /** one per list that could not be removed (E_IMAGE_UNKNOWN: no such list) */
  errors: KilnError[];
}

/**
 * `manifest rm`: removes lists (never their images); goes on past a failure, like rmi. An
 * unknown name is E_IMAGE_UNKNOWN (podman exits 1), an image's name E_INVALID_ARGUMENT (125).
 */
export function removeManifestLists(ctx: EngineContext, refs: string[]): RemoveListsResult {
  const out: RemoveListsResult = { untagged: [], deleted: [], errors: [] };
  const store = lists(ctx);
  for (const ref of refs) {
    try {
      const rec = store.find(ref);
      if (!rec) {
        if (ctx.store.images.find(ref)) throw new KilnError('E_INVALID_ARGUMENT', `${ref}: image is not a manifest list`, { hint: 'remove images with `kiln rmi`' });
        throw new KilnError('E_IMAGE_UNKNOWN', `${ref}: manifest list not known`);
      }
      if (store.remove(rec.id)) {
        out.untagged.push(rec.name);
        out.deleted.push(rec.id);
      }
    } catch (e) {
      out.errors.push(withContext(e, ref));
    }
  }
  return out;
}

export interface PushListOptions {
  list: string;
  /** docker://HOST/REPO[:TAG] (the `docker://` may be left out) */
  destination: string;
  /** push every image the list references, by digest, before the index (default true) */
  all?: boolean;
  /** index type; default: the one the entries' manifests imply (image/list-index.ts) */
  format?: ListFormat;
  registry?: RegistryOptions;
  /** write the pushed index's digest to this file */
  digestFile?: string;
  /** remove the list from the store once the push succeeded */
  rm?: boolean;
}

/** What is pushed for one entry: its manifest bytes (verified) and the names of its image. */
interface EntryPlan {
  entry: ListEntry;
  manifest: ManifestBlob;
  names: string[];
}

const NON_REGISTRY = /^(oci:|oci-archive:|docker-archive:|dir:|containers-storage:|kiln-storage:|docker-daemon:)/;

function destinationName(dest: string): string {
  if (dest.startsWith('docker://')) return dest.slice('docker://'.length);
  if (NON_REGISTRY.test(dest)) {
    throw new KilnError('E_UNSUPPORTED', `manifest push: ${dest}: only registry destinations (docker://HOST/REPO[:TAG]) are supported`);
  }
  return dest;
}

/**
 * Inside a write transaction: checks that entry `i` can be pushed from the store and holds its
 * manifest, config and layer blobs with `lease`.
 */
function planEntryTx(ctx: EngineContext, list: ManifestListRecord, e: ListEntry, i: number, lease: Lease): EntryPlan {
  const where = `manifest list ${list.name}: entry ${i + 1} (${e.platform.os}/${e.platform.architecture}${e.platform.variant ? `/${e.platform.variant}` : ''}, ${e.digest})`;
  const img = ctx.store.images.get(e.imageId);
  if (!img) {
    throw new KilnError('E_IMAGE_UNKNOWN', `${where}: image ${e.imageId.slice(0, 12)} is no longer in the store`, {
      hint: `add the image again (kiln manifest add), or drop the entry (kiln manifest remove ${list.name} ${e.digest})`,
    });
  }
  if (!ctx.store.blobs.has(e.digest)) {
    throw new KilnError('E_BLOB_UNKNOWN', `${where}: the manifest of image ${img.id.slice(0, 12)} is no longer in the store`, { hint: 'add the image again (kiln manifest add)' });
  }
  const bytes = ctx.store.blobs.read(e.digest);
  if (sha256(bytes) !== e.digest) {
    throw new KilnError('E_DIGEST_MISMATCH', `${where}: the stored manifest does not hash to ${e.digest}`, { hint: 'run `kiln system check`' });
  }
  const manifest: ManifestBlob = { bytes, mediaType: e.mediaType, digest: e.digest };
  const m = parseManifest(manifest, where);
  for (const d of [m.config, ...m.layers]) {
    if (!ctx.store.blobs.has(d.digest)) {
      throw new KilnError('E_BLOB_UNKNOWN', `${where}: blob ${d.digest} of image ${img.id.slice(0, 12)} is no longer in the store`, { hint: 'run `kiln system check`' });
    }
    lease.hold('blob', d.digest);
  }
  lease.hold('blob', e.digest);
  return { entry: e, manifest, names: img.names };
}

/** A stored manifest as a copy source: its blobs are read from the store. */
function storedSource(ctx: EngineContext, manifest: ManifestBlob): SourceImage {
  return {
    names: [],
    manifest: async () => manifest,
    getBlob: async (d: Descriptor): Promise<Readable> => ctx.store.blobs.openRead(d.digest),
  };
}

/**
 * `manifest push`: pushes the images (with `all`) by digest, then the index under the tag.
 * Progress lines (podman's) go to `opts.registry.log`. Returns the index's digest.
 */
export async function pushManifestList(ctx: EngineContext, opts: PushListOptions): Promise<{ digest: Digest }> {
  const rec = resolveList(ctx, opts.list);
  const name = destinationName(opts.destination);
  // the registry client (undici) is loaded only when something is pushed
  const { DockerReference, RegistryDestination } = require('../transports/docker') as typeof import('../transports/docker');
  const { copyImage } = require('../transports/copy') as typeof import('../transports/copy');
  const { copyLayersParallel, mountSources } = require('../registry/parallel') as typeof import('../registry/parallel');
  const { putManifest } = require('../registry/manifests') as typeof import('../registry/manifests');
  const registry = opts.registry ?? {};
  const target = new DockerReference(name, registry);
  if (target.digest !== undefined) {
    throw new KilnError('E_INVALID_ARGUMENT', `manifest push: ${opts.destination}: the destination needs a tag, not a digest (the index is pushed under that tag)`);
  }
  const index = buildIndex(rec.entries, listFormatFor(rec.entries, opts.format, rec.name));
  const log = registry.log;
  const all = opts.all !== false;
  const lease = Lease.create(ctx.store);
  try {
    const plans = all ? ctx.store.writeTx(() => rec.entries.map((e, i) => planEntryTx(ctx, rec, e, i, lease))) : [];
    const client = target.client();
    try {
      log?.('Getting image list signatures');
      log?.(`Copying ${plans.length} of ${rec.entries.length} images in list`);
      for (const [i, p] of plans.entries()) {
        log?.(`Copying image ${p.entry.digest} (${i + 1}/${plans.length})`);
        log?.('Getting image source signatures');
        const mountFrom = mountSources(p.names, target.domain, target.repo);
        const ref = new DockerReference(`${target.domain}/${target.repo}@${p.entry.digest}`, mountFrom.length > 0 ? { ...registry, mountFrom } : registry);
        // shares the list's client (one connection pool and token); closed below, not by the destination
        const dest = new RegistryDestination(ref, client);
        const src = storedSource(ctx, p.manifest);
        const what = `image ${p.entry.imageId.slice(0, 12)} (${p.entry.digest}) → ${ref.toString()}`;
        await copyLayersParallel(src, dest, what, log).catch((e: unknown) => Promise.reject(withContext(e, what)));
        await copyImage(src, dest, [], what);
        log?.('Storing signatures');
      }
      log?.('Writing manifest list to image destination');
      await putManifest(client, target.repo, target.tag, { bytes: index.bytes, mediaType: index.mediaType, digest: index.digest }).catch((e: unknown) =>
        Promise.reject(withContext(e, `manifest list ${rec.name} → ${target.toString()}`)),
      );
      log?.('Storing list signatures');
    } finally {
      await client.close();
    }
  } finally {
    lease.release(false);
  }
  if (opts.digestFile !== undefined) {
    try {
      fs.writeFileSync(opts.digestFile, index.digest);
    } catch (e) {
      throw new KilnError('E_IO', `--digestfile ${opts.digestFile}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (opts.rm) lists(ctx).remove(rec.id);
  return { digest: index.digest };
}
